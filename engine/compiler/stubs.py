"""Hand-assembled stubs shared by all instances of a Store: entry, trap and host-call.

entry(vmctx, code, slots, runtime, nslots) -> 0 on return, 1 on trap
    Saves the callee-saved registers, moves onto the Wasm main stack unless already on it,
    copies `nslots` argument words from `slots` to the outgoing area, calls `code`, and
    copies the result words back to `slots`.
trap stub
    Called (never jumped to) from generated code with the trap code in esi, so the pushed
    return address identifies the trap site. Records pc/sp/fp and the code in the runtime
    block and unwinds to the innermost entry frame.
host trampoline
    The code of every host function's reference record. r15 holds the host block; calls
    the block's Python callable through CPython's C API, arguments and results copied
    through the runtime block.
continuation start, switch, handler search, cont.bind merge, libcall switch
    The stack-switching stubs (see each one below).

Every stub a profiler can sample in has a frame-pointer frame, so a frame-pointer walk
(pc, then [rbp+8] following [rbp], as perf does) from any of its instructions names the
stub and then its caller. The exceptions are the instructions no frame-pointer code can
get right, where pc and rbp change at different instructions: before a called stub's
`mov rbp, rsp`, after its `pop rbp`, and the last jump of a switch. There the walk skips
the caller (one frame), as it does in any function's prologue; it never shows a frame that
is not on the stack (engine/DESIGN.md, "Frame pointers across switches").

memory.grow, memory.copy, memory.fill
    See bulkstubs.py; placed here so that they share the stubs' region and symbols. They
    are leaves without a frame of their own (their CFI is exact, so DWARF unwinding names
    their caller); a frame-pointer walk from inside them skips the calling function.
"""

from __future__ import annotations

import ctypes

from .. import layout as L
from ..records import record
from .bulkstubs import emit_bulk_stubs
from .frames import (AFTER_PUSH_RBP, AT_CALL, RBP_FRAME, CfaRule, PointerChain, emit_pop_frame,
                     emit_push_frame)
from .tracing import emit_trace_event, emit_trace_word
from .wasistubs import emit_wasi_stubs
from .x86 import (AE, NE, R8, R9, R10, R11, R12, R13, R14, R15, RAX, RBP, RBX, RCX, RDI, RDX, RSI,
                  RSP, A, Assembler, B, E, Label, Mem)

# Frame of the entry trampoline, below its rbp. Its lowest part is the root continuation
# record of this entry: handler search stops there, and host calls find the stack to run on.
_SAVED_OLD_ENTRY_SP = -48
_SAVED_SLOTS = -56
_SAVED_RUNTIME = -64
_SAVED_NSLOTS = -72
_SAVED_CURRENT = -80
_SAVED_LIMIT = -88
ENTRY_FRAME_SIZE = 416  # rbp - ENTRY_SP; the root record starts at ENTRY_SP
assert ENTRY_FRAME_SIZE - 88 >= L.CR_SIZE and ENTRY_FRAME_SIZE % 16 == 0
HOST_RED_ZONE = 256  # left untouched below a suspended main stack's rsp
NESTED_ENTRY_GAP = 64 << 10

# A Python API prototype: ctypes keeps the GIL while generated code runs, which is what lets
# the host trampoline call Python directly, and raises a Python exception left pending by
# a host callable when the entry returns.
EntryFunction = ctypes.PYFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p,
                                  ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64)

# The entry frame once all callee-saved registers are pushed.
ENTRY_FRAME = CfaRule("rbp", 16, (("rbp", -16), ("rbx", -24), ("r12", -32), ("r13", -40),
                                  ("r14", -48), ("r15", -56)))


# The native switch stubs, by L.SWITCH_* kind.
NATIVE_SWITCH_STUBS = ("stackstitch_resume", "stackstitch_suspend", "stackstitch_switch")


@record
class StubSymbol:
    """One stub: its name, place in the stub region and CFI rows."""

    name: str
    start: int  # offsets in the stub region
    end: int
    cfi_rows: list  # [(offset in region, frames.CfaRule)]
    signal_frame: bool = False  # the CIE gets the `S` augmentation (see start_stub_rule)


@record
class Stubs:
    """A store's stubs: their region, symbols and entry points."""

    region: object  # where `build_stubs` had the code placed: .address, .size
    symbols: list[StubSymbol]
    entry: object  # EntryFunction
    entry_address: int
    entry_return_address: int  # the return address of the entry's call into Wasm
    trap_stub: int
    host_trampoline: int
    start_stub: int  # where fresh continuations begin
    start_return_address: int  # the return address of the start stub's call
    switch_stubs: list[int]  # native switching: where each kind of switch ends (L.SWITCH_*)
    search_stub: int
    merge_stub: int
    libcall_switch: int
    fiber_return: int  # a suspended stack's saved pc in libcall mode: [sp] rbp, [sp+8] pc
    memory_grow: int  # bulkstubs.py
    memory_copy: int
    memory_fill: int
    wasi_fast: dict[str, int]  # wasistubs.py: WASI function name -> its native fast path
    read_tsc: object = None  # tracing stores: a function returning the timestamp counter


def emit_enter_stack(a: Assembler, target: int) -> None:
    """Make `target` (a record) the running stack and move rsp onto it (rax: runtime)."""
    a.mov(64, Mem(RAX, L.RT_CURRENT), target)
    a.mov(64, R11, Mem(target, L.CR_LIMIT))
    a.mov(64, Mem(RAX, L.RT_STACK_LIMIT), R11)
    a.store_imm(64, Mem(target, L.CR_STATE), L.CONT_RUNNING)
    a.mov(64, RSP, Mem(target, L.CR_SP))


def emit_switch_to(a: Assembler, target: int) -> int:
    """Make `target` (a record) the running stack and continue at its saved pc (rax: runtime).

    rbp is loaded last, just before the jump, so that a frame-pointer walk follows the old
    stack up to there; returns the offset after that load, where unwind rules must stop
    relying on the old rbp."""
    emit_enter_stack(a, target)
    a.mov(64, RBP, Mem(target, L.CR_FP))
    after_rbp = a.pos
    a.jmp_indirect(Mem(target, L.CR_PC))
    return after_rbp


def start_stub_rule(record_base: str, record_offset: int) -> CfaRule:
    """The continuation base frame's rule: the caller is the resumer, whose rsp is saved in
    the parent record, and whose rbp and resume address are in the base frame just below
    this record (found at `record_base` + `record_offset`). OCaml 5's caml_runstack does
    the same; as there, the CIE is marked as a signal frame so that gdb accepts a caller
    whose stack lies below this one."""
    cfa = PointerChain(record_base, (record_offset + L.CR_PARENT, L.CR_SP), load_last=True)
    return CfaRule(cfa, 0, (("rbp", PointerChain(record_base, (record_offset + L.BASE_FRAME_RBP,))),
                            ("rip", PointerChain(record_base, (record_offset + L.BASE_FRAME_RETURN,)))))


def saved_context_rule(record: str) -> CfaRule:
    """A stub jumped to (not called) by code that saved its context in the record in
    register `record`: the caller is that code, at its saved pc, rsp and rbp."""
    return CfaRule(PointerChain(record, (L.CR_SP,), load_last=True), 0,
                   (("rbp", PointerChain(record, (L.CR_FP,))), ("rip", PointerChain(record, (L.CR_PC,)))))


def build_stubs(place, tracing: bool = False) -> Stubs:
    """Assemble the stubs; `place(code)` maps them executable (runtime.codemem.CodeRegion).
    A tracing store's stubs also write trace events (tracing.py): entry and exit, the
    switches, continuation returns and traps; without tracing they have none of that."""
    a = Assembler()
    exit_label = Label()
    trap_stub = Label()
    symbols = []

    # ---- entry ----
    entry_at = a.pos
    entry_rows = [(a.pos, AT_CALL)]
    emit_push_frame(a, entry_rows)
    for k, r in enumerate((RBX, R12, R13, R14, R15)):
        a.push(r)
        entry_rows.append((a.pos, CfaRule("rbp", 16, ENTRY_FRAME.saved[:k + 2])))
    a.push_mem(Mem(RCX, L.RT_ENTRY_SP))
    a.push(RDX)
    a.push(RCX)
    a.push(R8)
    a.push_mem(Mem(RCX, L.RT_CURRENT))
    a.push_mem(Mem(RCX, L.RT_STACK_LIMIT))
    a.alu_imm("sub", 64, RSP, ENTRY_FRAME_SIZE - 88)
    a.mov(64, Mem(RCX, L.RT_ENTRY_SP), RSP)
    # The root record: no parent, no handlers, the main stack's limit, id 0.
    a.mov_imm(32, RAX, 0)
    a.mov(64, Mem(RSP, L.CR_PARENT), RAX)
    a.mov(64, Mem(RSP, L.CR_ID), RAX)
    a.mov(64, Mem(RSP, L.CR_HANDLER_COUNT), RAX)
    a.store_imm(64, Mem(RSP, L.CR_STATE), L.CONT_RUNNING)
    a.mov(64, RAX, Mem(RCX, L.RT_MAIN_LIMIT))
    a.mov(64, Mem(RSP, L.CR_LIMIT), RAX)
    a.mov(64, Mem(RCX, L.RT_STACK_LIMIT), RAX)
    a.mov(64, Mem(RCX, L.RT_CURRENT), RSP)
    # Switch to the Wasm main stack unless this call came from a host function running on it.
    # Nested in a host call on it, leave a gap: the host's C frames that run after a trap
    # (while the trap is reported) must not overwrite the Wasm frames being walked. If the
    # host code has gone so deep that no Wasm frame would fit below the gap, the stack is
    # exhausted: the gap must not take the stack pointer past the stack's low end.
    on_stack, switched, no_room = Label(), Label(), Label()
    a.mov(64, RAX, RSP)
    a.alu("sub", 64, RAX, Mem(RCX, L.RT_STACK_LO))
    a.alu("cmp", 64, RAX, Mem(RCX, L.RT_STACK_SPAN))
    a.jcc(B, on_stack)  # already on it
    a.mov(64, RSP, Mem(RCX, L.RT_STACK_HI))
    a.jmp(switched)
    a.bind(on_stack)
    a.lea(RAX, Mem(RSP, -NESTED_ENTRY_GAP))
    a.alu("cmp", 64, RAX, Mem(RCX, L.RT_MAIN_LIMIT))
    a.jcc(B, no_room)
    a.mov(64, RSP, RAX)
    a.bind(switched)
    a.mov(64, R15, RDI)
    a.mov(64, R14, Mem(R15, L.VM_MEM_BASE))
    a.mov(64, RBX, RSI)
    a.mov(64, RAX, R8)
    a.shift_imm("shl", 64, RAX, 3)
    a.alu_imm("add", 64, RAX, 15)
    a.alu_imm("and", 64, RAX, -16)
    a.alu("sub", 64, RSP, RAX)
    a.mov(64, RSI, RDX)
    a.mov(64, RDI, RSP)
    a.mov(64, RCX, R8)
    a.rep_movsq()
    if tracing:
        a.mov(64, RAX, Mem(RBP, _SAVED_RUNTIME))
        emit_trace_word(a, R8, L.TRACE_ENTER)
        emit_trace_event(a, R8, None, None)
    a.call_indirect(RBX)
    entry_return = a.pos
    a.mov(64, RSI, RSP)
    a.mov(64, RDI, Mem(RBP, _SAVED_SLOTS))
    a.mov(64, RCX, Mem(RBP, _SAVED_NSLOTS))
    a.rep_movsq()
    a.mov_imm(32, RAX, 0)
    a.bind(exit_label)
    if tracing:  # the status in rax waits in r12, restored below
        a.mov(64, R12, RAX)
        a.mov(64, RAX, Mem(RBP, _SAVED_RUNTIME))
        emit_trace_word(a, R8, L.TRACE_EXIT)
        emit_trace_event(a, R8, None, None)
        a.mov(64, RAX, R12)
    a.mov(64, RCX, Mem(RBP, _SAVED_RUNTIME))
    for saved, field in ((_SAVED_OLD_ENTRY_SP, L.RT_ENTRY_SP), (_SAVED_CURRENT, L.RT_CURRENT),
                         (_SAVED_LIMIT, L.RT_STACK_LIMIT)):
        a.mov(64, RDX, Mem(RBP, saved))
        a.mov(64, Mem(RCX, field), RDX)
    a.lea(RSP, Mem(RBP, -40))
    for r in (R15, R14, R13, R12, RBX):
        a.pop(r)
    a.pop(RBP)
    entry_rows.append((a.pos, AT_CALL))
    a.ret()
    entry_rows.append((a.pos, ENTRY_FRAME))
    a.bind(no_room)
    a.mov(64, R15, RDI)
    a.mov_imm(32, RSI, L.TRAP_STACK_EXHAUSTED)
    a.call_label(trap_stub)
    symbols.append(StubSymbol("stackstitch_entry", entry_at, a.pos, entry_rows))

    # ---- trap stub ----
    # Records the trap site (the caller: its return address, rsp and rbp) and leaves through
    # the innermost entry; the frames it leaves behind stay intact for the trap report.
    a.bind(trap_stub)
    trap_rows = [(a.pos, AT_CALL)]
    emit_push_frame(a, trap_rows)
    if tracing:
        a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
        emit_trace_word(a, R8, L.TRACE_TRAP, RSI)
        a.mov(64, R9, Mem(RAX, L.RT_CURRENT))
        emit_trace_event(a, R8, R9, None)
    a.mov(64, RDX, Mem(R15, L.VM_RUNTIME))
    a.mov(64, RCX, Mem(RBP, 8))
    a.mov(64, Mem(RDX, L.RT_TRAP_PC), RCX)
    a.lea(RCX, Mem(RBP, 16))
    a.mov(64, Mem(RDX, L.RT_TRAP_SP), RCX)
    a.mov(64, RCX, Mem(RBP, 0))
    a.mov(64, Mem(RDX, L.RT_TRAP_FP), RCX)
    a.mov(64, Mem(RDX, L.RT_TRAP_CODE), RSI)
    a.mov(64, RCX, Mem(RDX, L.RT_CURRENT))
    a.mov(64, Mem(RDX, L.RT_TRAP_STACK), RCX)
    a.mov(64, RSP, Mem(RDX, L.RT_ENTRY_SP))
    a.mov_imm(32, RAX, 1)
    a.lea(RBP, Mem(RSP, ENTRY_FRAME_SIZE))
    trap_rows.append((a.pos, ENTRY_FRAME))  # now in the entry frame, about to leave it
    a.jmp(exit_label)
    symbols.append(StubSymbol("stackstitch_trap", trap_stub.pos, a.pos, trap_rows))

    # ---- host trampoline ----
    # Calls the host block's Python callable through the C API: generated code runs with the
    # GIL held (see EntryFunction), so no closure and no GIL hand-over is needed. Arguments
    # and results pass through RT_HOST_WORDS (Python reads and writes those faster than it
    # can reach the caller's frame). The callable returns None, or leaves RT_HOST_STATUS
    # set; a NULL result means a Python exception is pending, which ctypes raises when the
    # entry returns. Host code has no stack-limit checks and needs room: when a continuation
    # is running, it runs below the suspended main stack's rsp (found at the root record)
    # instead. Its frames may then lie above this stub's own, which gdb accepts only next to
    # a signal frame: the CIE is marked as one, as the start stub's is.
    host_at = a.pos
    host_call = Label()
    a.bind(host_call)
    host_failed, host_raised, unwind = Label(), Label(), Label()
    host_rows = [(a.pos, AT_CALL)]
    emit_push_frame(a, host_rows)
    a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
    a.lea(RSI, Mem(RBP, 16))
    a.mov(64, Mem(RAX, L.RT_HOST_ARGS), RSI)
    a.lea(RDI, Mem(RAX, L.RT_HOST_WORDS))
    a.mov(64, RCX, Mem(R15, L.HB_NPARAMS))
    a.rep_movsq()
    a.mov(64, RCX, Mem(RAX, L.RT_CURRENT))
    find_root, at_root, call = Label(), Label(), Label()
    a.bind(find_root)
    a.mov(64, RDX, Mem(RCX, L.CR_PARENT))
    a.test(64, RDX, RDX)
    a.jcc(E, at_root)
    a.mov(64, RCX, RDX)
    a.jmp(find_root)
    a.bind(at_root)
    a.alu("cmp", 64, RCX, Mem(RAX, L.RT_CURRENT))
    a.jcc(E, call)
    a.mov(64, RSP, Mem(RCX, L.CR_SP))
    a.alu_imm("sub", 64, RSP, HOST_RED_ZONE)
    a.bind(call)
    a.alu_imm("and", 64, RSP, -16)
    a.mov(64, RDI, Mem(R15, L.VM_HOST_CALLABLE))
    a.call_indirect(Mem(RAX, L.RT_PY_CALL))  # PyObject_CallNoArgs(callable)
    a.test(64, RAX, RAX)
    a.jcc(E, host_raised)
    a.mov(64, RDI, RAX)
    a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
    a.call_indirect(Mem(RAX, L.RT_PY_DECREF))
    a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
    a.alu_imm("cmp", 64, Mem(RAX, L.RT_HOST_STATUS), L.HOST_OK)
    a.jcc(NE, host_failed)
    a.lea(RSI, Mem(RAX, L.RT_HOST_WORDS))
    a.lea(RDI, Mem(RBP, 16))
    a.mov(64, RCX, Mem(R15, L.HB_NRESULTS))
    a.rep_movsq()
    emit_pop_frame(a, host_rows)
    a.ret()
    host_rows.append((a.pos, RBP_FRAME))
    a.bind(host_raised)
    a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
    a.bind(host_failed)
    a.mov(64, RCX, Mem(RAX, L.RT_HOST_STATUS))
    a.store_imm(64, Mem(RAX, L.RT_HOST_STATUS), L.HOST_OK)
    a.alu_imm("cmp", 64, RCX, L.HOST_UNWIND)
    a.jcc(E, unwind)
    a.mov_imm(32, RSI, L.TRAP_HOST)
    a.call_label(trap_stub)
    a.bind(unwind)  # a thrown exception's handler: continue there
    a.mov(64, RSP, Mem(RAX, L.RT_UNWIND_SP))
    a.mov(64, RBP, Mem(RAX, L.RT_UNWIND_FP))
    a.jmp_indirect(Mem(RAX, L.RT_UNWIND_PC))
    symbols.append(StubSymbol("stackstitch_host_call", host_at, a.pos, host_rows, signal_frame=True))

    # ---- continuation start ----
    # Entered by a switch with rsp and rbp at the base frame of a fresh continuation's stack
    # ([rbp] the resumer's rbp, [rbp+8] its resume landing): a fresh record's saved fp is
    # its base frame. One byte of padding comes first, inside the stub's range: a debugger
    # stopped in a switch whose caller is a fresh continuation looks the caller's pc up
    # at pc - 1, as for any return address, and must find this stub's rule there.
    start_symbol_at = a.pos
    start_rows = [(a.pos, start_stub_rule("rbp", 16))]
    a.int3()
    start_at = a.pos
    a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
    a.mov(64, RBX, Mem(RAX, L.RT_CURRENT))
    a.mov(64, RCX, Mem(RBX, L.CR_NARGS))
    a.mov(64, RDX, Mem(RBX, L.CR_NRESULTS))
    a.alu("cmp", 64, RDX, RCX)
    a.cmov(A, 64, RCX, RDX)
    a.mov_imm(32, R9, L.MIN_CALL_AREA)
    a.alu("cmp", 64, RCX, R9)
    a.cmov(0x2, 64, RCX, R9)  # cmovb: at least the minimum call area
    a.mov(64, R8, RCX)
    a.shift_imm("shl", 64, R8, 3)
    a.alu_imm("add", 64, R8, 15)
    a.alu_imm("and", 64, R8, -16)
    a.alu("sub", 64, RSP, R8)
    a.lea(RSI, Mem(RAX, L.RT_TRANSFER))
    a.mov(64, RDI, RSP)
    a.rep_movsq()
    a.mov(64, R11, Mem(RBX, L.CR_FUNC))
    a.mov(64, R15, Mem(R11, L.FR_VMCTX))
    a.mov(64, R14, Mem(R15, L.VM_MEM_BASE))
    a.call_indirect(Mem(R11, L.FR_CODE))
    start_return = a.pos
    a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
    a.mov(64, RBX, Mem(RAX, L.RT_CURRENT))
    a.mov(64, RCX, Mem(RBX, L.CR_NRESULTS))
    a.mov(64, RSI, RSP)
    a.lea(RDI, Mem(RAX, L.RT_TRANSFER))
    a.rep_movsq()
    a.store_imm(64, Mem(RAX, L.RT_TRANSFER_KIND), 0)
    a.store_imm(64, Mem(RBX, L.CR_STATE), L.CONT_RETURNED)
    retired = Label()
    a.alu_imm("cmp", 64, Mem(RBX, L.CR_REVISION), L.RETIRE_REVISION)
    a.jcc(AE, retired)
    a.mov(64, RDX, Mem(RAX, L.RT_FREE_LIST))  # recycle: nothing allocates before we leave
    a.mov(64, Mem(RBX, L.CR_NEXT_FREE), RDX)
    a.mov(64, Mem(RAX, L.RT_FREE_LIST), RBX)
    a.bind(retired)
    a.mov(64, RDI, Mem(RBX, L.CR_PARENT))
    if tracing:
        emit_trace_word(a, R8, L.TRACE_RETURN)
        emit_trace_event(a, R8, RBX, RDI)
    after_rbp = emit_switch_to(a, RDI)
    start_rows.append((after_rbp, start_stub_rule("rbx", 0)))
    symbols.append(StubSymbol("stackstitch_continuation_start", start_symbol_at, a.pos, start_rows,
                              signal_frame=True))

    # ---- native switches ----
    # Jumped to by generated code once it has saved its context in record rdi; rsi: the
    # record to continue, rax: runtime. rbp first points at rdi's saved (fp, pc) pair,
    # which reads as a frame record of the code that jumped here (CR_FP and CR_PC are
    # adjacent), so a frame-pointer walk sees this stub called from there. One copy per
    # kind of switch: each final jump then has the few targets that kind has (as when
    # it was inlined at each site), which the branch predictor learns.
    switch_stubs = []
    for name in NATIVE_SWITCH_STUBS:
        switch_stubs.append(a.pos)
        switch_rows = [(a.pos, saved_context_rule("rdi"))]
        a.lea(RBP, Mem(RDI, L.CR_FP))
        if tracing:  # r8: the event (switching.py)
            emit_trace_event(a, R8, RDI, RSI)
        after_rbp = emit_switch_to(a, RSI)
        switch_rows.append((after_rbp, saved_context_rule("rsi")))
        # Signal-marked, as the start stub: the code it continues may lie on a stack below
        # the one it came from, and a debugger's `step` goes on through such a frame to
        # the code the switch lands in instead of stepping over it as a call.
        symbols.append(StubSymbol(name, switch_stubs[-1], a.pos, switch_rows, signal_frame=True))

    # ---- handler search ----
    # rdx: tag record (bit 0 set for a switch clause), rax: runtime. Returns rcx: the record
    # whose resume installed the handler, r8: the clause index. Preserves rax, rbx, rdx.
    search_at = a.pos
    search_rows = [(a.pos, AT_CALL)]
    outer, inner, next_record, found, unhandled = Label(), Label(), Label(), Label(), Label()
    emit_push_frame(a, search_rows)
    a.mov(64, RCX, Mem(RAX, L.RT_CURRENT))
    a.bind(outer)
    a.test(64, RCX, RCX)
    a.jcc(E, unhandled)
    a.mov(64, R9, Mem(RCX, L.CR_HANDLER_COUNT))
    a.mov_imm(32, R8, 0)
    a.bind(inner)
    a.alu("cmp", 64, R8, R9)
    a.jcc(AE, next_record)
    a.alu("cmp", 64, RDX, Mem(RCX, L.CR_HANDLERS, R8, 8))
    a.jcc(E, found)
    a.alu_imm("add", 64, R8, 1)
    a.jmp(inner)
    a.bind(next_record)
    a.mov(64, RCX, Mem(RCX, L.CR_PARENT))
    a.jmp(outer)
    a.bind(found)
    a.pop(RBP)
    search_rows.append((a.pos, AT_CALL))
    a.ret()
    search_rows.append((a.pos, RBP_FRAME))
    a.bind(unhandled)  # the return address on the stack names the suspend site
    a.pop(RBP)
    search_rows.append((a.pos, AT_CALL))
    a.mov_imm(32, RSI, L.TRAP_UNHANDLED)
    a.jmp(trap_stub)
    symbols.append(StubSymbol("stackstitch_handler_search", search_at, a.pos, search_rows))

    # ---- cont.bind values ----
    # rcx: record, rdx: number of values already in the transfer area, rax: runtime.
    # Moves them up and puts the bound values first. Preserves rax, rbx, rcx, rdx.
    merge_at = a.pos
    merge_rows = [(a.pos, AT_CALL)]
    shift, copy, done = Label(), Label(), Label()
    emit_push_frame(a, merge_rows)
    a.mov(64, R8, Mem(RCX, L.CR_NBOUND))
    a.mov(64, R9, RDX)
    a.bind(shift)
    a.test(64, R9, R9)
    a.jcc(E, copy)
    a.alu_imm("sub", 64, R9, 1)
    a.mov(64, R10, Mem(RAX, L.RT_TRANSFER, R9, 8))
    a.lea(R11, Mem(R9, 0, R8, 1))
    a.mov(64, Mem(RAX, L.RT_TRANSFER, R11, 8), R10)
    a.jmp(shift)
    a.bind(copy)
    a.mov_imm(32, R9, 0)
    loop = Label()
    a.bind(loop)
    a.alu("cmp", 64, R9, R8)
    a.jcc(AE, done)
    a.mov(64, R10, Mem(RCX, L.CR_BOUND, R9, 8))
    a.mov(64, Mem(RAX, L.RT_TRANSFER, R9, 8), R10)
    a.alu_imm("add", 64, R9, 1)
    a.jmp(loop)
    a.bind(done)
    a.store_imm(64, Mem(RCX, L.CR_NBOUND), 0)
    a.pop(RBP)
    merge_rows.append((a.pos, AT_CALL))
    a.ret()
    symbols.append(StubSymbol("stackstitch_bind_merge", merge_at, a.pos, merge_rows))

    # ---- libcall-mode switch ----
    # rdi: record to save this stack's context in, rsi: record to continue, rax: runtime.
    # Returns on the other stack: a stack this routine left has its saved pc at
    # fiber_return, and its frame of this routine at its saved sp, which pops and returns.
    # Until then rbp stays on this routine's frame on the stack being left. A fresh
    # continuation instead starts at its start stub, with rbp at its base frame.
    # Signal-marked, as the native switches are, so that `step` goes on through it.
    libcall_at = a.pos
    fiber_return, fresh = Label(), Label()
    libcall_rows = [(a.pos, AT_CALL)]
    emit_push_frame(a, libcall_rows)
    if tracing:  # r8: the event (switching.py)
        emit_trace_event(a, R8, RDI, RSI)
    a.mov(64, Mem(RDI, L.CR_SP), RSP)
    a.mov(64, Mem(RDI, L.CR_FP), RBP)
    a.lea_rip(R10, fiber_return)
    a.mov(64, Mem(RDI, L.CR_PC), R10)
    emit_enter_stack(a, RSI)
    a.alu("cmp", 64, R10, Mem(RSI, L.CR_PC))
    a.jcc(NE, fresh)
    a.bind(fiber_return)
    a.pop(RBP)
    libcall_rows.append((a.pos, AT_CALL))
    # gdb unwinds a frame stopped on a 0xC3 `ret` in code without a compile unit with its
    # epilogue unwinder, as a normal frame, and would end a `step` here; `repz ret` keeps
    # this frame the signal frame that `step` goes on through.
    a.repz_ret()
    a.bind(fresh)
    libcall_rows.append((a.pos, RBP_FRAME))
    a.mov(64, RBP, Mem(RSI, L.CR_FP))
    libcall_rows.append((a.pos, saved_context_rule("rsi")))
    a.jmp_indirect(Mem(RSI, L.CR_PC))
    symbols.append(StubSymbol("stackstitch_libcall_switch", libcall_at, a.pos, libcall_rows,
                              signal_frame=True))

    read_tsc_at = None
    if tracing:  # for Python: the clock of the events, to calibrate it
        read_tsc_at = a.pos
        a.push(RBP)
        a.mov(64, RBP, RSP)
        a.rdtsc()
        a.shift_imm("shl", 64, RDX, 32)
        a.alu("or", 64, RAX, RDX)
        a.pop(RBP)
        a.ret()
        symbols.append(StubSymbol("stackstitch_read_tsc", read_tsc_at, a.pos,
                                  [(read_tsc_at, AT_CALL), (read_tsc_at + 1, AFTER_PUSH_RBP),
                                   (read_tsc_at + 4, RBP_FRAME), (a.pos - 1, AT_CALL)]))
    bulk = {}
    for name, start, end, rows in emit_bulk_stubs(a):
        symbols.append(StubSymbol(name, start, end, rows))
        bulk[name] = start
    wasi_fast = {}
    for name, start, end, rows in emit_wasi_stubs(a, host_call):
        symbols.append(StubSymbol(name, start, end, rows))
        wasi_fast[name.removeprefix("stackstitch_wasi_")] = start

    region = place(bytes(a.buf))
    base = region.address
    return Stubs(region=region, symbols=symbols,
                 entry=EntryFunction(base + entry_at),
                 entry_address=base + entry_at,
                 entry_return_address=base + entry_return,
                 trap_stub=base + trap_stub.pos,
                 host_trampoline=base + host_at,
                 start_stub=base + start_at,
                 start_return_address=base + start_return,
                 switch_stubs=[base + at for at in switch_stubs],
                 search_stub=base + search_at,
                 merge_stub=base + merge_at,
                 libcall_switch=base + libcall_at,
                 fiber_return=base + fiber_return.pos,
                 read_tsc=None if read_tsc_at is None else ctypes.CFUNCTYPE(ctypes.c_uint64)(base + read_tsc_at),
                 memory_grow=base + bulk["stackstitch_memory_grow"],
                 memory_copy=base + bulk["stackstitch_memory_copy"],
                 memory_fill=base + bulk["stackstitch_memory_fill"],
                 wasi_fast={name: base + start for name, start in wasi_fast.items()})
