"""Running the `perf` tool: record with frame-pointer call graphs, inject the jitdump,
report and script. Failures become `PerfError` with one line saying what went wrong.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

# `-k 1`: CLOCK_MONOTONIC sample times, the clock of our jitdump records. Frame pointers:
# the only call-graph mode that crosses switched stacks. The event is cpu-clock (these
# virtual machines have no hardware counters): see sampling_event.
RECORD_OPTIONS = ["-k", "1", "-g", "--call-graph=fp"]
PARANOID = "/proc/sys/kernel/perf_event_paranoid"
CAP_SYS_ADMIN, CAP_PERFMON = 21, 38
PROGRESS_SECONDS = 5.0  # a line on stderr this often while a recording runs


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


def sampling_event() -> str:
    """The event `record` samples, as this kernel's perf_event_paranoid allows it; PerfError
    (with the fix) where it allows nothing."""
    try:
        with open(PARANOID) as f:
            level = int(f.read())
    except (OSError, ValueError):
        raise PerfError(f"this kernel has no perf events ({PARANOID} is missing)") from None
    return event_for(level, privileged())


def privileged() -> bool:
    """Root, or a process with CAP_PERFMON or CAP_SYS_ADMIN: perf_event_paranoid does not
    apply."""
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/self/status") as f:
            effective = int(re.search(r"^CapEff:\s*([0-9a-f]+)", f.read(), re.M).group(1), 16)
    except (OSError, AttributeError):
        return False
    return bool(effective & (1 << CAP_PERFMON | 1 << CAP_SYS_ADMIN))


def event_for(paranoid: int, is_privileged: bool) -> str:
    """cpu-clock; at perf_event_paranoid 2, unprivileged users may sample only user space
    (`:u`), which holds all JIT code; above 2, nothing."""
    if is_privileged or paranoid < 2:
        return "cpu-clock"
    if paranoid == 2:
        return "cpu-clock:u"
    raise PerfError(f"kernel.perf_event_paranoid is {paranoid}, which forbids profiling; "
                    "allow it with `sudo sysctl kernel.perf_event_paranoid=2` (or run as root)")


def record(data_path: str, command: list[str], event: str, frequency: int | None = None,
           progress_seconds: float = PROGRESS_SECONDS) -> int:
    """Profile `command`; returns its exit status (perf passes it through). While it runs,
    a line on stderr every `progress_seconds` says how long and how much."""
    options = RECORD_OPTIONS + ["-e", event] + (["-F", str(frequency)] if frequency else [])
    try:
        perf = subprocess.Popen([perf_binary(), "record", "-q", *options, "-o", data_path,
                                 "--", *command])
    except OSError as e:
        raise PerfError(f"cannot run perf: {e.strerror or e}") from None
    start = time.monotonic()
    while True:
        try:
            status = perf.wait(timeout=progress_seconds)
            break
        except subprocess.TimeoutExpired:
            size = os.path.getsize(data_path) if os.path.exists(data_path) else 0
            print(f"stackstitch: recording for {time.monotonic() - start:.0f} s, "
                  f"{size / 1e6:.1f} MB of samples so far", file=sys.stderr, flush=True)
    if not os.path.isfile(data_path) or os.path.getsize(data_path) == 0:
        raise PerfError(f"perf record wrote no profile (status {status})")
    return status


def sample_count(data_path: str) -> int:
    """How many samples a profile holds (`perf report --stats`, which resolves nothing)."""
    match = re.search(r"SAMPLE events:\s*(\d+)", _run(["report", "--stats", "-i", data_path], "report"))
    return int(match.group(1)) if match else 0


def inject_jit(data_path: str, out_path: str) -> None:
    """Turn the jitdump's records into ELF files and mmap events perf can symbolize."""
    _run(["inject", "--jit", "-i", data_path, "-o", out_path], "inject --jit")


def script(data_path: str, fields: str, call_chains: bool = True) -> str:
    """`perf script` output with these fields, with each sample's call chain or without."""
    return _run(["script", "-F", fields, *([] if call_chains else ["-G"]), "-i", data_path], "script")
