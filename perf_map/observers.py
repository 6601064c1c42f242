"""Turning `stackstitch run --perf-map / --jitdump[=DIR]` into code observers.

A run without either flag gets no observers at all, so profiling support costs nothing
unless asked for.
"""

from __future__ import annotations

import os

from .jitdump import JitdumpWriter
from .perfmap import PerfMapWriter


class ProfilingSetupError(Exception):
    """A perf map or jitdump file cannot be created (message is one line)."""


def observers_from_args(perf_map: bool, jitdump_dir: str | None,
                        source_name: str | None = None) -> list:
    """Observers for `Store(code_observers=...)` or `store.add_code_observer`.

    `source_name` (e.g. the module's file name) names the "source file" whose line numbers
    are Wasm offsets in the jitdump's debug info.
    """
    observers: list = []
    try:
        if perf_map:
            observers.append(PerfMapWriter())
        if jitdump_dir is not None:
            os.makedirs(jitdump_dir, exist_ok=True)
            observers.append(JitdumpWriter(jitdump_dir, source_name))
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        raise ProfilingSetupError(f"cannot write profiling data: {where}{e.strerror or e}") from None
    return observers


