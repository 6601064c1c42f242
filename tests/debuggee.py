"""Processes for debugger tests to attach to or turn into core files: `stackstitch run`
of a module export that prints "ready" and then loops, and a core the kernel writes when
it is killed with SIGABRT."""

from __future__ import annotations

import glob
import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

from conftest import unavailable

CORE_PATTERN = Path("/proc/sys/kernel/core_pattern")


def spinning(module: Path, export: str, cwd: Path | None = None,
             options: tuple[str, ...] = ()) -> subprocess.Popen:
    """`stackstitch run MODULE --invoke EXPORT [OPTIONS]`, once it has printed "ready" (the
    export loops afterwards); it may dump core."""
    def allow_cores():
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    process = subprocess.Popen([sys.executable, "-m", "stackstitch.engine.cli", "run", str(module),
                                "--invoke", export, *options], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, preexec_fn=allow_cores)
    line = process.stdout.readline()
    if line != "ready\n":
        process.kill()
        raise AssertionError(f"{module} {export} printed {line!r}, not 'ready'")
    return process


def kernel_core(module: Path, export: str, directory: Path, options: tuple[str, ...] = ()) -> Path:
    """The core file the kernel writes for `spinning(module, export, options=options)`
    killed by SIGABRT.

    Cores handed to a helper program (a core_pattern starting with `|`) are redirected to
    `directory` for the test, which needs root, and put back afterwards; when the kernel
    writes no core here the test skips, saying why (fails under CI=true: `unavailable`)."""
    pattern = CORE_PATTERN.read_text().strip()
    original = pattern
    if pattern.startswith("|") or not pattern:
        pattern = str(directory / "core.%p")
        try:
            CORE_PATTERN.write_text(pattern)
        except OSError as e:
            unavailable(f"the kernel hands cores to {original!r} and kernel.core_pattern cannot "
                        f"be changed here ({e.strerror}): no core file to test with")
    try:
        process = spinning(module, export, cwd=directory, options=options)
        os.kill(process.pid, signal.SIGABRT)
        process.wait(timeout=60)
        assert process.returncode == -signal.SIGABRT, process.returncode
        found = _cores(pattern, process.pid, directory)
    finally:
        if pattern != original:
            CORE_PATTERN.write_text(original)
    if not found:
        unavailable(f"the kernel wrote no core file for pattern {pattern!r} (a read-only or "
                    "full file system, or cores disabled for this container)")
    return Path(found[0])


def _cores(pattern: str, pid: int, directory: Path) -> list[str]:
    """The files `pattern` (relative ones are in the dumping process's directory) names."""
    name = re.sub(r"%.", lambda m: {"%p": str(pid), "%%": "%"}.get(m.group(0), "*"), pattern)
    if "%p" not in pattern and Path("/proc/sys/kernel/core_uses_pid").read_text().strip() == "1":
        name += f".{pid}"
    path = name if os.path.isabs(name) else str(directory / name)
    return sorted(glob.glob(path))
