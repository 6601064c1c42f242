"""Continuation stacks: records at the top of stack chunks carved from slabs, and their
recycling. The record layout is layout.CR_*; DEBUG_ROOT.md describes it for readers."""

from __future__ import annotations

import bisect
import ctypes
import mmap

from .. import layout as L
from .codemem import PROT_NONE, READ_WRITE, protect, reserve
from ..frontend.types import FuncType

DEFAULT_CONT_STACK_SIZE = 256 << 10  # host calls never run on these: they move to the main stack
CONT_STACK_MARGIN = 512  # below the limit: room for a stub call after the prologue check


class ContinuationPool:
    """Continuation records with their stacks, carved from slabs of many stacks each, so
    that 100,000 live continuations need a few thousand mappings, not one or two each.
    `slabs` holds the address of each slab's first stack (its guard page lies below).
    Finished continuations are pushed on the runtime's free list by generated code."""

    STACKS_PER_SLAB = 64

    def __init__(self, runtime, stack_size: int, start_stub: int):
        if not 16 << 10 <= stack_size <= 1 << 30:
            raise ValueError("continuation stack size must be between 16 KiB and 1 GiB")
        self.runtime = runtime
        self.stack_size = (stack_size + mmap.PAGESIZE - 1) & ~(mmap.PAGESIZE - 1)
        self.start_stub = start_stub
        self.slabs: list[int] = []
        self.unused: list[int] = []  # records never handed out yet
        runtime[L.RT_NEXT_CONT_ID // 8] = 1
        self.on_new_slab = None  # called with the slab list when it grows

    def allocate(self) -> int:
        rt = self.runtime
        record = rt[L.RT_FREE_LIST // 8]
        if record:
            rt[L.RT_FREE_LIST // 8] = record_words(record)[L.CR_NEXT_FREE // 8]
            return record
        if not self.unused:
            # One guard page below each slab: a second mapping per 64 stacks, not per stack
            # (the kernel's 65,530 mappings must hold 100,000 stacks). The prologue's limit
            # check is what keeps every stack in bounds; the guard is defence in depth.
            guard = reserve(mmap.PAGESIZE + self.stack_size * self.STACKS_PER_SLAB, PROT_NONE)
            slab = guard + mmap.PAGESIZE
            protect(slab, self.stack_size * self.STACKS_PER_SLAB, READ_WRITE)
            bisect.insort(self.slabs, slab)
            if self.on_new_slab is not None:
                self.on_new_slab(self.slabs)
            self.unused = [L.record_in_slab(slab, i, self.stack_size)
                           for i in reversed(range(self.STACKS_PER_SLAB))]
        return self.unused.pop()

    def release(self, record: int):
        """A continuation ended: its stack can carry another, unless it is retired."""
        w = record_words(record)
        w[L.CR_STATE // 8] = L.CONT_RETURNED
        if w[L.CR_REVISION // 8] < L.RETIRE_REVISION:
            w[L.CR_NEXT_FREE // 8] = self.runtime[L.RT_FREE_LIST // 8]
            self.runtime[L.RT_FREE_LIST // 8] = record

    def stack_low(self, record: int) -> int:
        """The low end of the stack whose record this is."""
        slab = self.slabs[bisect.bisect(self.slabs, record) - 1]
        return slab + (record - slab) // self.stack_size * self.stack_size

    def owns(self, record: int) -> bool:
        """Whether `record` is a continuation record (not an entry's root record, which
        lives in an entry frame and is gone once that entry has returned)."""
        k = bisect.bisect(self.slabs, record) - 1
        return k >= 0 and record < self.slabs[k] + self.stack_size * self.STACKS_PER_SLAB

    def recycle_chain(self, record: int):
        """After a trap: the continuations that were running up to the entry's root record
        are dead; their stacks go back on the free list."""
        while self.owns(record):
            w = record_words(record)
            parent = w[L.CR_PARENT // 8]
            if w[L.CR_STATE // 8] != L.CONT_RETURNED:  # else an exception already ended it
                self.release(record)
            record = parent

    def new(self, func_ref: int, functype: FuncType) -> int:
        """A fresh continuation of `func_ref`; returns its reference."""
        record = self.allocate()
        w = record_words(record)
        w[L.CR_STATE // 8] = L.CONT_FRESH
        w[L.CR_SP // 8] = L.base_frame(record)
        w[L.CR_FP // 8] = 0
        w[L.CR_PC // 8] = self.start_stub
        w[L.CR_PARENT // 8] = 0
        w[L.CR_TOP // 8] = record
        low = self.stack_low(record)
        w[L.CR_LIMIT // 8] = low + CONT_STACK_MARGIN
        w[L.CR_FUNC // 8] = func_ref
        w[L.CR_NARGS // 8] = len(functype.params)
        w[L.CR_NRESULTS // 8] = len(functype.results)
        w[L.CR_HANDLER_COUNT // 8] = 0
        w[L.CR_NBOUND // 8] = 0
        w[L.CR_STACK_LO // 8] = low
        w[L.CR_ID // 8] = self.runtime[L.RT_NEXT_CONT_ID // 8]
        self.runtime[L.RT_NEXT_CONT_ID // 8] += 1
        return record | ((w[L.CR_REVISION // 8] & 0xFFFF) << L.REVISION_SHIFT)


def record_words(address: int):
    """A continuation record as an array of words."""
    return (ctypes.c_uint64 * (L.CR_SIZE // 8)).from_address(address)
