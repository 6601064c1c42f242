"""`stackstitch perf record`, `report` and `annotate`: profiles whose call graphs cross
switched stacks, with Wasm function names, and flame graphs.

`record` runs `stackstitch run --jitdump=DIR` under `perf record` (frame-pointer call
graphs, cpu-clock) and then `perf inject --jit`, leaving DIR/perf.jit.data. `report` reads
its samples through `perf script` and prints time per function or per continuation, and
can write folded stacks and a flame graph; `annotate` lists one function's instructions.
"""

from __future__ import annotations

import argparse
import os
import sys

from stackstitch.engine.options import parse_run_arguments, parse_subcommand, positive

DEFAULT_DIR = "stackstitch-perf"
RAW_DATA, JIT_DATA = "perf.data", "perf.jit.data"


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="stackstitch perf",
        description="Profile a module with perf; call graphs cross continuation stacks.")
    commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    record = commands.add_parser(
        "record", help="profile `stackstitch run MODULE ...`",
        usage="stackstitch perf record [-o DIR] [-F HZ] MODULE [RUN OPTIONS] [ARG...]",
        description="Run `stackstitch run MODULE ...` under `perf record` (cpu-clock, "
                    "frame-pointer call graphs) with a jitdump, then `perf inject --jit`. "
                    "Exits with the run's status.",
        epilog="Everything from MODULE on is `stackstitch run`'s command line: its options "
               "(--invoke, --switching, --stack-size, --env, ...; see `stackstitch run "
               "--help`) and ARGs. The jitdump goes to DIR.")
    record.add_argument("-o", "--output", metavar="DIR", default=DEFAULT_DIR,
                        help=f"where the profile and JIT files go (default: {DEFAULT_DIR})")
    record.add_argument("-F", "--frequency", metavar="HZ", type=positive(int),
                        help="samples per second (default: perf's, 4000)")
    record.add_argument("module", metavar="MODULE", help="a .wasm binary or .wat text file")
    record.add_argument("run_args", metavar="...", nargs=argparse.REMAINDER,
                        help="`stackstitch run` options and ARGs")
    report = commands.add_parser(
        "report", help="print the profile; folded stacks and flame graphs",
        description="Print the profile in DIR: functions by self time (host code grouped by "
                    "library), or continuations by the function each was created from.")
    report.add_argument("-o", "--output", metavar="DIR", default=DEFAULT_DIR,
                        help=f"the directory `perf record` wrote (default: {DEFAULT_DIR})")
    report.add_argument("--by", choices=("function", "continuation"), default="function",
                        help="what the time is per (default: function)")
    report.add_argument("--folded", metavar="OUT",
                        help="also write folded stacks (a;b;c COUNT per line) here")
    report.add_argument("--flamegraph", metavar="SVG",
                        help="also write a flame graph here (search and zoom in a browser)")
    annotate = commands.add_parser(
        "annotate", help="one function's instructions with samples and source positions",
        description="Disassemble the JIT function FUNC (capstone) with the source line each "
                    "instruction came from (the module's DWARF; without it, the module file with "
                    "Wasm offsets as lines) and the samples taken there.")
    annotate.add_argument("function", metavar="FUNC", help="a Wasm function's name")
    annotate.add_argument("-o", "--output", metavar="DIR", default=DEFAULT_DIR,
                          help=f"the directory `perf record` wrote (default: {DEFAULT_DIR})")
    return parser, {"record": record, "report": report, "annotate": annotate}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser, actions = build_parser()
    if argv and argv[0] == "record":  # own options first, then the run command line as is
        namespace = actions["record"].parse_args(argv[1:])
        namespace.action = "record"
        return namespace
    return parse_subcommand(parser, actions, argv, "action")


def run_command(args: argparse.Namespace, jitdump_dir: str) -> list[str]:
    """The `stackstitch run` command line that perf profiles; PerfError if the run
    arguments are wrong (before perf starts)."""
    from stackstitch.perf_map.perftool import PerfError
    run_args = [args.module, *args.run_args]
    try:
        run = parse_run_arguments(run_args)
    except ValueError as e:
        raise PerfError(str(e)) from None
    if run.jitdump is not None:
        raise PerfError("--jitdump is perf record's own: the jitdump goes to its -o DIR")
    if not os.path.isfile(run.module):
        raise PerfError(f"cannot read {run.module}: no such file")
    return [sys.executable, "-m", "stackstitch.engine.cli", "run", f"--jitdump={jitdump_dir}",
            *run_args]


def record(args: argparse.Namespace) -> int:
    from stackstitch.perf_map import perftool
    directory = os.path.abspath(args.output)
    command = run_command(args, directory)
    event = perftool.sampling_event()
    os.makedirs(directory, exist_ok=True)
    raw, injected = os.path.join(directory, RAW_DATA), os.path.join(directory, JIT_DATA)
    status = perftool.record(raw, command, event, args.frequency)
    perftool.inject_jit(raw, injected)
    if status == 0:  # otherwise the run has said what went wrong
        print(f"stackstitch: {perftool.sample_count(injected):,} samples written to {injected}; "
              f"see them with: stackstitch perf report --output {args.output}", file=sys.stderr)
    return status


def profile_data(directory: str) -> str:
    from stackstitch.perf_map.perftool import PerfError
    data = os.path.join(directory, JIT_DATA)
    if not os.path.isfile(data):
        raise PerfError(f"no profile at {data}; run `stackstitch perf record` first")
    return data


def report(args: argparse.Namespace) -> int:
    from stackstitch.perf_map import perftool
    from stackstitch.perf_map.flamegraph import render_svg
    from stackstitch.perf_map.report import by_continuation, by_function
    from stackstitch.perf_map.samples import SCRIPT_FIELDS, parse_perf_script
    from stackstitch.perf_map.stacks import fold, write_folded
    data = profile_data(args.output)
    samples = parse_perf_script(perftool.script(data, SCRIPT_FIELDS))
    print(f"{len(samples):,} samples in {data}")
    sys.stdout.write(by_continuation(samples) if args.by == "continuation" else by_function(samples))
    if args.folded or args.flamegraph:
        folded = fold(samples)
        if args.folded:
            write_folded(folded, args.folded)
        if args.flamegraph:
            with open(args.flamegraph, "w", encoding="utf-8") as f:
                f.write(render_svg(folded, title=f"stackstitch: {data}",
                                   amount=lambda ns: f"{ns / 1e6:,.1f} ms of cpu-clock"))
    return 0


def annotate(args: argparse.Namespace) -> int:
    from stackstitch.perf_map import perftool
    from stackstitch.perf_map.annotate import SCRIPT_FIELDS, AnnotateError, find_code, render, sample_pcs
    data = profile_data(args.output)
    pids, pcs = sample_pcs(perftool.script(data, SCRIPT_FIELDS, call_chains=False))
    if not pids:
        raise perftool.PerfError(f"no samples in {data}")
    try:
        codes = find_code(args.output, pids.most_common(1)[0][0], args.function)
    except AnnotateError as e:
        raise perftool.PerfError(str(e)) from None
    sys.stdout.write("\n".join(render(code, pcs, sum(pcs.values())) for code in codes))
    return 0


def main(argv: list[str]) -> int:
    """`stackstitch perf ARGV...`; returns the exit status (errors: one line on stderr)."""
    from stackstitch.perf_map.perftool import PerfError
    try:
        args = parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return e.code if isinstance(e.code, int) else 2
    try:
        return {"record": record, "report": report, "annotate": annotate}[args.action](args)
    except PerfError as e:
        return _fail(str(e))
    except OSError as e:
        return _fail(f"{e.filename or ''}: {e.strerror or e}".lstrip(": "))
    except KeyboardInterrupt:
        return 130


def _fail(message: str) -> int:
    print(f"stackstitch: error: {message}", file=sys.stderr)
    return 1
