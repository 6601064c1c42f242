"""The compiler's abstract value stack: where each operand lives (a constant, a register,
a lazily read local, or its canonical frame slot), register allocation and spilling, and
moving values between those places. Also the parametric and variable instructions,
which only move values."""

from __future__ import annotations

from .common import (CONST, FLOATS, LOCAL, REG, SCRATCH, SLOT, XSCRATCH, CodegenCore,
                     CompileError, is_float, rbp_operand, width)
from .x86 import NE, R8, R9, R10, R12, R13, R15, RAX, RBX, RCX, RDI, RDX, RSI, E, Label, Mem

GPR_ORDER = (RAX, RCX, RDX, RBX, RSI, RDI, R8, R9, R10, R12, R13)
XMM_ORDER = tuple(range(15))


class ValueStackCodegen(CodegenCore):
    """FunctionCompiler's value stack and registers (a mixin)."""

    # ---- locations -------------------------------------------------------------------

    def local_mem(self, i: int) -> Mem:
        return self.local_mems[i]

    def slot_mem(self, k: int) -> Mem:
        mems = self.slot_mems
        while k >= len(mems):
            mems.append(rbp_operand(self.slot_base - 8 * len(mems)))
        return mems[k]

    # ---- register allocation ---------------------------------------------------------

    def alloc(self, xmm: bool, avoid=()) -> int:
        """A free register of the class (xmm or general-purpose), spilling if need be."""
        free = self.free_xmm if xmm else self.free_gpr
        if free and not avoid:
            return free.pop(0)
        for r in free:
            if r not in avoid:
                free.remove(r)
                return r
        for i, (kind, val, ty) in enumerate(self.stack):
            if kind == REG and is_float(ty) == xmm and val not in avoid:
                self.spill(i)
                free.remove(val)
                return val
        raise CompileError("out of registers")

    def free(self, reg: int, xmm: bool):
        (self.free_xmm if xmm else self.free_gpr).append(reg)

    def claim(self, reg: int):
        """Take a specific general-purpose register, spilling the stack value that holds it."""
        if reg not in self.free_gpr:
            for i, (kind, val, ty) in enumerate(self.stack):
                if kind == REG and val == reg and not is_float(ty):
                    self.spill(i)
                    break
        self.free_gpr.remove(reg)

    def spill(self, i: int):
        kind, val, ty = self.stack[i]
        if kind == REG:
            if is_float(ty):
                self.asm.movs(64, self.slot_mem(i), val)
                self.free_xmm.append(val)
            else:
                self.asm.mov(64, self.slot_mem(i), val)
                self.free_gpr.append(val)
        elif kind == LOCAL:
            self.store_entry(self.slot_mem(i), (kind, val, ty))
        elif kind == CONST:
            self.store_const(self.slot_mem(i), val, ty)
        else:
            return
        self.stack[i] = (SLOT, i, ty)

    def spill_all(self, keep_consts: bool = True):
        for i, e in enumerate(self.stack):
            if e[0] == REG or e[0] == LOCAL or (e[0] == CONST and not keep_consts):
                self.spill(i)

    def spill_regs(self):
        for i, e in enumerate(self.stack):
            if e[0] == REG:
                self.spill(i)

    # ---- moving values ---------------------------------------------------------------

    def store_const(self, dst: Mem, val: int, ty: str):
        if -(1 << 31) <= val < (1 << 31) or (ty in ("i32", "f32")):
            if ty in ("i32", "f32"):
                val &= 0xFFFFFFFF
                if val >= 1 << 31:
                    val -= 1 << 32
                self.asm.store_imm(32, dst, val)
            else:
                self.asm.store_imm(64, dst, val)
        else:
            self.asm.mov_imm(64, SCRATCH, val)
            self.asm.mov(64, dst, SCRATCH)

    def load(self, entry: tuple, reg: int):
        """Put an entry's value into `reg` (of the entry's class)."""
        kind, val, ty = entry
        a = self.asm
        if ty in FLOATS:
            if kind == REG:
                if val != reg:
                    a.movaps(reg, val)
            elif kind == CONST:
                if val == 0:
                    a.flogic("xor", 32, reg, reg)
                else:
                    a.mov_imm(64, SCRATCH, val)
                    a.movq_to_xmm(64, reg, SCRATCH)
            elif kind == LOCAL and val in self.pinned:
                if self.pinned[val] != reg:
                    a.movaps(reg, self.pinned[val])
            else:
                mem = self.local_mems[val] if kind == LOCAL else self.slot_mem(val)
                a.movs(width(ty), reg, mem)
        else:
            size = 32 if ty == "i32" else 64
            if kind == LOCAL:
                pinned = self.pinned.get(val)
                if pinned is None:
                    a.mov(size, reg, self.local_mems[val])
                elif pinned != reg:
                    a.mov(size, reg, pinned)
            elif kind == REG:
                if val != reg:
                    a.mov(size, reg, val)
            elif kind == CONST:
                a.mov_imm(size, reg, val)
            else:
                a.mov(size, reg, self.slot_mem(val))

    def store_entry(self, dst: Mem, entry: tuple):
        """Write an entry's value as a full 8-byte word at `dst`."""
        kind, val, ty = entry
        if kind == LOCAL and val in self.pinned:
            kind, val = REG, self.pinned[val]
        if kind == REG:
            if is_float(ty):
                self.asm.movs(64, dst, val)
            else:
                self.asm.mov(64, dst, val)
        elif kind == CONST:
            self.store_const(dst, val, ty)
        else:
            src = self.local_mem(val) if kind == LOCAL else self.slot_mem(val)
            self.asm.mov(64, SCRATCH, src)
            self.asm.mov(64, dst, SCRATCH)

    def push(self, kind: int, val: int, ty: str):
        self.stack.append((kind, val, ty))

    def push_reg(self, reg: int, ty: str):
        self.stack.append((REG, reg, ty))

    def pop(self) -> tuple:
        """Pop an entry; a register it holds now belongs to the caller."""
        return self.stack.pop()

    def release(self, entry: tuple):
        if entry[0] == REG:
            (self.free_xmm if entry[2] in FLOATS else self.free_gpr).append(entry[1])

    def pop_reg(self, avoid=()) -> int:
        """Pop the top value into a register the caller owns."""
        entry = self.stack.pop()
        kind, val, ty = entry
        if kind == REG and val not in avoid:
            return val
        reg = self.alloc(ty in FLOATS, avoid)
        self.load(entry, reg)
        self.release(entry)
        return reg

    def operand(self, entry: tuple):
        """A register or memory operand for an entry (constants are materialized in scratch)."""
        kind, val, ty = entry
        if kind == REG:
            return val
        if kind == LOCAL:
            return self.pinned.get(val) or self.local_mem(val)
        if kind == SLOT:
            return self.slot_mem(val)
        if is_float(ty):
            self.load(entry, XSCRATCH)
            return XSCRATCH
        self.asm.mov_imm(width(ty), SCRATCH, val)
        return SCRATCH

    def move_to_slots(self, count: int, dst_base: int):
        """Store the top `count` values into canonical slots dst_base.. (before a branch)."""
        h = len(self.stack)
        for j in range(count):
            src = h - count + j
            entry = self.stack[src]
            if entry[0] == SLOT and entry[1] == dst_base + j:
                continue
            self.store_entry(self.slot_mem(dst_base + j), entry)

    def materialize_local(self, index: int):
        """Before local `index` changes, load stack entries that still read it lazily."""
        for i, (kind, val, ty) in enumerate(self.stack):
            if kind == LOCAL and val == index:
                reg = self.alloc(is_float(ty))
                self.load((kind, val, ty), reg)
                self.stack[i] = (REG, reg, ty)

    # ---- parametric and variables ----------------------------------------------------

    def op_drop(self):
        self.release(self.pop())

    def op_select(self):
        cond = self.pop_reg()
        b = self.pop()
        a_entry = self.pop()
        ty = a_entry[2]
        asm = self.asm
        if is_float(ty):
            dst = a_entry[1] if a_entry[0] == REG else self.alloc(True)
            self.load(a_entry, dst)
            skip = Label()
            asm.test(32, cond, cond)
            asm.jcc(NE, skip)
            self.load(b, dst)
            asm.bind(skip)
        else:
            dst = a_entry[1] if a_entry[0] == REG else self.alloc(False, avoid=(cond,))
            self.load(a_entry, dst)
            src = self.operand(b)
            asm.test(32, cond, cond)
            asm.cmov(E, width(ty) if ty != "i32" else 32, dst, src)
        self.release(b)
        self.free(cond, False)
        self.push_reg(dst, ty)

    def op_select_t(self):
        self.valtypes()
        self.op_select()

    def op_local_get(self):  # the most frequent instruction: a one-byte index read inline
        pos = self.pos
        i = self.code[pos]
        if i < 0x80:
            self.pos = pos + 1
        else:
            i = self.u32()
        self.stack.append((LOCAL, i, self.local_types[i]))

    def op_local_set(self):
        i = self.u32()
        self.materialize_local(i)
        entry = self.pop()
        if entry[0] == LOCAL and entry[1] == i:
            return
        self.write_local(i, entry)
        self.release(entry)

    def write_local(self, i: int, entry: tuple):
        """Store to the local's frame slot, and to its register while a loop pins it."""
        self.store_entry(self.local_mem(i), entry)
        if i in self.pinned:
            self.load(entry, self.pinned[i])

    def op_local_tee(self):
        i = self.u32()
        entry = self.stack[-1]
        if entry[0] == LOCAL and entry[1] == i:
            return
        self.stack.pop()
        self.materialize_local(i)
        self.write_local(i, entry)
        if entry[0] == REG:
            self.push(*entry)
        else:
            self.push(LOCAL, i, entry[2])

    def op_global_get(self):
        i = self.u32()
        ty = self.mc.global_types[i]
        a = self.asm
        a.mov(64, SCRATCH, Mem(R15, self.mc.vm.global_(i)))
        reg = self.alloc(is_float(ty))
        if is_float(ty):
            a.movs(width(ty), reg, Mem(SCRATCH, 0))
        else:
            a.mov(width(ty), reg, Mem(SCRATCH, 0))
        self.push_reg(reg, ty)

    def op_global_set(self):
        i = self.u32()
        entry = self.pop()
        ty = entry[2]
        if entry[0] != REG:
            reg = self.alloc(is_float(ty))
            self.load(entry, reg)
            entry = (REG, reg, ty)
        a = self.asm
        a.mov(64, SCRATCH, Mem(R15, self.mc.vm.global_(i)))
        if is_float(ty):
            a.movs(64, Mem(SCRATCH, 0), entry[1])
        else:
            a.mov(64, Mem(SCRATCH, 0), entry[1])
        self.release(entry)
