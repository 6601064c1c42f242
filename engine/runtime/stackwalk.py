"""The stack walker: Wasm frames across continuation boundaries, over any memory reader.

One walker serves three readers: trap reports (in process, after a trap), exception
unwinding (in process, looking for a handler) and the gdb plugin (out of process, on a
live process or a core file). Each gives it a `StackSpace`: how to read words, which
stacks exist, and the stubs' landmarks. This module imports only the standard library
and `layout`, so it runs inside gdb's own Python too.

Every Wasm function keeps a standard rbp frame ([rbp] caller's rbp, [rbp+8] return
address), so the frame-pointer chain is exact wherever a walk can start (trap sites,
calls, switches). A continuation's first function returns into the start stub, whose
base frame below the continuation record is rewritten on every resume to hold the
resumer's rbp and resume point: following it crosses into the resumer. A walk ends at
the entry trampoline's return address.

Nothing read is trusted: each frame pointer must lie on a known stack, above the
previous one on the same stack, and a stack is entered at most once. A walk that breaks
a rule stops with a `note`; the frames found up to there stand.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Iterator, Protocol

from .. import layout as L
from ..layout import StackChunk

MAX_FRAMES = 1_000_000  # far beyond any real stack: a safety bound, not a display limit


class StackSpace(Protocol):
    """What a walk needs to know about one store's memory."""

    entry_return: int  # the entry trampoline's return address: the walk's end
    start_return: int  # the start stub's return address: a continuation's base frame

    def read_words(self, address: int, count: int) -> tuple[int, ...]: ...

    def chunk_of(self, address: int) -> StackChunk | None: ...

    def code_at(self, pc: int):
        """Something true for a return address into Wasm code (the reader's own function
        record), None elsewhere."""


@dataclass(frozen=True)
class WasmFrame:
    """One Wasm frame found by the walk."""

    pc: int  # the return address into this frame (a trap site's, for the innermost)
    fp: int
    code: object  # what the space's `code_at(pc)` said
    chunk: StackChunk


@dataclass(frozen=True)
class Boundary:
    """The base frame of the continuation whose record is `record`: the frames after it
    ran in the stack that resumed it, from that stack's resume point on."""

    record: int


class StackWalk:
    """Iterate to get WasmFrame and Boundary items, innermost first; afterwards `note`
    says why the walk stopped early (None if it reached the entry), and `truncated`
    whether `limit` frames cut it short. A walk from a suspended continuation's saved
    context ends with the Boundary of `stop_record`, not following its stale link."""

    def __init__(self, space: StackSpace, pc: int, fp: int, stop_record: int | None = None,
                 limit: int = MAX_FRAMES):
        self.space = space
        self.pc, self.fp = pc, fp
        self.stop_record = stop_record
        self.limit = limit
        self.note: str | None = None
        self.truncated = False

    def __iter__(self) -> Iterator[WasmFrame | Boundary]:
        space = self.space
        read_words = space.read_words
        entry_return, start_return = space.entry_return, space.start_return
        pc, fp = self.pc, self.fp
        chunk = space.chunk_of(fp)
        if chunk is None:
            self.note = f"frame pointer 0x{fp:x} is on no known stack"
            return
        entered = {chunk.lo}
        frames = 0
        while pc != entry_return:
            if pc == start_return:  # leaving a continuation through its base frame
                if chunk.record is None or fp != chunk.base_frame:
                    self.note = f"base frame 0x{fp:x} is not at the top of its stack"
                    return
                yield Boundary(chunk.record)
                if chunk.record == self.stop_record:
                    return
                fp, pc = read_words(fp, 2)
                chunk = space.chunk_of(fp)
                if chunk is None or not chunk.holds(fp, 16):
                    self.note = f"the resumer's frame 0x{fp:x} is on no known stack"
                    return
                if chunk.lo in entered:
                    self.note = f"the resume chain returns to a stack already walked (0x{fp:x})"
                    return
                entered.add(chunk.lo)
                continue
            if not chunk.holds(fp, 16):
                self.note = f"frame pointer 0x{fp:x} is outside its stack"
                return
            code = space.code_at(pc)
            if code is None:
                self.note = f"return address 0x{pc:x} is not in Wasm code"
                return
            if frames == self.limit:
                self.truncated = True
                return
            yield WasmFrame(pc, fp, code, chunk)
            frames += 1
            caller_fp, caller_pc = read_words(fp, 2)
            if caller_fp <= fp and caller_pc != entry_return:
                self.note = f"frame pointer chain does not go up the stack at 0x{fp:x}"
                return
            pc, fp = caller_pc, caller_fp


class StoreStacks:
    """A store's own stacks, read in this process: for trap reports and exceptions."""

    def __init__(self, store):
        stubs = store.stubs
        self.entry_return = stubs.entry_return_address
        self.start_return = stubs.start_return_address
        self.fiber_return = stubs.fiber_return
        self.main = StackChunk(store.stack_lo, store.stack_lo + store.stack_size, None)
        pool = store.continuations
        self.slabs, self.chunk_size = pool.slabs, pool.stack_size  # the pool keeps slabs sorted
        self.stacks_per_slab = pool.STACKS_PER_SLAB
        self.is_fresh_record = pool.in_fresh_slab
        self.code_at_address = store.code_at

    @staticmethod
    def read_words(address: int, count: int) -> tuple[int, ...]:
        return tuple((ctypes.c_uint64 * count).from_address(address))

    @staticmethod
    def read_word(address: int) -> int:
        return ctypes.c_uint64.from_address(address).value

    def chunk_of(self, address: int) -> StackChunk | None:
        if self.main.holds(address, 1):
            return self.main
        return L.chunk_in_slabs(address, self.slabs, self.chunk_size, self.stacks_per_slab)

    def record_chunk(self, record: int) -> StackChunk | None:
        """The stack whose continuation record is exactly `record`, else None."""
        chunk = self.chunk_of(record)
        return chunk if chunk is not None and chunk.record == record else None

    def code_at(self, pc: int):
        """(CompiledFunction, code base) of the call before return address `pc`."""
        return self.code_at_address(pc - 1)

    def saved_context(self, record: int) -> tuple[int, int]:
        return L.saved_context(self.read_words, record, self.fiber_return, self.chunk_of(record))
