"""The stacks Wasm frames can live on, and reads that stay inside them.

A trap report is built from memory that a failing program left behind, so no address read
from it is trusted: every word is read only after checking that it lies in one of the
store's stacks (the Wasm main stack or a chunk of a continuation slab).
"""

from __future__ import annotations

import ctypes

from stackstitch.engine import layout as L
from stackstitch.engine.layout import StackChunk

MAIN_STACK_ID = 0


class StackMap:
    """The store's stacks as they are now: the main stack and every slab's chunks."""

    def __init__(self, store):
        self.main = StackChunk(store.stack_lo, store.stack_lo + store.stack_size, None)
        pool = store.continuations
        self.chunk_size = pool.stack_size
        self.stacks_per_slab = pool.STACKS_PER_SLAB
        self.slabs = list(pool.slabs)  # sorted by the pool

    def chunk_of(self, address: int) -> StackChunk | None:
        """The stack holding `address`, or None if it is on no stack we know."""
        if self.main.holds(address, 1):
            return self.main
        return L.chunk_in_slabs(address, self.slabs, self.chunk_size, self.stacks_per_slab)

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
