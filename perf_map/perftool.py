"""Running the `perf` tool: record with frame-pointer call graphs, inject the jitdump,
report and script. Failures become `PerfError` with one line saying what went wrong.
"""

from __future__ import annotations

import os
import shutil
import subprocess

# `-k 1`: CLOCK_MONOTONIC sample times, the clock of our jitdump records. cpu-clock: these
# virtual machines have no hardware counters. Frame pointers: the only call-graph mode
# that crosses switched stacks.
RECORD_OPTIONS = ["-k", "1", "-e", "cpu-clock", "-g", "--call-graph=fp"]


class PerfError(Exception):
    """perf is missing or one of its steps failed (message is one line)."""


def perf_binary() -> str:
    path = shutil.which("perf")
    if path is None:
        raise PerfError("perf is not installed (Debian/Ubuntu: apt-get install linux-perf)")
    return path


def _run(args: list[str], what: str, capture: bool = True) -> str:
    try:
        done = subprocess.run([perf_binary(), *args], capture_output=capture, text=True)
    except OSError as e:
        raise PerfError(f"cannot run perf: {e.strerror or e}") from None
    if done.returncode != 0:
        detail = " ".join((done.stderr or "").split())[-300:] if capture else ""
        raise PerfError(f"perf {what} failed (status {done.returncode})"
                        + (f": {detail}" if detail else ""))
    return done.stdout or ""


def record(data_path: str, command: list[str], frequency: int | None = None) -> int:
    """Profile `command`; returns its exit status (perf passes it through)."""
    options = RECORD_OPTIONS + (["-F", str(frequency)] if frequency else [])
    try:
        status = subprocess.run([perf_binary(), "record", "-q", *options, "-o", data_path,
                                 "--", *command]).returncode
    except OSError as e:
        raise PerfError(f"cannot run perf: {e.strerror or e}") from None
    if not os.path.isfile(data_path) or os.path.getsize(data_path) == 0:
        raise PerfError(f"perf record wrote no profile (status {status}); "
                        "is kernel.perf_event_paranoid too strict?")
    return status


def inject_jit(data_path: str, out_path: str) -> None:
    """Turn the jitdump's records into ELF files and mmap events perf can symbolize."""
    _run(["inject", "--jit", "-i", data_path, "-o", out_path], "inject --jit")


def report_stdio(data_path: str, extra: list[str] = ()) -> str:
    return _run(["report", "--stdio", "-i", data_path, *extra], "report")


def script(data_path: str, fields: str = "comm,period,ip,sym,dso") -> str:
    return _run(["script", "-F", fields, "-i", data_path], "script")
