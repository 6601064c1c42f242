"""Run a script in the reference engine (`wasmtime wast`) and read how it went.

`wasmtime wast` stops at the first directive that fails and names its line, then says
what Wasmtime got: "result 0 didn't match ... actual ...", "expected trap, got
Core([...])", or an error whose innermost cause is "wasm trap: ..." or "thrown Wasm
exception".
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import tools
from .trap_kinds import KINDS

FAILED_LINE = re.compile(r"failed directive on .*:(\d+)")


@dataclass
class ReferenceRun:
    status: str  # "pass", "fail" (at `line`), "timeout", or "error" (no line: a bad script)
    line: int | None = None
    message: str = ""

    @property
    def outcome(self) -> str:
        """What Wasmtime did at the failing line: "return", "values differ", "trap:KIND",
        "exception", or "other"."""
        return wasmtime_outcome(self.message)


def run_script(path: Path, timeout: float) -> ReferenceRun:
    path = path.resolve()
    command = [tools.wasmtime(), "wast", "-W", tools.WASMTIME_FEATURES,
               "-C", "parallel-compilation=n", str(path)]
    try:
        proc = subprocess.run(command, capture_output=True, timeout=timeout, env=tools.TOOL_ENV,
                              cwd=path.parent)
    except subprocess.TimeoutExpired:
        return ReferenceRun("timeout")
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode == 0:
        return ReferenceRun("pass")
    match = FAILED_LINE.search(stderr)
    if match is None:
        return ReferenceRun("error", message=stderr.strip()[-2000:])
    return ReferenceRun("fail", int(match.group(1)), condense(stderr[match.end():]))


def condense(message: str) -> str:
    """The failure without its backtrace frames, on as few lines as it takes."""
    lines = [line.strip() for line in message.splitlines()]
    kept = [line for line in lines
            if line and not re.match(r"(\d+: +0x[0-9a-f]+ - |at \./|\d+: \S+!<wasm function)", line)]
    return " | ".join(kept)[:1500]


def wasmtime_outcome(message: str) -> str:
    if "wasm trap:" in message:
        trap = message.rsplit("wasm trap:", 1)[1]
        for kind, (_, text) in KINDS.items():
            if text in trap:
                return "trap:" + kind
        return "trap:other"
    if "thrown Wasm exception" in message:
        return "exception"
    if "got Core(" in message:
        return "return"
    if "didn't match" in message:
        return "values differ"
    return "other"

