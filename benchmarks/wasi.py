"""WASI: a real C program that reads and writes files, side by side with the Wasmtime CLI,
and what one WASI call costs in process.

The file workload (programs/file_workload.c, built with the ziglang wheel's `zig cc -O2`)
runs in both tools as a fresh process on an empty preopened directory (`--dir DIR::/data`),
best of N wall-clock times; both must print the same checksums. Each tool's start-up
(kernels/startup.wat) is given as well and subtracted for the second ratio, as in run.py.
In process, a loop calls one WASI function n times (timed as CPU time around `invoke`, best
of N), for a few calls that programs make often.

    python benchmarks/wasi.py [--filter NAME] [--repeat N] [--markdown]
"""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from run import (STARTUP, HarnessError, Kernel, KernelRow, Timing, best_time, first_line,
                 kernel_table, measure_kernel, parse_arguments, report, venv_tool,
                 wasmtime_binary)

from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.host import wasi
from stackstitch.engine.runtime.store import Store

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- wasi:begin -->", "<!-- wasi:end -->"
WASMTIME_FLAGS = ["-W", "stack-switching=y,function-references=y,exceptions=y"]

# Sized so that Wasmtime takes about 0.5 s.
FILE_WORKLOAD = Kernel("file workload", "programs/file_workload.c", "file_workload", ("8",))
IN_PROCESS_CALLS = 100_000

# In-process calls: (label, import, WAT parameters, the arguments each call passes). Linear
# memory holds a path at 0, an iovec at 16 naming 64 bytes at 64, results at 32.
CALLS = [
    ("args_sizes_get: two words, no system call", "args_sizes_get", "i32 i32",
     "(i32.const 32) (i32.const 36)"),
    ("clock_time_get: monotonic", "clock_time_get", "i32 i64 i32",
     "(i32.const 1) (i64.const 1) (i32.const 40)"),
    ("fd_write: 64 bytes to a file", "fd_write", "i32 i32 i32 i32",
     "(i32.const 4) (i32.const 16) (i32.const 1) (i32.const 32)"),
    ("fd_pread: 64 bytes of a file", "fd_pread", "i32 i32 i32 i64 i32",
     "(i32.const 4) (i32.const 16) (i32.const 1) (i64.const 0) (i32.const 32)"),
    ("fd_seek: to the start of a file", "fd_seek", "i32 i64 i32 i32",
     "(i32.const 4) (i64.const 0) (i32.const 0) (i32.const 40)"),
    ("path_filestat_get: one path component", "path_filestat_get", "i32 i32 i32 i32 i32",
     "(i32.const 3) (i32.const 1) (i32.const 0) (i32.const 8) (i32.const 128)"),
]


def loop_module(name: str, params: str, args: str) -> str:
    """`setup()` opens file.bin as fd 4 (read and write); `run(n)` calls `name` n times and
    returns the OR of the errnos."""
    return f"""(module
  (import "wasi_snapshot_preview1" "path_open" (func $open
    (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "{name}" (func $call (param {params}) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "file.bin")
  (data (i32.const 16) "\\40\\00\\00\\00\\40\\00\\00\\00")
  (func (export "setup") (result i32)
    (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 0)
                (i64.const 0x42) (i64.const 0x42) (i32.const 0) (i32.const 48)))
  (func (export "run") (param $n i32) (result i32)
    (local $failed i32)
    (loop $again
      (local.set $failed (i32.or (local.get $failed) (call $call {args})))
      (br_if $again (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $failed)))"""


def in_process_table(workdir: Path, repeat: int) -> list[list[str]]:
    """ns per call, each kernel with a fresh Wasi that has `workdir` preopened (fd 3) and
    its file.bin (8 KiB) open as fd 4."""
    rows = [["call", "per call"]]
    for label, name, params, args in CALLS:
        (workdir / "file.bin").write_bytes(bytes(8192))
        process = wasi.Wasi(["bench"], {}, stdout=io.BytesIO(), preopens=[(str(workdir), "/w")])
        try:
            store = Store()
            instance = store.instantiate(load_bytes(loop_module(name, params, args).encode(),
                                                    text=True), process.imports(store))
            process.bind(instance)
            if instance.invoke("setup", [])[0] != wasi.ESUCCESS:
                raise HarnessError("cannot open file.bin in the preopened directory")
            best = float("inf")
            for _ in range(repeat):
                start = time.process_time()
                failed = instance.invoke("run", [IN_PROCESS_CALLS])[0]
                best = min(best, time.process_time() - start)
                if failed:
                    raise HarnessError(f"{name} failed in the loop (errno bits {failed})")
        finally:
            process.close()
        rows.append([label, f"{best * 1e9 / IN_PROCESS_CALLS:,.0f} ns"])
    return rows


def build_workload(workdir: Path) -> Path:
    if importlib.util.find_spec("ziglang") is None:
        raise HarnessError("the ziglang wheel is not installed")
    out = workdir / "file_workload.wasm"
    build = subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-wasi",
                            "-O2", "-s", str(HERE / FILE_WORKLOAD.file), "-o", str(out)],
                           capture_output=True, text=True, timeout=600)
    if build.returncode != 0:
        raise HarnessError(f"zig cc: {first_line(build.stderr)}")
    return out


def measure_workload(wasm: Path, workdir: Path, repeat: int, timeout: float) -> KernelRow:
    timings = {}
    for tool, command in (("wasmtime", [wasmtime_binary(), "run", *WASMTIME_FLAGS]),
                          ("stackstitch", [venv_tool("stackstitch"), "run"])):
        data = workdir / f"data-{tool}"
        data.mkdir()
        timings[tool] = best_time([*command, "--dir", f"{data}::/data", str(wasm),
                                   *FILE_WORKLOAD.args], repeat, timeout)
    ours, theirs = timings["stackstitch"], timings["wasmtime"]
    if ours.error is None and theirs.error is None and ours.output != theirs.output:
        ours = Timing(error=f"output differs from wasmtime's: {first_line(ours.output)!r}")
    return KernelRow(FILE_WORKLOAD, theirs, ours)


def main() -> int:
    parser, args, selected = parse_arguments(
        "WASI: a file workload against Wasmtime, and in-process call costs.",
        ["file workload", "in-process"])
    if not selected("file workload") and not selected("in-process"):
        parser.error(f"--filter {' '.join(args.filter)} matches no benchmark")

    def measure() -> list:
        tables = []
        with tempfile.TemporaryDirectory(prefix="stackstitch-wasi-") as tmp:
            workdir = Path(tmp)
            if selected("file workload"):
                wasm = build_workload(workdir)
                startup = measure_kernel(STARTUP, workdir, args.repeat, args.timeout)
                row = measure_workload(wasm, workdir, args.repeat, args.timeout)
                tables.append(kernel_table([row], startup))
            if selected("in-process"):
                calls = workdir / "calls"
                calls.mkdir()
                tables.append(in_process_table(calls, args.repeat))
        return tables

    return report("wasi.py", measure, args, f"best of {args.repeat} runs", BEGIN, END)


if __name__ == "__main__":
    sys.exit(main())
