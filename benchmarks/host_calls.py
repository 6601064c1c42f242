"""What a call from Wasm code to a host function costs.

Side by side with the Wasmtime CLI: kernels/host_calls_wasi.wat calls the WASI import
`args_sizes_get` n times, run by both tools as a fresh process (best of N wall-clock
times, each tool's start-up subtracted, divided by n). In-process: kernels/host_calls_python.wat
calls a Python function n times, from the main stack and from inside a continuation (in
both switching modes), timed around `invoke`; a plain Python call of the same function is
listed for scale.

    python benchmarks/host_calls.py [--filter NAME] [--repeat N] [--markdown]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from run import HarnessError, parse_arguments, report, venv_tool, wasmtime_binary, wat_to_wasm
from switching import STARTUP, Tool, Work, faster_of, measure_micro, net_ns_per_op, ns

from stackstitch.engine.runtime.store import Store

HERE = Path(__file__).resolve().parent
KERNELS = HERE / "kernels"
BEGIN, END = "<!-- hostcalls:begin -->", "<!-- hostcalls:end -->"
WASMTIME_FLAGS = ["-W", "stack-switching=y,function-references=y,exceptions=y"]

# Sized so that Wasmtime takes about 0.6 s; stackstitch makes a fifth of the calls.
WASI_CALLS = Work("wasi", "host_calls_wasi.wat", "calls", 5_000_000,
                  "call args_sizes_get", lambda n: n, n_stackstitch=1_000_000)
IN_PROCESS_CALLS = 300_000


def cli_tools() -> list[Tool]:
    return [Tool("wasmtime", [wasmtime_binary(), "run", *WASMTIME_FLAGS]),
            Tool("stackstitch", [venv_tool("stackstitch"), "run"])]


def cli_table(wasm_of, repeat: int, timeout: float) -> list[list[str]]:
    tools = cli_tools()
    startup_wasm = wasm_of(STARTUP)
    before = measure_micro(STARTUP, startup_wasm, tools, repeat, timeout)
    row = measure_micro(WASI_CALLS, wasm_of(WASI_CALLS), tools, repeat, timeout)
    after = measure_micro(STARTUP, startup_wasm, tools, repeat, timeout)
    startup = faster_of(before, after)
    table = [["benchmark", "operation", "work (wasmtime)", "work (stackstitch)", "wasmtime",
              "stackstitch", "stackstitch / wasmtime"]]
    theirs, ours = (net_ns_per_op(row, startup, t.name) for t in tools)
    table.append([WASI_CALLS.name, WASI_CALLS.operation, WASI_CALLS.call("wasmtime"),
                  WASI_CALLS.call("stackstitch"), ns(theirs), ns(ours),
                  f"{ours / theirs:.1f}x" if ours and theirs else "n/a"])
    return table


def best_ns_per_call(run, n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best * 1e9 / n


def in_process_table(wasm: bytes, repeat: int) -> list[list[str]]:
    from stackstitch.engine.frontend.loader import load_bytes
    from stackstitch.engine.frontend.types import FuncType

    n = IN_PROCESS_CALLS
    expected = [sum(range(n + 1)) & 0xFFFFFFFF]

    def identity(x):
        return x

    rows = [["caller", "switching", "per call"]]
    for export, modes in (("calls", ("native",)), ("calls_in_continuation", ("native", "libcall"))):
        for mode in modes:
            store = Store(switching=mode)
            host = store.host_function(FuncType(("i32",), ("i32",)), identity, "identity")
            instance = store.instantiate(load_bytes(wasm), {("host", "identity"): host})
            if instance.invoke(export, [n]) != expected:
                raise HarnessError(f"{export}({n}) returned a wrong sum")
            where = "Wasm, main stack" if export == "calls" else "Wasm, in a continuation"
            rows.append([where, mode, ns(best_ns_per_call(lambda: instance.invoke(export, [n]),
                                                          n, repeat))])

    def python_loop():
        for k in range(n):
            identity(k)
    rows.append(["Python (for scale)", "", ns(best_ns_per_call(python_loop, n, repeat))])
    return rows


def main() -> int:
    parser, args, selected = parse_arguments("Host-call cost, against Wasmtime.",
                                             ["wasi", "in-process"])
    if not selected("wasi") and not selected("in-process"):
        parser.error(f"--filter {' '.join(args.filter)} matches no benchmark")

    def measure() -> list:
        tables = []
        with tempfile.TemporaryDirectory(prefix="stackstitch-hostcalls-") as tmp:
            workdir = Path(tmp)

            def wasm_of(work: Work) -> Path:
                return wat_to_wasm(KERNELS / work.file, workdir / f"{Path(work.file).stem}.wasm")

            if selected("wasi"):
                tables.append(cli_table(wasm_of, args.repeat, args.timeout))
            if selected("in-process"):
                python_kernel = wat_to_wasm(KERNELS / "host_calls_python.wat",
                                            workdir / "host_calls_python.wasm")
                tables.append(in_process_table(python_kernel.read_bytes(), args.repeat))
        return tables

    return report("host_calls.py", measure, args, f"best of {args.repeat} runs", BEGIN, END)

if __name__ == "__main__":
    sys.exit(main())
