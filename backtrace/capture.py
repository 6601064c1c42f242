"""The runtime's hook: turn the state a trap left behind into a report on the error.

`Store._raise_trap` calls `capture` before anything else touches the stacks (continuation
recycling, further Wasm code): the trap stub saved the faulting pc and frame pointer in
the runtime block, and the frames above them are still intact.
"""

from __future__ import annotations

from stackstitch.engine import layout as L
from stackstitch.engine.runtime.errors import WasmException

from .model import (EXHAUSTION, HOST_ERROR, TRAP, UNCAUGHT_EXCEPTION, UNHANDLED_SUSPENSION,
                    Backtrace)
from .walker import Walker


def capture(store, error: BaseException) -> Backtrace:
    """Walk the stacks of the trap just taken and attach the result to `error`: its
    `backtrace` (a Backtrace), and the JSON report's lists as `frames` and `stacks`.

    An error that already carries a backtrace came out of a nested activation through a
    host function; the frames of this (enclosing) activation are appended to it."""
    runtime = store.runtime
    code, _, _ = L.split_trap_word(runtime[L.RT_TRAP_CODE // 8])
    fp = runtime[L.RT_TRAP_FP // 8]
    walker = Walker(store)
    try:
        trace = walker.from_trap_site(runtime[L.RT_TRAP_PC // 8], fp)
    except Exception as e:  # a walker bug must not hide the trap itself
        trace = Backtrace(note=f"backtrace unavailable: {type(e).__name__}: {e}")
    earlier = getattr(error, "backtrace", None)
    if isinstance(earlier, Backtrace):
        earlier.extend(trace)
        trace = earlier
    else:
        trace.kind, trace.message, trace.tag = classify(code, error, trace, walker, fp)
        trace.detail = getattr(error, "detail", None)
    error.backtrace = trace
    error.frames = trace.frames_json()
    error.stacks = trace.stacks_json()
    return trace


def classify(code: int, error: BaseException, trace: Backtrace, walker: Walker, fp: int) -> tuple:
    """(kind, message, tag name or None) of how the run ended; `fp` is the trap site's."""
    message = getattr(error, "message", None) or str(error)
    if isinstance(error, WasmException):
        tag = walker.symbols.tag_name(error.tag.address)
        return UNCAUGHT_EXCEPTION, f"uncaught exception with tag {tag}", tag
    if code == L.TRAP_HOST:
        return HOST_ERROR, message, None
    if code == L.TRAP_STACK_EXHAUSTED:
        return EXHAUSTION, message, None
    if code == L.TRAP_UNHANDLED:
        return UNHANDLED_SUSPENSION, message, _suspended_tag(walker, fp, trace)
    return TRAP, message, None


def _suspended_tag(walker: Walker, fp: int, trace: Backtrace) -> str | None:
    """The handler search trapped on behalf of the suspending frame, whose rbp is `fp`:
    its instance and the suspend instruction name the tag."""
    chunk = walker.stacks.chunk_of(fp)
    if not trace.frames or chunk is None or not chunk.holds(fp - 8):
        return None
    return walker.symbols.suspended_tag(walker.stacks.read_word(fp - 8), trace.frames[0].wasm_offset)
