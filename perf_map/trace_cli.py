"""`stackstitch trace record` and `stackstitch trace report`: a timeline of every switch.

`record` runs `stackstitch run MODULE ...` in a tracing store (generated code and stubs
log every cont.new, resume, suspend, switch, return and trap in a native ring) and writes
the Chrome trace-event JSON that Perfetto and chrome://tracing open; `report` summarises
such a file per continuation. Both can write a self-contained HTML timeline.
"""

from __future__ import annotations

import argparse
import os
import sys

from stackstitch.engine.options import parse_run_arguments, positive

DEFAULT_FILE = "stackstitch-trace.json"


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = argparse.ArgumentParser(
        prog="stackstitch trace",
        description="A timeline of every stack switch: when each continuation ran, how long "
                    "it stayed suspended and who resumed it.")
    commands = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    record = commands.add_parser(
        "record", help="trace `stackstitch run MODULE ...`",
        usage="stackstitch trace record [-o FILE] [--events N] [--html OUT] MODULE "
              "[RUN OPTIONS] [ARG...]",
        description="Run MODULE in a tracing store and write its switches as Chrome "
                    "trace-event JSON. Exits with the run's status.",
        epilog="Everything from MODULE on is `stackstitch run`'s command line (see "
               "`stackstitch run --help`).")
    record.add_argument("-o", "--output", metavar="FILE", default=DEFAULT_FILE,
                        help=f"the trace file (default: {DEFAULT_FILE})")
    record.add_argument("--events", metavar="N", type=positive(int), default=1 << 20,
                        help="keep the last N events (rounded up to a power of two; "
                             "default 1,048,576, 32 bytes each)")
    record.add_argument("--html", metavar="OUT", help="also write an HTML timeline here")
    record.add_argument("module", metavar="MODULE", help="a .wasm binary or .wat text file")
    record.add_argument("run_args", metavar="...", nargs=argparse.REMAINDER,
                        help="`stackstitch run` options and ARGs")
    report = commands.add_parser(
        "report", help="per continuation: run and suspended time, resumes, resumers",
        description="Summarise a trace per continuation: run time, suspended time, resumes, "
                    "the longest suspension and who resumed it most.")
    report.add_argument("file", metavar="FILE", nargs="?", default=DEFAULT_FILE,
                        help=f"a trace `trace record` wrote (default: {DEFAULT_FILE})")
    report.add_argument("--html", metavar="OUT", help="also write an HTML timeline here")
    return parser, {"record": record, "report": report}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser, actions = build_parser()
    if argv and argv[0] in actions:
        namespace = actions[argv[0]].parse_args(argv[1:])
        namespace.action = argv[0]
        return namespace
    return parser.parse_args(argv)


class TraceError(Exception):
    """Something the user can fix (message is one line)."""


def write_outputs(store, module: str, output: str, html: str | None) -> None:
    from stackstitch.engine.runtime.tracing import read_trace
    from stackstitch.perf_map.chrome_trace import write_chrome_trace
    from stackstitch.perf_map.timeline import build_timeline
    from stackstitch.perf_map.trace_html import render_html
    log = read_trace(store)
    title = f"stackstitch trace: {os.path.basename(module)}"
    document = write_chrome_trace(build_timeline(log), output, title)
    if html:
        with open(html, "w", encoding="utf-8") as f:
            f.write(render_html(document, title))
    lost = f", the oldest {log.lost:,} lost (use --events)" if log.lost else ""
    print(f"stackstitch: {len(log.events):,} events written to {output}{lost}; "
          f"see them with: stackstitch trace report {output}", file=sys.stderr)


def record(args: argparse.Namespace) -> int:
    from stackstitch.engine.cli import guarded, run_module
    try:
        run = parse_run_arguments([args.module, *args.run_args])
    except ValueError as e:
        raise TraceError(str(e)) from None
    events = 1 << (args.events - 1).bit_length()
    for path in (args.output, args.html):
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise TraceError(f"cannot write {path}: no such directory")
    return guarded(lambda: run_module(run, {"trace_events": events},
                                      lambda store: write_outputs(store, run.module, args.output,
                                                                  args.html)), "trace record")


def report(args: argparse.Namespace) -> int:
    from stackstitch.perf_map.trace_html import render_html
    from stackstitch.perf_map.trace_report import TraceFileError, load_trace, render_report
    if not os.path.isfile(args.file):
        raise TraceError(f"no trace at {args.file}; run `stackstitch trace record` first")
    try:
        document = load_trace(args.file)
        sys.stdout.write(render_report(document))
    except (TraceFileError, KeyError, TypeError) as e:
        raise TraceError(f"{args.file} is not a stackstitch trace ({e})") from None
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(render_html(document, f"stackstitch trace: {os.path.basename(args.file)}"))
    return 0


def main(argv: list[str]) -> int:
    """`stackstitch trace ARGV...`; the exit status (errors: one line on stderr)."""
    try:
        args = parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2), already printed
        return e.code if isinstance(e.code, int) else 2
    try:
        return record(args) if args.action == "record" else report(args)
    except TraceError as e:
        print(f"stackstitch: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"stackstitch: error: {e.filename or ''}: {e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
