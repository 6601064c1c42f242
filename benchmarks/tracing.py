"""What switch tracing costs, per event, and that it costs nothing when off.

In-process, the switching kernels run in a store without tracing and in a tracing one
(`Store(trace_events=N)`, the store `stackstitch trace record` uses), both switching
modes; the difference per operation, divided by the events each operation writes
(counted from the ring), is the cost of one event. Times are the best of N runs in CPU
time (`time.process_time`), which other processes on a busy machine do not inflate.

Off, the code is the engine's ordinary code: the table counts the instructions tracing
adds to the generated code and stubs, and the timestamp reads (rdtsc) among them; without
tracing there are none (tests/test_tracing.py checks this instruction by instruction).

    python benchmarks/tracing.py [--filter NAME] [--repeat N] [--markdown]
"""

from __future__ import annotations

import ctypes
import sys
import time
from pathlib import Path

from capstone import CS_ARCH_X86, CS_MODE_64, Cs
from run import HarnessError, parse_arguments, report
from switching import MICRO, ns

from stackstitch.engine import layout as L
from stackstitch.engine.frontend.loader import load_module
from stackstitch.engine.runtime.store import Store

HERE = Path(__file__).resolve().parent
KERNELS = HERE / "kernels"
BEGIN, END = "<!-- tracing:begin -->", "<!-- tracing:end -->"
RING = 1 << 22  # events kept; the runs write more, so the ring wraps as in long traces
SIZES = {"generator": 2_000_000, "ping-pong": 4_000_000, "10 handlers": 1_000_000,
         "churn": 500_000}


def best_cpu_seconds(run, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best


def measure(work, mode: str, n: int, repeat: int) -> tuple[float, float, float]:
    """(ns per operation off, on, events per operation)."""
    module = load_module(str(KERNELS / work.file))
    per_op = []
    events = 0.0
    for trace_events in (0, RING):
        store = Store(switching=mode, trace_events=trace_events)
        function = store.instantiate(module, {}).exports[work.export]
        if function(1000) != [work.expect(1000)]:
            raise HarnessError(f"{work.name}: wrong result")
        if trace_events:
            before = store.runtime[L.RT_TRACE_COUNT // 8]
            function(n)
            events = (store.runtime[L.RT_TRACE_COUNT // 8] - before) / n
        per_op.append(best_cpu_seconds(lambda: function(n), repeat) * 1e9 / n)
    return per_op[0], per_op[1], events


def rdtsc_ns(repeat: int, n: int = 10_000_000) -> float:
    """One timestamp read alone: a loop of rdtsc, less the same loop without it."""
    from stackstitch.engine.compiler.x86 import NE, RCX, RDI, Assembler, Label
    from stackstitch.engine.runtime.codemem import CodeRegion

    def loop_seconds(read: bool) -> float:
        a, top = Assembler(), Label()
        a.mov(64, RCX, RDI)
        a.bind(top)
        if read:
            a.rdtsc()
        a.alu_imm("sub", 64, RCX, 1)
        a.jcc(NE, top)
        a.ret()
        region = CodeRegion(bytes(a.buf))
        function = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_uint64)(region.address)
        return best_cpu_seconds(lambda: function(n), repeat)

    return (loop_seconds(True) - loop_seconds(False)) * 1e9 / n


def code_table() -> list[list[str]]:
    """Instructions in the generated code of the kernels and in the stubs, off and on."""
    disassembler = Cs(CS_ARCH_X86, CS_MODE_64)

    def count(code: bytes) -> tuple[int, int]:
        instructions = list(disassembler.disasm(code, 0))
        return len(instructions), sum(i.mnemonic == "rdtsc" for i in instructions)

    rows = [["code", "tracing", "instructions", "timestamp reads"]]
    for trace_events in (0, RING):
        store = Store(trace_events=trace_events)
        generated = [0, 0]
        for work in MICRO:
            store.instantiate(load_module(str(KERNELS / work.file)), {})
        for _, compiled, _ in store._compiled.values():
            n, reads = count(compiled.code)
            generated = [generated[0] + n, generated[1] + reads]
        stubs = count(ctypes.string_at(store.stubs.region.address, store.stubs.region.size))
        label = "on" if trace_events else "off"
        rows.append(["switching kernels", label, f"{generated[0]:,}", f"{generated[1]:,}"])
        rows.append(["stubs", label, f"{stubs[0]:,}", f"{stubs[1]:,}"])
    return rows


def main() -> int:
    names = [work.name for work in MICRO]
    parser, args, selected = parse_arguments("Switch tracing cost.", names)

    def run() -> list:
        table = [["benchmark", "operation", "switching", "off", "on", "events / op",
                  "per event"]]
        for work in MICRO:
            if not selected(work.name):
                continue
            for mode in ("native", "libcall"):
                off, on, events = measure(work, mode, SIZES[work.name], args.repeat)
                table.append([work.name, work.operation, mode, ns(off), ns(on), f"{events:.0f}",
                              ns((on - off) / events) if events else "n/a"])
        table.append(["timestamp read", "rdtsc alone, back to back", "", "", "", "",
                      ns(rdtsc_ns(args.repeat))])
        return [table, code_table()]

    return report("tracing.py", run, args, f"best of {args.repeat} runs, CPU time, "
                  f"a ring of {RING:,} events", BEGIN, END)


if __name__ == "__main__":
    sys.exit(main())
