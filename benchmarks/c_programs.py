"""Real C programs: stackstitch against the Wasmtime CLI, same module, same run.

Each program in benchmarks/c/ (and the WASI file workload of benchmarks/programs/) is
built once with zig's clang for WASI (`python -m ziglang cc -target wasm32-wasi -O2`), then
run by both tools as a fresh process (`run prog.wasm ARGS`, through `_start`; the file
workload with an empty directory of its own as /data); the best of N wall-clock times
counts, and both must print the same output. Start-up (the trivial module of run.py) is
also subtracted to give a second ratio.

    python benchmarks/c_programs.py [--filter NAME] [--repeat N] [--markdown]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from run import (STARTUP, HarnessError, KernelRow, Timing, best_time, first_line, kernel_table,
                 measure_kernel, parse_arguments, report, venv_tool, wasmtime_binary)

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- c-programs:begin -->", "<!-- c-programs:end -->"
ZIG_CC = [sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-wasi", "-O2", "-s"]


@dataclass(frozen=True)
class Program:
    name: str
    source: str  # relative to benchmarks/
    args: tuple[str, ...]
    data_dir: bool = False  # run with an empty directory preopened as /data (--dir)

    @property
    def work(self) -> str:
        return " ".join((Path(self.source).stem,) + self.args)


# Sized so that Wasmtime takes roughly 0.3-1 s each on the reference machine.
PROGRAMS = [
    Program("nbody", "c/nbody.c", ("5000000",)),
    Program("binary-trees", "c/binary_trees.c", ("16",)),
    Program("hash map", "c/hashmap.c", ("10000000",)),
    Program("sort", "c/sort.c", ("2000000",)),
    Program("file workload", "programs/file_workload.c", ("8",), data_dir=True),
]


def build(program: Program, workdir: Path) -> Path:
    out = workdir / f"{Path(program.source).stem}.wasm"
    result = subprocess.run([*ZIG_CC, str(HERE / program.source), "-o", str(out)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise HarnessError(f"{program.source}: {first_line(result.stderr)}")
    return out


def measure_program(program: Program, workdir: Path, repeat: int, timeout: float) -> KernelRow:
    wasm = build(program, workdir)

    def options(tool: str) -> list[str]:
        if not program.data_dir:
            return []
        data = workdir / f"{Path(program.source).stem}-data-{tool}"
        data.mkdir()
        return ["--dir", f"{data}::/data"]

    reference = best_time([wasmtime_binary(), "run", *options("wasmtime"), str(wasm), *program.args],
                          repeat, timeout)
    ours = best_time([venv_tool("stackstitch"), "run", *options("stackstitch"), str(wasm),
                      *program.args], repeat, timeout)
    if ours.error is None and reference.error is None and ours.output != reference.output:
        ours.error = f"output {ours.output[:40]!r} differs from wasmtime's {reference.output[:40]!r}"
    return KernelRow(program, reference, ours)


def faster(first: KernelRow, second: KernelRow) -> KernelRow:
    """Per tool, the better of two measurements of the same work."""
    def better(a: Timing, b: Timing) -> Timing:
        if a.error or b.error:
            return a if a.error is None else b
        return a if a.seconds <= b.seconds else b
    return KernelRow(first.kernel, better(first.wasmtime, second.wasmtime),
                     better(first.stackstitch, second.stackstitch))


def main() -> int:
    parser, args, selected = parse_arguments("Benchmark C programs against Wasmtime.",
                                             [p.name for p in PROGRAMS])
    programs = [p for p in PROGRAMS if selected(p.name)]
    if not programs:
        parser.error(f"--filter {' '.join(args.filter)} matches no benchmark")

    def measure() -> list:
        with tempfile.TemporaryDirectory(prefix="stackstitch-c-") as tmp:
            workdir = Path(tmp)
            # Start-up before and after the programs: a busy moment does not inflate it.
            before = measure_kernel(STARTUP, workdir, args.repeat, args.timeout)
            rows = [measure_program(p, workdir, args.repeat, args.timeout) for p in programs]
            after = measure_kernel(STARTUP, workdir, args.repeat, args.timeout)
        return [kernel_table(rows, faster(before, after))]

    return report("c_programs.py", measure, args,
                  f"built with zig {zig_version()} (`cc -target wasm32-wasi -O2`); "
                  f"best of {args.repeat} runs", BEGIN, END)


def zig_version() -> str:
    result = subprocess.run([sys.executable, "-m", "ziglang", "version"], capture_output=True,
                            text=True)
    return result.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
