"""The stacks Wasm frames can live on, and reads that stay inside them.

A trap report is built from memory that a failing program left behind, so no address read
from it is trusted: every word is read only after checking that it lies in one of the
store's stacks (the Wasm main stack or a chunk of a continuation slab).
"""

from __future__ import annotations

import bisect
import ctypes
from dataclasses import dataclass

from stackstitch.engine import layout as L

MAIN_STACK_ID = 0


@dataclass(frozen=True)
class StackChunk:
    """The frame area [lo, hi) of one native stack. `record` is its continuation record,
    which sits just above the frame area (None: the main stack)."""
    lo: int
    hi: int
    record: int | None

    def holds(self, address: int, size: int = 8) -> bool:
        return self.lo <= address and address + size <= self.hi

    @property
    def base_frame(self) -> int | None:
        """The start stub's frame at the top of a continuation stack (rbp while it runs)."""
        return None if self.record is None else self.record - 16


class StackMap:
    """The store's stacks as they are now: the main stack and every slab's chunks."""

    def __init__(self, store):
        self.main = StackChunk(store.stack_lo, store.stack_lo + store.stack_size, None)
        pool = store.continuations
        self.chunk_size = pool.stack_size
        self.slab_size = pool.stack_size * pool.STACKS_PER_SLAB
        self.slabs = list(pool.slabs)  # sorted by the pool

    def chunk_of(self, address: int) -> StackChunk | None:
        """The stack holding `address`, or None if it is on no stack we know."""
        if self.main.holds(address, 1):
            return self.main
        k = bisect.bisect_right(self.slabs, address) - 1
        if k < 0 or address >= self.slabs[k] + self.slab_size:
            return None
        i = (address - self.slabs[k]) // self.chunk_size
        record = L.record_in_slab(self.slabs[k], i, self.chunk_size)
        return StackChunk(self.slabs[k] + i * self.chunk_size, record, record)

    def record_chunk(self, record: int) -> StackChunk | None:
        """The stack whose continuation record is exactly `record`, else None."""
        chunk = self.chunk_of(record)
        if chunk is None or chunk.record != record:
            return None
        return chunk


def read_word(address: int) -> int:
    """One 64-bit word; callers check the address against a StackChunk first."""
    return ctypes.c_uint64.from_address(address).value


def read_record(record: int) -> ctypes.Array:
    """A continuation record's words (index = CR_* offset // 8); `record` must come from
    StackMap.record_chunk."""
    return (ctypes.c_uint64 * (L.CR_SIZE // 8)).from_address(record)
