"""The stacks a profile shows: each sample's call chain as names, with the host and the
continuation boundaries made visible.

* JIT frames (Wasm functions and the engine's stubs, in perf's `jitted-*.so` objects
  after `perf inject --jit`, or named by a perf map) keep their symbol.
* Host frames are grouped by the object they ran in: a run of frames in libpython is one
  `[host: python]` frame, libffi's `[host: libffi]`, the kernel's `[kernel]`.
* The continuation start stub at the bottom of every continuation stack becomes a boundary
  frame, `[continuation: F]`, where F is the function the continuation was created from
  (the frame the stub called).
"""

from __future__ import annotations

import re
from collections import Counter

from .samples import UNKNOWN, Frame, Sample

START_STUB = "stackstitch_continuation_start"
BOUNDARY = "[continuation: {}]"
BOUNDARY_PATTERN = re.compile(r"^\[continuation: (.*)\]$")
MAIN_STACK = "main stack"


def is_jit(frame: Frame) -> bool:
    name = frame.dso.rsplit("/", 1)[-1]
    return name.startswith("jitted-") or (name.startswith("perf-") and name.endswith(".map"))


def host_group(dso: str) -> str:
    """`[host: python]` for libpython, the interpreter and its extension modules;
    `[host: libffi]`, `[host: libc]`, ... for other objects; `[kernel]`, `[unknown]`."""
    if dso == "[kernel.kallsyms]" or dso.startswith("[kernel"):
        return "[kernel]"
    name = dso.rsplit("/", 1)[-1]
    if dso == UNKNOWN or not name:
        return UNKNOWN
    if name.startswith(("libpython", "python")) or ".cpython-" in name:
        return "[host: python]"
    return f"[host: {name.split('.so', 1)[0] or name}]"


def boundary_name(frame_name: str) -> str | None:
    """F for a boundary frame `[continuation: F]`, else None."""
    match = BOUNDARY_PATTERN.match(frame_name)
    return match.group(1) if match else None


def frame_names(sample: Sample) -> list[str]:
    """The sample's frames as shown, innermost first (see the module docstring)."""
    names: list[str] = []
    for frame in sample.frames:
        if frame.in_kernel:
            name = "[kernel]"
        elif is_jit(frame):
            name = frame.symbol
            if name == START_STUB:
                name = BOUNDARY.format(_started_function(names))
        else:
            name = host_group(frame.dso)
        if not (names and name == names[-1] and name.startswith(("[host:", "[kernel]", UNKNOWN))):
            names.append(name)
    return names


def _started_function(inner: list[str]) -> str:
    """The function a start stub called: the nearest Wasm frame inside it, or `?` when
    frame-pointer unwinding missed it (a sample in a stub called from its prologue)."""
    for name in reversed(inner):
        if boundary_name(name) is not None:
            break
        if not name.startswith(("[", "stackstitch_")):
            return name
    return "?"


def continuation_of(names: list[str]) -> str:
    """The function the innermost continuation of a stack (innermost first) was created
    from, or MAIN_STACK."""
    for name in names:
        created_from = boundary_name(name)
        if created_from is not None:
            return created_from
    return MAIN_STACK


def fold(samples: list[Sample]) -> Counter:
    """{(outermost, ..., innermost frame name): total period}, for flame graphs: the
    command name first, as stackcollapse does."""
    folded: Counter = Counter()
    for sample in samples:
        folded[(sample.comm, *reversed(frame_names(sample)))] += sample.period
    return folded


def write_folded(folded: Counter, path: str) -> None:
    """The folded-stack text format (`a;b;c 123` per line) flamegraph tools read."""
    with open(path, "w", encoding="utf-8") as f:
        for stack, weight in sorted(folded.items()):
            f.write(";".join(name.replace(";", ":") for name in stack) + f" {weight}\n")
