"""Walking a continuation's frames from its saved context, by reading memory only.

Every Wasm function keeps a standard rbp frame ([rbp] caller's rbp, [rbp+8] return
address), and a continuation's first function returns into the start stub, whose base
frame just below the record holds the resumer's rbp and resume point. So the frames of a
stack that is not running follow from its saved (pc, fp); crossing a base frame moves to
the stack that resumed it. Go's `goroutine N bt` writes registers instead, which a core
file does not allow.

The same rules as the trap-report walker: each frame pointer must lie on the stack being
walked, above the previous one, and a stack is entered once; a broken rule ends the walk
with a note, keeping the frames found so far.
"""

from __future__ import annotations

from dataclasses import dataclass

from .view import READ_ERRORS, Continuation, Location, StoreView

MAX_FRAMES = 100_000


@dataclass(frozen=True)
class WasmFrame:
    pc: int
    location: Location


@dataclass(frozen=True)
class Boundary:
    """The base frame of `continuation`'s stack: the frames after it ran in its resumer."""
    continuation: Continuation | None
    record: int


@dataclass
class Walk:
    items: list  # WasmFrame and Boundary, innermost first
    note: str | None = None  # why the walk stopped early
    truncated: bool = False  # the frame limit was reached


def walk_saved(store: StoreView, pc: int, fp: int, stop_record: int | None,
               limit: int = MAX_FRAMES) -> Walk:
    """Frames from the saved resume point `pc` in the frame whose rbp is `fp`, through the
    base frames of the stacks on the way, until the base frame of `stop_record` (included
    as the last boundary) or the host entry."""
    walk = Walk([])
    try:
        _walk(store, pc, fp, stop_record, limit, walk)
    except READ_ERRORS as e:
        walk.note = f"cannot read the stack: {e}"
    return walk


def _walk(store: StoreView, pc: int, fp: int, stop_record: int | None, limit: int, walk: Walk):
    read_words = store.reader.words
    chunk = store.chunk_of(fp)
    if chunk is None:
        walk.note = f"frame pointer 0x{fp:x} is on no stack of the engine"
        return
    entered = {chunk.lo}
    frames = 0
    while frames < limit:
        if pc == store.entry_return:
            return
        if pc == store.start_return:
            if chunk.record is None or fp != chunk.record - 16:
                walk.note = f"base frame 0x{fp:x} is not at the top of its stack"
                return
            walk.items.append(Boundary(store.by_record(chunk.record), chunk.record))
            if chunk.record == stop_record:
                return
            fp, pc = read_words(fp, 2)
            chunk = store.chunk_of(fp)
            if chunk is None or not chunk.holds(fp, 16):
                walk.note = f"the resumer's frame 0x{fp:x} is on no stack of the engine"
                return
            if chunk.lo in entered:
                walk.note = f"the resume chain comes back to a stack already walked (0x{fp:x})"
                return
            entered.add(chunk.lo)
            continue
        if not chunk.holds(fp, 16):
            walk.note = f"frame pointer 0x{fp:x} is outside its stack"
            return
        location = store.code.locate(pc)
        if location is None:
            walk.note = f"return address 0x{pc:x} is not in Wasm code"
            return
        walk.items.append(WasmFrame(pc, location))
        frames += 1
        caller_fp, caller_pc = read_words(fp, 2)
        if caller_fp <= fp and caller_pc != store.entry_return:
            walk.note = f"the frame pointer chain does not go up the stack at 0x{fp:x}"
            return
        pc, fp = caller_pc, caller_fp
    walk.truncated = True
