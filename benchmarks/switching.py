"""Stack-switching benchmarks: stackstitch (native and libcall switching) against the
Wasmtime CLI, same module, same run.

Five micro-benchmarks (kernels/switch_*.wat), each run by the three as a fresh process,
best of N wall-clock times; each tool's start-up (kernels/startup.wat) is subtracted
before dividing by the number of operations. Then three full-scale runs, once each, with
the child's peak RSS: two million create-run-finish cycles, 100,000 continuations
suspended at the same time, and a million created and never resumed.

    python benchmarks/switching.py [--filter NAME] [--repeat N] [--markdown]
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from run import (CHILD_ENV, Timing, best_time, first_line, parse_arguments, report,
                 venv_tool, wasmtime_binary, wat_to_wasm)

HERE = Path(__file__).resolve().parent
KERNELS = HERE / "kernels"
BEGIN, END = "<!-- switching:begin -->", "<!-- switching:end -->"
WASMTIME_FLAGS = ["-W", "stack-switching=y,function-references=y,exceptions=y"]


@dataclass(frozen=True)
class Work:
    """One call of a kernel's export, `export(n)`: n operations, printing `expect(n)`."""

    name: str
    file: str
    export: str
    n: int
    operation: str
    expect: Callable[[int], int]
    n_stackstitch: int | None = None  # when `n` is too little work to time stackstitch
    seconds_limit: float | None = None  # full scale: what a run must stay under
    rss_limit_mib: int | None = None

    def size(self, tool: str) -> int:
        return self.n if tool == "wasmtime" or self.n_stackstitch is None else self.n_stackstitch

    def call(self, tool: str) -> str:
        return f"{self.export}({self.size(tool):,})" if self.n else f"{self.export}()"


def triangle(n: int) -> int:
    return n * (n + 1) // 2


def identity(n: int) -> int:
    return n


# Sized so that Wasmtime takes roughly 0.3-1 s each. Wasmtime never reuses a continuation
# stack, maps one at every cont.new and fails with ENOMEM at about 32K of them, which caps
# its churn and its unresumed continuations; stackstitch does 40-80 times more there,
# enough to time after subtracting its start-up.
MICRO = [
    Work("generator", "switch_generator.wat", "run", 20_000_000, "suspend/resume round trip",
         triangle),
    Work("ping-pong", "switch_pingpong.wat", "run", 40_000_000, "switch", identity),
    Work("10 handlers", "switch_handlers.wat", "run", 10_000_000,
         "round trip, suspend searching 10 handlers", triangle),
    Work("churn", "switch_churn.wat", "churn", 25_000, "cont.new + run to completion", identity,
         n_stackstitch=2_000_000),
    Work("unresumed", "switch_churn.wat", "unresumed", 25_000, "cont.new, never resumed", identity,
         n_stackstitch=1_000_000),
]
FULL_SCALE = [
    Work("churn", "switch_churn.wat", "churn", 2_000_000, "create-run-finish cycle", identity,
         rss_limit_mib=200),
    Work("hold", "switch_churn.wat", "hold", 100_000, "continuation suspended at once", identity),
    Work("unresumed", "switch_churn.wat", "unresumed", 1_000_000, "continuation never resumed",
         identity, seconds_limit=5.0, rss_limit_mib=300),
]
STARTUP = Work("startup", "startup.wat", "one", 0, "", lambda _: 1)


@dataclass(frozen=True)
class Tool:
    name: str
    command: list[str]  # what precedes the module and invocation

    def invoke(self, wasm: Path, work: Work) -> list[str]:
        args = [str(work.size(self.name))] if work.n else []
        if self.name == "wasmtime":
            return [*self.command, "--invoke", work.export, str(wasm), *args]
        return [*self.command, str(wasm), "--invoke", work.export, *args]


def tools() -> list[Tool]:
    stackstitch = venv_tool("stackstitch")
    return [Tool("wasmtime", [wasmtime_binary(), "run", *WASMTIME_FLAGS]),
            Tool("native", [stackstitch, "run", "--switching=native"]),
            Tool("libcall", [stackstitch, "run", "--switching=libcall"])]


# -- measuring --------------------------------------------------------------------------

@dataclass
class Run:
    """One run of a command: wall time, output, the child's peak RSS, or why it failed."""

    seconds: float | None = None
    output: str = ""
    peak_kib: int | None = None
    error: str | None = None


def error_cause(stderr: str) -> str:
    """The innermost cause in a Wasmtime error chain (`Caused by: ... N: message`),
    else the first line."""
    causes = re.findall(r"^    \d+: (\S.*)$", stderr, re.M)
    return causes[-1] if causes else first_line(stderr)


def run_once(command: list[str], timeout: float) -> Run:
    """Run `command` once; its peak RSS comes from wait4's resource usage."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        try:
            child = subprocess.Popen(command, stdout=out, stderr=err, text=True, env=CHILD_ENV)
        except OSError as e:
            return Run(error=f"cannot run: {e.strerror}")
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                child.kill()
                child.wait()
                return Run(error=f"timeout after {timeout:g} s")
            time.sleep(0.005)
        elapsed = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        run = Run(elapsed, out.read().strip(), usage.ru_maxrss)
        if child.returncode != 0:
            run.error = f"exit {child.returncode}: {error_cause(err.read())}"
        return run


@dataclass
class MicroRow:
    work: Work
    timings: dict[str, Timing]  # by tool name


def measure_micro(work: Work, wasm: Path, all_tools: list[Tool], repeat: int,
                  timeout: float) -> MicroRow:
    timings = {tool.name: check(best_time(tool.invoke(wasm, work), repeat, timeout), work, tool.name)
               for tool in all_tools}
    return MicroRow(work, timings)


def check(result: Timing | Run, work: Work, tool: str) -> Timing | Run:
    """Mark a result that is not what the kernel must print as an error."""
    expected = str(work.expect(work.size(tool)))
    if result.error is None and result.output != expected:
        result.error = f"printed {result.output[:40]!r}, expected {expected}"
    return result


def faster_of(first: MicroRow, second: MicroRow) -> MicroRow:
    """Per tool, the better of two measurements of the same work."""
    def better(a: Timing, b: Timing) -> Timing:
        if a.error or b.error:
            return a if a.error is None else b
        return a if a.seconds <= b.seconds else b
    return MicroRow(first.work, {tool: better(first.timings[tool], second.timings[tool])
                                 for tool in first.timings})


# -- reporting --------------------------------------------------------------------------

def net_ns_per_op(row: MicroRow, startup: MicroRow, tool: str) -> float | None:
    t, s = row.timings[tool], startup.timings[tool]
    if t.error or s.error or t.seconds is None or s.seconds is None:
        return None
    return max(t.seconds - s.seconds, 0.0) * 1e9 / row.work.size(tool)


def ns(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f} ns"


def ratio(ours: float | None, theirs: float | None) -> str:
    if not ours or not theirs:
        return "n/a"
    r = ours / theirs
    return f"{r:.2f}x" if r >= 0.1 else f"{r:.2g}x"


def micro_tables(rows: list[MicroRow], startup: MicroRow) -> list[list[list[str]]]:
    per_op = [["benchmark", "operation", "wasmtime", "native", "libcall",
               "native / wasmtime", "libcall / wasmtime", "libcall / native"]]
    for row in rows:
        w, n, lc = (net_ns_per_op(row, startup, t) for t in ("wasmtime", "native", "libcall"))
        per_op.append([row.work.name, row.work.operation, ns(w), ns(n), ns(lc),
                       ratio(n, w), ratio(lc, w), ratio(lc, n)])
    wall = [["benchmark", "work (wasmtime)", "work (stackstitch)", "wasmtime", "native", "libcall"]]
    for row in [startup] + rows:
        wall.append([row.work.name, row.work.call("wasmtime"), row.work.call("native")]
                    + [seconds(row.timings[t]) for t in ("wasmtime", "native", "libcall")])
    return [per_op, wall]


def seconds(t: Timing | Run) -> str:
    return f"{t.seconds:.3f} s" if t.error is None else f"error: {t.error}"


def within(ok: bool, limit: str) -> str:
    return f" (under {limit})" if ok else f" (over {limit})"


def full_scale_table(results: list[tuple[Work, str, Run]]) -> list[list[str]]:
    table = [["run", "tool", "result", "time", "per operation, start-up included", "peak RSS"]]
    for work, tool, run in results:
        per_op = f"{run.seconds * 1e9 / work.n:,.0f} ns" if run.error is None else "n/a"
        peak = f"{run.peak_kib / 1024:,.0f} MiB" if run.peak_kib else "n/a"
        time = seconds(run)
        if run.error is None and work.rss_limit_mib and run.peak_kib:
            peak += within(run.peak_kib < work.rss_limit_mib * 1024, f"{work.rss_limit_mib} MiB")
        if run.error is None and work.seconds_limit:
            time += within(run.seconds < work.seconds_limit, f"{work.seconds_limit:g} s")
        table.append([work.call(tool), tool,
                      run.output if run.error is None else "failed", time, per_op, peak])
    return table


# -- main -------------------------------------------------------------------------------

def main() -> int:
    parser, args, selected = parse_arguments("Stack-switching benchmarks against Wasmtime.",
                                             [w.name for w in MICRO] + ["full-scale"])

    micro = [w for w in MICRO if selected(w.name)]
    if not micro and not selected("full-scale"):
        parser.error(f"--filter {' '.join(args.filter)} matches no benchmark")

    def measure() -> list:
        all_tools = tools()
        tables = []
        with tempfile.TemporaryDirectory(prefix="stackstitch-switching-") as tmp:
            workdir = Path(tmp)

            def wasm_of(work: Work) -> Path:
                return wat_to_wasm(KERNELS / work.file, workdir / f"{Path(work.file).stem}.wasm")

            if micro:
                # Start-up is measured before and after the kernels, so that a busy moment
                # does not inflate what is subtracted from all of them.
                before = measure_micro(STARTUP, wasm_of(STARTUP), all_tools, args.repeat, args.timeout)
                rows = [measure_micro(w, wasm_of(w), all_tools, args.repeat, args.timeout) for w in micro]
                after = measure_micro(STARTUP, wasm_of(STARTUP), all_tools, args.repeat, args.timeout)
                tables += micro_tables(rows, faster_of(before, after))
            if selected("full-scale"):
                tables.append(full_scale_table([
                    (work, tool.name,
                     check(run_once(tool.invoke(wasm_of(work), work), args.timeout), work, tool.name))
                    for work in FULL_SCALE for tool in all_tools]))
        return tables

    return report("switching.py", measure, args,
                  f"micro-benchmarks best of {args.repeat} runs, full-scale runs once", BEGIN, END)

if __name__ == "__main__":
    sys.exit(main())
