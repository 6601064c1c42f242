"""Continuations: fresh records (no stack yet) in slabs of small records, and stacks with
their records at the top of stack chunks carved from slabs; the recycling of both. The
record layout is layout.CR_*; DEBUG_ROOT.md describes it for readers."""

from __future__ import annotations

import array
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
    """Continuation records. cont.new makes a fresh record, small and without a stack, in a
    slab of thousands (`fresh_slabs`); the first resume moves it onto a stack: the record
    at the top of a stack chunk, carved from slabs of many stacks each (`slabs`, each entry
    the slab's first stack, with its guard page below), so that 100,000 live continuations
    need a few thousand mappings, not one or two each. Generated code takes both kinds of
    record from the runtime's free lists (RT_FRESH_FREE, RT_FREE_LIST) and puts them back;
    these methods are its fallback when a list is empty, and the runtime's own uses."""

    STACKS_PER_SLAB = 64
    FRESH_SLAB_SIZE = 256 << 10

    def __init__(self, runtime, stack_size: int, start_stub: int):
        if not MIN_STACK_SIZE <= stack_size <= MAX_STACK_SIZE:
            raise ValueError(f"continuation stack size must be between {MIN_STACK_SIZE >> 10} KiB "
                             f"and {MAX_STACK_SIZE >> 30} GiB")
        self.runtime = runtime
        self.stack_size = (stack_size + mmap.PAGESIZE - 1) & ~(mmap.PAGESIZE - 1)
        self.margin = CONT_STACK_MARGIN  # a stack's limit is its low end plus this
        self.start_stub = start_stub
        self.slabs: list[int] = []
        self.fresh_slabs: list[int] = []
        runtime[L.RT_NEXT_CONT_ID // 8] = 1
        self.on_new_slab = None  # called with (stack slabs, fresh slabs) when either grows

    # -- fresh continuations --

    def new(self, func_ref: int, functype: FuncType) -> int:
        """A fresh continuation of `func_ref`; returns its reference. It has no stack, but
        one is left free for its first resume (see switching.op_cont_new)."""
        rt = self.runtime
        if not rt[L.RT_FRESH_FREE // 8]:
            self._carve_fresh_records()
        if not rt[L.RT_FREE_LIST // 8]:
            self._carve_stacks()
        record = rt[L.RT_FRESH_FREE // 8]
        w = fresh_record_words(record)
        rt[L.RT_FRESH_FREE // 8] = w[L.CR_NEXT_FREE // 8]
        w[L.CR_FUNC // 8] = func_ref
        w[L.CR_NARGS // 8] = len(functype.params)
        w[L.CR_NRESULTS // 8] = len(functype.results)
        w[L.CR_NBOUND // 8] = 0
        w[L.CR_ID // 8] = rt[L.RT_NEXT_CONT_ID // 8]
        rt[L.RT_NEXT_CONT_ID // 8] += 1
        w[L.CR_STATE // 8] = L.CONT_FRESH
        return record | ((w[L.CR_REVISION // 8] & 0xFFFF) << L.REVISION_SHIFT)

    def _carve_fresh_records(self):
        """A new slab of fresh records, all put on the free list at once, so that generated
        code takes the next thousands of them without calling here."""
        slab = reserve(self.FRESH_SLAB_SIZE, READ_WRITE, populate=True)
        bisect.insort(self.fresh_slabs, slab)
        self._slabs_changed()
        words = memoryview((ctypes.c_uint64 * (self.FRESH_SLAB_SIZE // 8)).from_address(slab))
        words = words.cast("B").cast("Q")
        stride = L.FRESH_RECORD_SIZE // 8
        links = array.array("Q", range(slab + L.FRESH_RECORD_SIZE, slab + self.FRESH_SLAB_SIZE,
                                       L.FRESH_RECORD_SIZE))
        links.append(0)
        words[L.CR_NEXT_FREE // 8::stride] = links
        words[L.CR_STATE // 8::stride] = array.array("Q", [L.CONT_RETURNED]) * len(links)
        self.runtime[L.RT_FRESH_FREE // 8] = slab

    def attach(self, fresh: int) -> int:
        """The first resume of the fresh continuation `fresh` (its reference consumed):
        a stack's record takes over its fields, and the fresh record is free again.
        Returns the stack's record, which the continuation is from now on."""
        record = self.allocate()
        w, f = record_words(record), fresh_record_words(fresh)
        for field in (L.CR_FUNC, L.CR_NARGS, L.CR_NRESULTS, L.CR_ID, L.CR_NBOUND):
            w[field // 8] = f[field // 8]
        bound = slice(L.CR_BOUND // 8, L.CR_BOUND // 8 + L.MAX_BOUND)
        w[bound] = f[bound]
        self._free(fresh, f, L.RT_FRESH_FREE)
        w[L.CR_SP // 8] = w[L.CR_FP // 8] = L.base_frame(record)
        w[L.CR_PC // 8] = self.start_stub
        w[L.CR_TOP // 8] = record
        w[L.CR_STATE // 8] = L.CONT_FRESH
        return record

    def in_fresh_slab(self, record: int) -> bool:
        return L.in_fresh_slabs(record, self.fresh_slabs, self.FRESH_SLAB_SIZE)

    # -- stacks --

    def allocate(self) -> int:
        """A stack's record, from the free list; a new slab of stacks when it is empty."""
        rt = self.runtime
        if not rt[L.RT_FREE_LIST // 8]:
            self._carve_stacks()
        record = rt[L.RT_FREE_LIST // 8]
        rt[L.RT_FREE_LIST // 8] = record_words(record)[L.CR_NEXT_FREE // 8]
        return record

    def _carve_stacks(self):
        """A new slab of stacks, all put on the free list (so that generated code takes the
        next ones without calling here). What a record's stack never changes is set here,
        once: its low end, its limit, the canary words at the top of its chunk (on the
        record's page, so the records cost no page of their own)."""
        # One guard page below each slab: a second mapping per 64 stacks, not per stack
        # (the kernel's 65,530 mappings must hold 100,000 stacks). The prologue's limit
        # check is what keeps every stack in bounds; the guard is defence in depth.
        guard = reserve(mmap.PAGESIZE + self.stack_size * self.STACKS_PER_SLAB, PROT_NONE)
        slab = guard + mmap.PAGESIZE
        protect(slab, self.stack_size * self.STACKS_PER_SLAB, READ_WRITE)
        for canary in self._canaries(slab):
            ctypes.c_uint64.from_address(canary).value = _CANARY ^ canary
        bisect.insort(self.slabs, slab)
        self._slabs_changed()
        for i in reversed(range(self.STACKS_PER_SLAB)):
            record = L.record_in_slab(slab, i, self.stack_size)
            w = record_words(record)
            w[L.CR_STACK_LO // 8] = slab + i * self.stack_size
            w[L.CR_LIMIT // 8] = w[L.CR_STACK_LO // 8] + self.margin
            w[L.CR_STATE // 8] = L.CONT_RETURNED
            w[L.CR_NEXT_FREE // 8] = self.runtime[L.RT_FREE_LIST // 8]
            self.runtime[L.RT_FREE_LIST // 8] = record

    def release(self, record: int):
        """A continuation ended: its stack can carry another, unless it is retired."""
        self._free(record, record_words(record), L.RT_FREE_LIST)

    def _free(self, record: int, w, free_list: int):
        """Mark a record returned (or moved) and put it on `free_list` (L.RT_*), unless
        its revision has reached the point where it is retired."""
        w[L.CR_STATE // 8] = L.CONT_RETURNED
        if w[L.CR_REVISION // 8] < L.RETIRE_REVISION:
            w[L.CR_NEXT_FREE // 8] = self.runtime[free_list // 8]
            self.runtime[free_list // 8] = record

    def _slabs_changed(self):
        if self.on_new_slab is not None:
            self.on_new_slab(self.slabs, self.fresh_slabs)

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

    def owns(self, record: int) -> bool:
        """Whether `record` is a stack's continuation record (not an entry's root record,
        which lives in an entry frame and is gone once that entry has returned)."""
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


def record_words(address: int):
    """A stack's continuation record as an array of words."""
    return (ctypes.c_uint64 * (L.CR_SIZE // 8)).from_address(address)


def fresh_record_words(address: int):
    """A fresh continuation record (the first words of any record) as an array of words."""
    return (ctypes.c_uint64 * (L.FRESH_RECORD_SIZE // 8)).from_address(address)
