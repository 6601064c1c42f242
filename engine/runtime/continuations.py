"""Continuation stacks: records at the top of stack chunks carved from slabs, and their
recycling. The record layout is layout.CR_*; DEBUG_ROOT.md describes it for readers."""

from __future__ import annotations

import bisect
import ctypes
import mmap

from .. import layout as L
from ..frontend.types import FuncType
from .codemem import PROT_NONE, READ_WRITE, protect, reserve

DEFAULT_CONT_STACK_SIZE = 256 << 10  # host calls never run on these: they move to the main stack
MAX_STACK_SIZE = 1 << 30

# Between a stack's low end and its limit (CR_LIMIT), room for what may write below the
# deepest Wasm frame whose prologue check passed. First, stubs: the check keeps 8 bytes
# free below the frame's rsp, where a call from the body puts its return address; the
# host-call, libcall-switch, handler-search and cont.bind-merge stubs push rbp 8 bytes
# under the limit, and a callee whose check fails has pushed rbp and the vmctx before it
# calls the trap stub, which pushes rbp too: 32 bytes under.
STUB_BELOW_LIMIT = 32
# Then a signal handler, which the kernel starts on whatever stack is running: it skips the
# 128-byte red zone and writes a signal frame as large as the machine's register state
# (AT_MINSIGSTKSZ, 3.6 KiB with AVX-512); the handler's own frames go below that
# (CPython's sets a flag and returns).
_AT_MINSIGSTKSZ = 51
_RED_ZONE = 128
_HANDLER_FRAMES = 4 << 10


def _signal_frame_size() -> int:
    """The kernel's signal frame on this machine, or a generous guess where it does not say."""
    getauxval = ctypes.CDLL(None).getauxval
    getauxval.restype = ctypes.c_ulong
    getauxval.argtypes = [ctypes.c_ulong]
    return getauxval(_AT_MINSIGSTKSZ) or 8 << 10


CONT_STACK_MARGIN = (STUB_BELOW_LIMIT + _RED_ZONE + _signal_frame_size() + _HANDLER_FRAMES + 15) & ~15
MIN_STACK_SIZE = max(16 << 10, (CONT_STACK_MARGIN + (8 << 10) + mmap.PAGESIZE - 1) & ~(mmap.PAGESIZE - 1))

# The canary words at the top of every chunk: the first thing a write past the low end of
# the next chunk's stack would hit (the first stack of a slab has its guard page instead).
# Written once, when a slab is carved; nothing writes them afterwards.
_CANARY = 0x57AC_CA4A_4279_C0DE


class ContinuationPool:
    """Continuation records with their stacks, carved from slabs of many stacks each, so
    that 100,000 live continuations need a few thousand mappings, not one or two each.
    `slabs` holds the address of each slab's first stack (its guard page lies below).
    Finished continuations are pushed on the runtime's free list by generated code."""

    STACKS_PER_SLAB = 64

    def __init__(self, runtime, stack_size: int, start_stub: int):
        if not MIN_STACK_SIZE <= stack_size <= MAX_STACK_SIZE:
            raise ValueError(f"continuation stack size must be between {MIN_STACK_SIZE >> 10} KiB "
                             f"and {MAX_STACK_SIZE >> 30} GiB")
        self.runtime = runtime
        self.stack_size = (stack_size + mmap.PAGESIZE - 1) & ~(mmap.PAGESIZE - 1)
        self.margin = CONT_STACK_MARGIN  # a stack's limit is its low end plus this
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
            for canary in self._canaries(slab):
                ctypes.c_uint64.from_address(canary).value = _CANARY ^ canary
            bisect.insort(self.slabs, slab)
            if self.on_new_slab is not None:
                self.on_new_slab(self.slabs)
            self.unused = [L.record_in_slab(slab, i, self.stack_size)
                           for i in reversed(range(self.STACKS_PER_SLAB))]
        record = self.unused.pop()
        # What a record's stack never changes: set once, kept when the record is recycled.
        w = record_words(record)
        w[L.CR_STACK_LO // 8] = self.stack_low(record)
        w[L.CR_LIMIT // 8] = w[L.CR_STACK_LO // 8] + self.margin
        return record

    def release(self, record: int):
        """A continuation ended: its stack can carry another, unless it is retired."""
        w = record_words(record)
        w[L.CR_STATE // 8] = L.CONT_RETURNED
        if w[L.CR_REVISION // 8] < L.RETIRE_REVISION:
            w[L.CR_NEXT_FREE // 8] = self.runtime[L.RT_FREE_LIST // 8]
            self.runtime[L.RT_FREE_LIST // 8] = record

    def _canaries(self, slab: int):
        """The addresses of a slab's canary words."""
        for i in range(1, self.STACKS_PER_SLAB + 1):
            top = slab + i * self.stack_size
            yield from range(top - L.CHUNK_CANARY_SIZE, top, 8)

    def damaged_canaries(self) -> list[int]:
        """The canary words, of all slabs, that no longer hold their value: where a stack
        was written past its low end (none, unless the stack-limit check failed)."""
        return [canary for slab in self.slabs for canary in self._canaries(slab)
                if ctypes.c_uint64.from_address(canary).value != _CANARY ^ canary]

    def stack_lows(self) -> list[int]:
        """The low ends of all stacks carved so far."""
        return [slab + i * self.stack_size for slab in self.slabs for i in range(self.STACKS_PER_SLAB)]

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
        w[L.CR_SP // 8] = w[L.CR_FP // 8] = L.base_frame(record)
        w[L.CR_PC // 8] = self.start_stub
        w[L.CR_PARENT // 8] = 0
        w[L.CR_TOP // 8] = record
        w[L.CR_FUNC // 8] = func_ref
        w[L.CR_NARGS // 8] = len(functype.params)
        w[L.CR_NRESULTS // 8] = len(functype.results)
        w[L.CR_HANDLER_COUNT // 8] = 0
        w[L.CR_NBOUND // 8] = 0
        w[L.CR_ID // 8] = self.runtime[L.RT_NEXT_CONT_ID // 8]
        self.runtime[L.RT_NEXT_CONT_ID // 8] += 1
        return record | ((w[L.CR_REVISION // 8] & 0xFFFF) << L.REVISION_SHIFT)


def record_words(address: int):
    """A continuation record as an array of words."""
    return (ctypes.c_uint64 * (L.CR_SIZE // 8)).from_address(address)
