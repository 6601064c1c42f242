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
    the block's ctypes callback with a pointer to the argument/result words.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

from . import layout as L
from .codemem import CodeRegion
from .frames import AFTER_PUSH_RBP, AT_CALL, RBP_FRAME, CfaRule
from .x86 import (RAX, RBP, RBX, RCX, RDI, RDX, RSI, RSP, R8, R12, R13, R14, R15,
                  Assembler, Label, Mem, NE)

# Frame of the entry trampoline, below its rbp.
_SAVED_OLD_ENTRY_SP = -48
_SAVED_SLOTS = -56
_SAVED_RUNTIME = -64
_SAVED_NSLOTS = -72
ENTRY_FRAME_SIZE = 80  # rbp - ENTRY_SP

EntryFunction = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64)


# The entry frame once all callee-saved registers are pushed.
ENTRY_FRAME = CfaRule("rbp", 16, (("rbp", -16), ("rbx", -24), ("r12", -32), ("r13", -40),
                                  ("r14", -48), ("r15", -56)))


@dataclass
class StubSymbol:
    name: str
    start: int  # offsets in the stub region
    end: int
    cfi_rows: list  # [(offset in region, frames.CfaRule)]


@dataclass
class Stubs:
    region: CodeRegion
    symbols: list[StubSymbol]
    entry: object  # EntryFunction
    entry_address: int
    entry_return_address: int  # the return address of the entry's call into Wasm
    trap_stub: int
    host_trampoline: int


def build_stubs() -> Stubs:
    a = Assembler()
    exit_label = Label()
    trap_stub = Label()

    # ---- entry ----
    entry_at = a.pos
    entry_rows = [(a.pos, AT_CALL)]
    a.push(RBP)
    entry_rows.append((a.pos, AFTER_PUSH_RBP))
    a.mov(64, RBP, RSP)
    entry_rows.append((a.pos, RBP_FRAME))
    for k, r in enumerate((RBX, R12, R13, R14, R15)):
        a.push(r)
        entry_rows.append((a.pos, CfaRule("rbp", 16, ENTRY_FRAME.saved[:k + 2])))
    a._emit(0, 0, b"\xff", 6, Mem(RCX, L.RT_ENTRY_SP))  # push [rcx+ENTRY_SP]
    a.push(RDX)
    a.push(RCX)
    a.push(R8)
    a.alu_imm("sub", 64, RSP, 8)
    a.mov(64, Mem(RCX, L.RT_ENTRY_SP), RSP)
    # Switch to the Wasm main stack unless this call came from a host function running on it.
    on_stack = Label()
    a.mov(64, RAX, RSP)
    a.alu("sub", 64, RAX, Mem(RCX, L.RT_STACK_LO))
    a.alu("cmp", 64, RAX, Mem(RCX, L.RT_STACK_SPAN))
    a.jcc(0x2, on_stack)  # jb: already on it
    a.mov(64, RSP, Mem(RCX, L.RT_STACK_HI))
    a.bind(on_stack)
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
    a.raw(b"\xf3\x48\xa5")  # rep movsq
    a.call_indirect(RBX)
    entry_return = a.pos
    a.mov(64, RSI, RSP)
    a.mov(64, RDI, Mem(RBP, _SAVED_SLOTS))
    a.mov(64, RCX, Mem(RBP, _SAVED_NSLOTS))
    a.raw(b"\xf3\x48\xa5")  # rep movsq
    a.mov_imm(32, RAX, 0)
    a.bind(exit_label)
    a.mov(64, RCX, Mem(RBP, _SAVED_RUNTIME))
    a.mov(64, RDX, Mem(RBP, _SAVED_OLD_ENTRY_SP))
    a.mov(64, Mem(RCX, L.RT_ENTRY_SP), RDX)
    a.lea(RSP, Mem(RBP, -40))
    for r in (R15, R14, R13, R12, RBX):
        a.pop(r)
    a.pop(RBP)
    entry_rows.append((a.pos, AT_CALL))
    a.ret()
    entry_end = a.pos

    # ---- trap stub ----
    a.bind(trap_stub)
    trap_rows = [(a.pos, AT_CALL)]
    a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
    a.pop(RCX)
    trap_rows.append((a.pos, CfaRule("rsp", 0)))  # the return address was just popped
    a.mov(64, Mem(RAX, L.RT_TRAP_PC), RCX)
    a.mov(64, Mem(RAX, L.RT_TRAP_SP), RSP)
    a.mov(64, Mem(RAX, L.RT_TRAP_FP), RBP)
    a.mov(64, Mem(RAX, L.RT_TRAP_CODE), RSI)
    a.mov(64, RSP, Mem(RAX, L.RT_ENTRY_SP))
    a.lea(RBP, Mem(RSP, ENTRY_FRAME_SIZE))
    trap_rows.append((a.pos, ENTRY_FRAME))  # now in the entry frame, about to leave it
    a.mov_imm(32, RAX, 1)
    a.jmp(exit_label)
    trap_end = a.pos

    # ---- host trampoline ----
    host_at = a.pos
    host_failed = Label()
    host_rows = [(a.pos, AT_CALL)]
    a.push(RBP)
    host_rows.append((a.pos, AFTER_PUSH_RBP))
    a.mov(64, RBP, RSP)
    host_rows.append((a.pos, RBP_FRAME))
    a.lea(RDI, Mem(RBP, 16))
    a.alu_imm("and", 64, RSP, -16)
    a.call_indirect(Mem(R15, L.VM_HOST_CALLBACK))
    a.test(32, RAX, RAX)
    a.jcc(NE, host_failed)
    a.mov(64, RSP, RBP)
    a.pop(RBP)
    host_rows.append((a.pos, AT_CALL))
    a.ret()
    host_rows.append((a.pos, RBP_FRAME))
    a.bind(host_failed)
    a.mov_imm(32, RSI, L.TRAP_HOST)
    a.call_label(trap_stub)
    host_end = a.pos

    region = CodeRegion(bytes(a.buf))
    base = region.address
    symbols = [StubSymbol("stackstitch_entry", entry_at, entry_end, entry_rows),
               StubSymbol("stackstitch_trap", trap_stub.pos, trap_end, trap_rows),
               StubSymbol("stackstitch_host_call", host_at, host_end, host_rows)]
    return Stubs(region=region, symbols=symbols,
                 entry=EntryFunction(base + entry_at),
                 entry_address=base + entry_at,
                 entry_return_address=base + entry_return,
                 trap_stub=base + trap_stub.pos,
                 host_trampoline=base + host_at)
