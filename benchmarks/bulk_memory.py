"""Bulk memory benchmarks: memory.grow, memory.copy and memory.fill, stackstitch against the
Wasmtime CLI, same module, same run.

Each export of kernels/bulk_memory.wat loops over one operation n times; both tools run it
as a fresh process, best of N wall-clock times. Each tool's start-up (kernels/startup.wat,
measured before and after, the better counts) is subtracted before dividing by n.

    python benchmarks/bulk_memory.py [--filter NAME] [--repeat N] [--markdown]
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from run import (KERNELS, WASMTIME_FLAGS, Timing, best_time, parse_arguments, ratio, report,
                 seconds, venv_tool, wasmtime_binary, wat_to_wasm)

BEGIN, END = "<!-- bulk-memory:begin -->", "<!-- bulk-memory:end -->"
KERNEL = "bulk_memory.wat"


@dataclass(frozen=True)
class Work:
    name: str
    export: str
    n: int
    operation: str

    @property
    def call(self) -> str:
        return f"{self.export}({self.n:,})" if self.n else f"{self.export}()"


# The grow loop is the repro (a million calls); the others are sized so that
# Wasmtime takes roughly 0.3-1 s.
WORK = [
    Work("memory.grow", "grow", 1_000_000, "memory.grow by 0 or 1 page (half fail at the maximum)"),
    Work("copy 16 B", "copy16", 50_000_000, "memory.copy of 16 bytes"),
    Work("copy 64 KiB", "copy64k", 200_000, "memory.copy of 64 KiB"),
    Work("fill 16 B", "fill16", 50_000_000, "memory.fill of 16 bytes"),
    Work("fill 64 KiB", "fill64k", 200_000, "memory.fill of 64 KiB"),
]
STARTUP = Work("startup", "one", 0, "")


def commands(wasm: Path, work: Work) -> dict[str, list[str]]:
    args = [str(work.n)] if work.n else []
    return {"wasmtime": [wasmtime_binary(), "run", *WASMTIME_FLAGS, "--invoke", work.export,
                         str(wasm), *args],
            "stackstitch": [venv_tool("stackstitch"), "run", str(wasm), "--invoke", work.export, *args]}


def measure(work: Work, wasm: Path, repeat: int, timeout: float) -> dict[str, Timing]:
    timings = {tool: best_time(command, repeat, timeout) for tool, command in commands(wasm, work).items()}
    ours, theirs = timings["stackstitch"], timings["wasmtime"]
    if ours.error is None and theirs.error is None and ours.output != theirs.output:
        ours.error = f"result {ours.output!r} differs from wasmtime's {theirs.output!r}"
    return timings


def best(first: dict[str, Timing], second: dict[str, Timing]) -> dict[str, Timing]:
    def better(a: Timing, b: Timing) -> Timing:
        if a.error or b.error:
            return a if a.error is None else b
        return a if a.seconds <= b.seconds else b
    return {tool: better(first[tool], second[tool]) for tool in first}


def net_ns(timing: Timing, startup: Timing, n: int) -> float | None:
    if timing.error or startup.error:
        return None
    return max(timing.seconds - startup.seconds, 0.0) * 1e9 / n


def ns(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ns"


def tables(rows: list[tuple[Work, dict]], startup: dict[str, Timing]) -> list[list[list[str]]]:
    per_op = [["benchmark", "operation", "wasmtime", "stackstitch", "ratio"]]
    for work, timings in rows:
        theirs, ours = (net_ns(timings[t], startup[t], work.n) for t in ("wasmtime", "stackstitch"))
        per_op.append([work.name, work.operation, ns(theirs), ns(ours), ratio(ours, theirs)])
    wall = [["benchmark", "work", "wasmtime", "stackstitch", "ratio"]]
    for work, timings in [(STARTUP, startup)] + rows:
        theirs, ours = timings["wasmtime"], timings["stackstitch"]
        wall.append([work.name, work.call, seconds(theirs), seconds(ours), ratio(ours.seconds, theirs.seconds)])
    return [per_op, wall]


def main() -> int:
    parser, args, selected = parse_arguments("Bulk memory benchmarks against Wasmtime.",
                                             [w.name for w in WORK])
    chosen = [w for w in WORK if selected(w.name)]
    if not chosen:
        parser.error(f"--filter {' '.join(args.filter)} matches no benchmark")

    def run_all() -> list:
        with tempfile.TemporaryDirectory(prefix="stackstitch-bulk-") as tmp:
            wasm = wat_to_wasm(KERNELS / KERNEL, Path(tmp) / "bulk_memory.wasm")
            startup_wasm = wat_to_wasm(KERNELS / "startup.wat", Path(tmp) / "startup.wasm")
            before = measure(STARTUP, startup_wasm, args.repeat, args.timeout)
            rows = [(w, measure(w, wasm, args.repeat, args.timeout)) for w in chosen]
            after = measure(STARTUP, startup_wasm, args.repeat, args.timeout)
        return tables(rows, best(before, after))

    return report("bulk_memory.py", run_all, args, f"best of {args.repeat} runs", BEGIN, END)


if __name__ == "__main__":
    sys.exit(main())
