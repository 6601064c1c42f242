"""Native memory layouts shared by generated code and the Python runtime.

Every offset here is part of the contract between `codegen`, `stubs` and `runtime`
(and, through the debug root, of out-of-process readers). All fields are 8 bytes.
"""

from __future__ import annotations

import bisect

from .records import record

# The runtime block: one per Store, shared by every instance in it.
RT_ENTRY_SP = 0      # rsp of the innermost entry trampoline frame; a trap unwinds to it
RT_STACK_LIMIT = 8   # lowest rsp a Wasm frame may reach on the current stack
RT_TRAP_CODE = 16    # why the last trap happened (TRAP_* below)
RT_TRAP_PC = 24      # return address pushed by the call into the trap stub
RT_TRAP_SP = 32
RT_TRAP_FP = 40
RT_STACK_LO = 48     # the Wasm main stack: [lo, hi)
RT_STACK_HI = 56
RT_STACK_SPAN = 64   # hi - lo, so one unsigned compare tells "on the Wasm stack"
RT_CURRENT = 72      # the continuation record of the running stack (an entry's root record
                     # while no continuation runs)
RT_FREE_LIST = 80    # continuation records whose stacks can be reused, linked by CR_NEXT_FREE
RT_TRANSFER_KIND = 88  # 0: the continuation returned; k+1: it suspended to handler clause k
RT_START_STUB = 96   # where a fresh continuation starts
RT_CONT_SLAB = 104   # debug: the store's list of continuation slabs (see DEBUG_ROOT.md)
RT_MAIN_LIMIT = 112  # stack limit on the Wasm main stack (its low end plus host headroom)
RT_SEARCH_STUB = 120  # handler search for suspend and switch
RT_MERGE_STUB = 128  # prepends cont.bind values to the transfer area
RT_UNWIND_SP = 136   # where a host call continues when a thrown exception found its handler
RT_UNWIND_FP = 144
RT_UNWIND_PC = 152
RT_TRAP_STACK = 160  # the continuation record (or entry root record) running at the last trap
RT_LIBCALL_SWITCH = 168  # --switching=libcall: the routine every switch calls
RT_NEXT_CONT_ID = 176  # the id the next continuation gets
RT_TRAP_DETAIL = 184  # a value some traps report (the element index of an uninitialized one)
RT_HOST_ARGS = 192   # where the innermost host call's arguments are in its caller's frame
RT_HOST_STATUS = 200  # HOST_TRAP or HOST_UNWIND when a host callable did not complete; the
                      # host trampoline reads it and puts back HOST_OK
RT_PY_CALL = 208     # CPython's PyObject_CallNoArgs, which the host trampoline calls
RT_PY_DECREF = 216   # CPython's Py_DecRef, for the callable's result
RT_SWITCH_STUBS = 224  # --switching=native: where each resume, suspend and switch ends,
SWITCH_RESUME, SWITCH_SUSPEND, SWITCH_SWITCH = range(3)  # one stub each (stubs.py)
RT_TRACE_BUFFER = 248  # tracing: the event ring (TRACE_EVENT_SIZE bytes per event),
RT_TRACE_MASK = 256    # its size in bytes minus one (a power of two),
RT_TRACE_COUNT = 264   # and the number of events ever written (the ring keeps the last)
RT_FRESH_FREE = 272  # free fresh continuation records (no stack), linked by CR_NEXT_FREE
RT_TRANSFER = 280    # values passed by resume/suspend/switch/return/throw, one word each
TRANSFER_WORDS = 64
RT_HOST_WORDS = RT_TRANSFER + 8 * TRANSFER_WORDS  # a host call's arguments, then its results,
HOST_WORDS = 64                                   # copied here and back by the trampoline
RUNTIME_BLOCK_SIZE = RT_HOST_WORDS + 8 * HOST_WORDS

# A continuation record. One that carries a stack sits at the top of its stack chunk; the
# 16 bytes just below it are the base frame (saved rbp, return address) that every resume
# rewrites to point at the resumer, linking the frame-pointer chain across the switch.
# Entry trampolines keep a root record (parent 0) in their frame. A fresh continuation
# (made by cont.new, not resumed yet) has no stack: its record is only the first
# FRESH_RECORD_SIZE bytes, in a slab of such records. Its first resume takes a stack's
# record from the free list, copies those bytes into it and frees the fresh record: the
# resume has consumed the only valid reference to it, so none is left that could reach it.
CR_STATE = 0         # CONT_* below
CR_REVISION = 8      # bumped whenever a reference to this continuation is consumed
CR_FUNC = 16         # the function reference it was created from (called when it starts)
CR_NARGS = 24
CR_NRESULTS = 32
CR_ID = 40           # 0 for an entry's root record
CR_NEXT_FREE = 48
CR_NBOUND = 56       # values bound by cont.bind, passed first on the next resume
CR_BOUND = 64
MAX_BOUND = 8
FRESH_RECORD_SIZE = 128  # the fields above: all a fresh continuation has
CR_SP = 128          # saved context of this stack while it is not running (just attached
CR_FP = 136          # to a fresh continuation: its base frame, twice, and the start stub);
CR_PC = 144          # CR_FP and CR_PC read as a frame record (saved rbp, return address)
CR_PARENT = 152      # the record of the stack that resumed this one (0 for a root)
CR_TOP = 160         # suspended: the innermost record of the segment, where execution resumes
CR_LIMIT = 168       # lowest rsp allowed on this stack
CR_TAG = 176         # suspended: the tag record it suspended with
CR_STACK_LO = 184
CR_HANDLER_COUNT = 192
CR_HANDLERS = 200    # tag record addresses of the installing resume; bit 0 set: a switch clause
MAX_HANDLERS = 12
CR_SIZE = 304
assert CR_BOUND + 8 * MAX_BOUND == FRESH_RECORD_SIZE and CR_FP + 8 == CR_PC
assert CR_HANDLERS + 8 * MAX_HANDLERS <= CR_SIZE

CONT_FRESH, CONT_SUSPENDED, CONT_RUNNING, CONT_RETURNED = range(4)  # returned: or moved to a stack

# Records of neighbouring stacks sit at different offsets below their chunk's top, so that
# they do not all compete for the same cache sets (chunks are a power of two apart). The
# top CHUNK_CANARY_SIZE bytes of every chunk hold canary words, just below the next chunk's
# stack (continuations.py); with every colour, they share their page with the record.
RECORD_COLORS = 16
RECORD_COLOR_STEP = 192
CHUNK_CANARY_SIZE = 16
assert CHUNK_CANARY_SIZE + CR_SIZE + RECORD_COLOR_STEP * (RECORD_COLORS - 1) + 16 <= 4096


def record_in_slab(slab: int, i: int, stack_size: int) -> int:
    """The continuation record of stack `i` of a slab (see DEBUG_ROOT.md)."""
    return (slab + (i + 1) * stack_size - CHUNK_CANARY_SIZE - CR_SIZE
            - RECORD_COLOR_STEP * (i % RECORD_COLORS))


@record
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
        return None if self.record is None else base_frame(self.record)


# The base frame: the 16 bytes just below a continuation record, (saved rbp, return
# address) as in any frame. Every resume rewrites them to point at the resumer.
BASE_FRAME_SIZE = 16
BASE_FRAME_RBP = -16  # offsets from the record: the resumer's rbp,
BASE_FRAME_RETURN = -8  # and where the resumer continues


def base_frame(record: int) -> int:
    """The address of the base frame of the stack whose record is `record` (a stack's
    record: a fresh one, in a slab of fresh records, has no stack and no base frame)."""
    return record - BASE_FRAME_SIZE


def saved_context(read_words, record: int, fiber_return: int | None,
                  stack: StackChunk | None = None) -> tuple[int, int]:
    """(pc, fp) where the stack of `record` continues while it is not running.

    In libcall switching mode a suspended stack's saved pc is `fiber_return`, the switch
    routine's return point, and its saved sp points at the routine's frame: (rbp, pc) of
    the Wasm code that called it. `stack`, when given, must hold that frame (untrusted
    memory); `read_words(address, count)` reads words."""
    sp, fp, pc = read_words(record + CR_SP, 3)
    if fiber_return and pc == fiber_return:
        if stack is not None and not stack.holds(sp, 16):
            raise ValueError(f"saved stack pointer 0x{sp:x} is outside its stack")
        fp, pc = read_words(sp, 2)
    return pc, fp


def chunk_in_slabs(address: int, slabs: list[int], stack_size: int,
                   stacks_per_slab: int) -> StackChunk | None:
    """The continuation stack holding `address`, given the sorted slab list (readers of
    stacks in process and out of process, the backtrace walker and the gdb plugin)."""
    k = bisect.bisect_right(slabs, address) - 1
    if k < 0 or not stack_size or address >= slabs[k] + stack_size * stacks_per_slab:
        return None
    i = (address - slabs[k]) // stack_size
    record = record_in_slab(slabs[k], i, stack_size)
    return StackChunk(slabs[k] + i * stack_size, record, record)


def in_fresh_slabs(address: int, slabs: list[int], slab_size: int) -> bool:
    """Whether `address` is a record of one of the sorted slabs of fresh records (which
    have no stack, so chunk_in_slabs does not know them)."""
    k = bisect.bisect_right(slabs, address) - 1
    return k >= 0 and address < slabs[k] + slab_size and (address - slabs[k]) % FRESH_RECORD_SIZE == 0


REVISION_SHIFT = 48  # a continuation reference is record | (revision & 0xFFFF) << 48
# A finished record whose revision has reached this is never reused, so the 16 revision
# bits of a reference never repeat for one record across the continuations it carries.
RETIRE_REVISION = 0xFFF0

# Every caller reserves at least this many argument words, so that a tail call to a
# function with up to this many parameters can reuse its caller's argument area.
MIN_CALL_AREA = 8

# The vmctx: one per instance. r15 points at it while the instance's code runs.
# Host functions get a host block with the same header, so r15-relative loads stay valid.
VM_RUNTIME = 0       # the store's runtime block
VM_MEM_BASE = 8      # memory 0 base (never moves: its full range is reserved up front)
VM_MEM_SIZE = 16     # memory 0 size in bytes, rewritten on memory.grow
VM_TRAP_STUB = 24    # address of the store's trap stub
VM_HOST_CALLABLE = 32  # host blocks only: the Python callable (PyObject *) the host trampoline calls
VM_GROW_STUB = 40    # the store's memory.grow, memory.copy and memory.fill stubs (bulkstubs.py)
VM_COPY_STUB = 48
VM_FILL_STUB = 56
VM_HEADER_SIZE = 64
# Every Wasm frame saves its instance's vmctx (r15) just below the saved rbp.
FRAME_VMCTX = -8
# A host block is a header followed by what the host trampoline copies.
HB_NPARAMS = VM_HEADER_SIZE  # argument words, copied to RT_HOST_WORDS before the call
HB_NRESULTS = HB_NPARAMS + 8  # result words, copied back from there after it
HOST_BLOCK_SIZE = HB_NRESULTS + 8
# A host function with a native fast path (compiler/wasistubs.py) has a longer block: the
# fast path's descriptor table (an int64 host fd per WASI fd, -1 where it does not apply)
# and the memory its pointers are in (a memory record, 0 until one is bound).
HB_FAST_FDS = HOST_BLOCK_SIZE
HB_FAST_NFDS = HB_FAST_FDS + 8
HB_FAST_MEMORY = HB_FAST_NFDS + 8
FAST_HOST_BLOCK_SIZE = HB_FAST_MEMORY + 8

# A function reference record: what funcref values and table elements point at.
FR_CODE = 0
FR_VMCTX = 8
FR_TYPE_ID = 16      # canonical type id, compared by call_indirect
FR_FUNC_INDEX = 24
FUNCREF_SIZE = 32

# A table record, shared by every instance that holds the table.
TB_ELEMS = 0
TB_SIZE = 8
TB_MAX = 16          # the most table.grow may reach (the type's maximum, or the engine's limit)
TB_CAPACITY = 24     # elements allocated at TB_ELEMS; table.grow beyond it asks the runtime
TABLE_SIZE = 32

# A linear memory record, shared by every instance that holds the memory. Its whole
# reservation is mapped at LM_BASE; [LM_BASE, LM_BASE + LM_SIZE) is readable and writable.
# Each holder's vmctx keeps its own copy of the base and size (one load per bounds check);
# memory.grow rewrites every size copy, listed at LM_SIZE_FIELDS.
LM_BASE = 0
LM_SIZE = 8          # bytes, a multiple of the page size
LM_MAX = 16          # bytes the memory may grow to (the reservation)
LM_SIZE_FIELD_COUNT = 24
LM_SIZE_FIELDS = 32  # address of an array of addresses of size copies
MEMORY_RECORD_SIZE = 40

# Trap codes and the spec's messages for them.
TRAP_MESSAGES = {
    1: "unreachable",
    2: "integer divide by zero",
    3: "integer overflow",
    4: "invalid conversion to integer",
    5: "out of bounds memory access",
    6: "undefined element",
    7: "uninitialized element",
    8: "indirect call type mismatch",
    9: "call stack exhausted",
    10: "null function reference",
    11: "null reference",
    12: "out of bounds table access",
    13: "host function error",
    14: "null continuation reference",
    15: "continuation already consumed",
    16: "unhandled tag",
    17: "null exception reference",
    18: "too many values bound to one continuation",
}
TRAP_UNREACHABLE = 1
TRAP_DIV_ZERO = 2
TRAP_INT_OVERFLOW = 3
TRAP_BAD_CONVERSION = 4
TRAP_MEMORY_OOB = 5
TRAP_UNDEFINED_ELEMENT = 6
TRAP_UNINITIALIZED_ELEMENT = 7
TRAP_SIGNATURE = 8
TRAP_STACK_EXHAUSTED = 9
TRAP_NULL_FUNC = 10
TRAP_NULL_REF = 11
TRAP_TABLE_OOB = 12
TRAP_HOST = 13
TRAP_NULL_CONT = 14
TRAP_CONSUMED = 15
TRAP_UNHANDLED = 16
TRAP_NULL_EXN = 17
TRAP_TOO_MANY_BOUND = 18



def trap_word(code: int, memory: int = 0, access_size: int = 0) -> int:
    """What generated code passes the trap stub (RT_TRAP_CODE): the trap code, and for an
    out-of-bounds access the memory and the access size, so that the report can name the
    faulting address (RT_TRAP_DETAIL holds the access's end, address + offset + size).
    Access size 0: a bulk instruction (memory.copy, fill, init), whose trap names no
    address, as Wasmtime's does not."""
    return code | access_size << 8 | memory << 16


def split_trap_word(word: int) -> tuple[int, int, int]:
    """(trap code, memory index, access size) from RT_TRAP_CODE."""
    return word & 0xFF, word >> 16, word >> 8 & 0xFF


HOST_OK, HOST_TRAP, HOST_UNWIND = 0, 1, 2  # RT_HOST_STATUS: how a host call ended

# Tracing (Store(trace_events=N)): generated code and stubs append an event to the ring at
# every change of the running stack and at every cont.new: (timestamp counter, kind with
# a detail above its low 8 bits, the id of the record left or the creator, the id of the
# record entered or created). Ids are CR_ID, 0 for the main stack. Details: a tag record's
# address (suspend, switch, resume_throw), a function reference record's (cont.new), a
# trap code (trap).
TRACE_EVENT_SIZE = 32
TRACE_KIND_BITS = 8
(TRACE_ENTER, TRACE_EXIT, TRACE_NEW, TRACE_RESUME, TRACE_SUSPEND, TRACE_SWITCH, TRACE_RETURN,
 TRACE_TRAP, TRACE_RESUME_THROW) = range(1, 10)

# Event sites: native addresses inside switching instructions where a debugger may stop to
# see a continuation event (the gdb plugin's catchpoints; DEBUG_ROOT.md). Generated code
# does not change for them: the compiler only notes where they are.
EVENT_CONT_NEW = 1  # cont.new has made the reference, in r9
EVENT_RESUME = 2    # resume (or resume_throw) holds the resumed continuation's record in rcx


class VmctxLayout:
    """Per-module vmctx layout: the header (with memory 0), then (base, size) of every other
    memory, a pointer to each memory's record, one pointer per tag, function, global, table
    and builtin, and last (address, length) of each data and element segment (length 0 once
    dropped)."""

    def __init__(self, num_funcs: int, num_globals: int, num_tables: int, num_builtins: int,
                 num_memories: int = 1, num_tags: int = 0, num_datas: int = 0, num_elems: int = 0):
        self.memories = VM_HEADER_SIZE
        self.memory_records = self.memories + 16 * max(num_memories - 1, 0)
        self.tags = self.memory_records + 8 * num_memories
        self.funcs = self.tags + 8 * num_tags
        self.globals = self.funcs + 8 * num_funcs
        self.tables = self.globals + 8 * num_globals
        self.builtins = self.tables + 8 * num_tables
        self.datas = self.builtins + 8 * num_builtins
        self.elems = self.datas + 16 * num_datas
        self.size = self.elems + 16 * num_elems

    def memory_base(self, i: int) -> int:
        return VM_MEM_BASE if i == 0 else self.memories + 16 * (i - 1)

    def memory_size(self, i: int) -> int:
        return VM_MEM_SIZE if i == 0 else self.memories + 16 * (i - 1) + 8

    def memory_record(self, i: int) -> int:
        return self.memory_records + 8 * i

    def tag(self, i: int) -> int:
        return self.tags + 8 * i

    def func(self, i: int) -> int:
        return self.funcs + 8 * i

    def global_(self, i: int) -> int:
        return self.globals + 8 * i

    def table(self, i: int) -> int:
        return self.tables + 8 * i

    def builtin(self, i: int) -> int:
        return self.builtins + 8 * i

    def data_segment(self, i: int) -> int:
        """(address, length in bytes) of data segment i."""
        return self.datas + 16 * i

    def elem_segment(self, i: int) -> int:
        """(address, number of 8-byte elements) of element segment i."""
        return self.elems + 16 * i
