"""The compiler's abstract value stack: where each operand lives (a constant, a register,
a lazily read local, or its canonical frame slot), register allocation and spilling, and
moving values between those places. Also the parametric and variable instructions,
which only move values."""

from __future__ import annotations

from .common import (CONST, FLOATS, LOCAL, REG, SCRATCH, SLOT, CodegenCore, CompileError, is_float,
                     rbp_operand, width)
from .x86 import NE, R8, R9, R10, R12, R13, R15, RAX, RBX, RCX, RDI, RDX, RSI, E, Label, Mem, Rip, negate

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
            mems.append(rbp_operand(-16 - 8 * (self.nlocals + len(mems))))  # below the locals
        return mems[k]

    def float_constant(self, bits: int, ty: str) -> Rip:
        """The operand of a float constant: a word of the function's pool, after its code."""
        label = self.constants.get((bits, ty))
        if label is None:
            label = self.constants[(bits, ty)] = Label()
        return Rip(label)

    def emit_constants(self):
        """The pool of float constants (8-byte aligned words, f32 in the low half)."""
        if self.constants:
            self.asm.align(8)
            for (bits, _), label in self.constants.items():
                self.asm.bind(label)
                self.asm.data64(bits)

    # ---- locals cached in registers --------------------------------------------------
    #
    # After local.set, the register that held the value keeps it, as a copy of the local
    # (which is in its frame slot too), until the register is needed for something else,
    # the local changes, or control flow joins; reads of the local use the register. A
    # cached register is neither free nor on the value stack. Instructions that use fixed
    # registers or call out drop the whole cache first (handlers.KEEPS_CACHED_LOCALS).

    def local_register(self, i: int) -> int | None:
        """The register holding local i's value: a loop's pin, or a cached copy."""
        reg = self.pinned.get(i)
        return reg if reg is not None else self.cached.get(i)

    def uncache(self, i: int):
        reg = self.cached.pop(i, None)
        if reg is not None:
            self.free(reg, is_float(self.local_types[i]))

    def clear_cache(self):
        for i, reg in self.cached.items():
            self.free(reg, is_float(self.local_types[i]))
        self.cached.clear()

    def evict(self, xmm: bool, avoid=()) -> int | None:
        """Take a cached register of the class for other use (None if there is none)."""
        for i, reg in self.cached.items():
            if is_float(self.local_types[i]) == xmm and reg not in avoid:
                del self.cached[i]
                return reg
        return None

    # ---- register allocation ---------------------------------------------------------

    def alloc(self, xmm: bool, avoid=()) -> int:
        """A free register of the class (xmm or general-purpose): a free one, else one that
        caches a local, else one a stack value is spilled from."""
        free = self.free_xmm if xmm else self.free_gpr
        if free and not avoid:
            return free.pop(0)
        for r in free:
            if r not in avoid:
                free.remove(r)
                return r
        reg = self.evict(xmm, avoid)
        if reg is not None:
            return reg
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
            for i, cached in self.cached.items():
                if cached == reg and not is_float(self.local_types[i]):
                    del self.cached[i]
                    return
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
        if kind == LOCAL:
            held = self.pinned.get(val)
            if held is None:
                held = self.cached.get(val)
            if held is not None:
                kind, val = REG, held
        if is_float(ty):
            if kind == REG:
                if val != reg:
                    a.movaps(reg, val)
            elif kind == CONST:
                if val == 0:
                    a.flogic("xor", 32, reg, reg)
                else:
                    a.movs(width(ty), reg, self.float_constant(val, ty))
            else:
                mem = self.local_mems[val] if kind == LOCAL else self.slot_mem(val)
                a.movs(width(ty), reg, mem)
        else:
            size = 32 if ty == "i32" else 64
            if kind == LOCAL:  # in no register (those became REG above): its slot
                a.mov(size, reg, self.local_mems[val])
            elif kind == REG:
                if val != reg:
                    a.mov(size, reg, val)
            elif kind == CONST:
                a.mov_imm(width(ty), reg, val)
            else:
                a.mov(size, reg, self.slot_mem(val))

    def store_entry(self, dst: Mem, entry: tuple):
        """Write an entry's value as a full 8-byte word at `dst`."""
        kind, val, ty = entry
        if kind == LOCAL:
            held = self.local_register(val)
            if held is not None:
                kind, val = REG, held
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

    def register_of(self, entry: tuple) -> int | None:
        """The register that already holds an entry's value (its own, or a local's pin or
        cached copy), else None. Only for reading: it may not belong to the caller, and an
        alloc() may take it (a later operand() or load() then reads the slot)."""
        kind, val, _ = entry
        if kind == REG:
            return val
        if kind == LOCAL:
            return self.local_register(val)
        return None

    def test_entry(self, entry: tuple, size: int):
        """Flags of `entry` compared with zero (ZF set if it is 0), reading it where it is;
        frees its register, if it has one of its own."""
        a = self.asm
        reg = self.register_of(entry)
        if reg is not None:
            a.test(size, reg, reg)
        elif entry[0] == CONST:
            a.mov_imm_noflags(SCRATCH, entry[1])
            a.test(size, SCRATCH, SCRATCH)
        else:
            a.alu_imm("cmp", size, self.operand(entry), 0)
        self.release(entry)

    def operand(self, entry: tuple):
        """A register or memory operand for an entry (constants are materialized in scratch)."""
        kind, val, ty = entry
        if kind == REG:
            return val
        if kind == LOCAL:
            reg = self.local_register(val)
            return self.local_mem(val) if reg is None else reg
        if kind == SLOT:
            return self.slot_mem(val)
        if is_float(ty):
            return self.float_constant(val, ty)
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

    def result_pin(self) -> int | None:
        """The pin of the local that the next instruction sets (local.set or local.tee of a
        pinned local), when the value about to be computed may go straight into it: no value
        left on the stack still reads that local lazily. The caller has popped its operands
        and reads them before it writes the pin."""
        code, pos = self.code, self.pos
        if code[pos] != 0x21 and code[pos] != 0x22:
            return None
        index = code[pos + 1]
        pin = self.pinned.get(index) if index < 0x80 else None
        if pin is None:
            return None
        for kind, val, _ in self.stack:
            if kind == LOCAL and val == index:
                return None
        return pin

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

    def select_on_flags(self, cc: int):
        """A select of two integers whose condition is the flags just set (nonzero when `cc`
        holds): a, replaced by b through cmov. Nothing before the cmov may change the flags."""
        b, a_entry = self.stack[-1], self.stack[-2]
        ty = a_entry[2]
        del self.stack[-2:]
        size = 64 if width(ty) == 64 else 32
        mask = (1 << size) - 1
        asm = self.asm
        dst = a_entry[1] if a_entry[0] == REG else self.alloc(False, avoid=(b[1],) if b[0] == REG else ())
        if a_entry[0] == CONST:
            asm.mov_imm_noflags(dst, a_entry[1] & mask)
        else:
            self.load(a_entry, dst)
        if b[0] == CONST:
            asm.mov_imm_noflags(SCRATCH, b[1] & mask)
            src = SCRATCH
        else:
            src = self.operand(b)
        asm.cmov(negate(cc), size, dst, src)
        self.release(b)
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
        self.keep_written(i, entry)

    def keep_written(self, i: int, entry: tuple):
        """After local i was written from `entry`: a register of its own becomes the local's
        cached copy (unless a loop pins it); a value computed straight into the pin stays."""
        if entry[0] != REG:
            return
        pin = self.pinned.get(i)
        if pin is None:
            self.cached[i] = entry[1]  # the register now belongs to the cache
        elif entry[1] != pin:
            self.release(entry)

    def write_local(self, i: int, entry: tuple):
        """Store to the local's frame slot, or to its register alone while a loop pins it
        (the slot is written back where it is read: control.sync_pins); a cached copy of
        the old value is dropped."""
        if self.checked_ends:
            for key in [key for key in self.checked_ends if key[1] == i]:
                del self.checked_ends[key]
        self.uncache(i)
        pin = self.pinned.get(i)
        if pin is None:
            self.store_entry(self.local_mem(i), entry)
        else:
            self.load(entry, pin)  # nothing to do for a value computed into the pin

    def op_local_tee(self):
        """local.set then local.get: a value's register becomes the local's cached copy, as
        after local.set, so later reads of the local use it (or its pin) rather than the
        slot just written; the stack gets a lazy read of the local, which also lets an
        address read from it skip a bounds check proven for the local."""
        i = self.u32()
        entry = self.stack[-1]
        if entry[0] == LOCAL and entry[1] == i:
            return
        self.stack.pop()
        self.materialize_local(i)
        self.write_local(i, entry)
        self.keep_written(i, entry)
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
