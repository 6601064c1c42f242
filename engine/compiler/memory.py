"""Memories, tables and references for the single-pass compiler: bounds-checked loads and
stores, memory.size/grow, table access, the bulk instructions of the 0xFC prefix."""

from __future__ import annotations

from .. import layout as L
from .common import (B_DATA_DROP, B_ELEM_DROP, B_MEMORY_COPY, B_MEMORY_FILL, B_MEMORY_GROW,
                     B_MEMORY_INIT, B_TABLE_COPY, B_TABLE_FILL, B_TABLE_GROW, B_TABLE_INIT, CONST,
                     REG, SCRATCH, CodegenCore, CompileError, is_float, width)
from .x86 import AE, NE, R14, R15, A, B, E, Mem

MASK64 = (1 << 64) - 1


class MemoryCodegen(CodegenCore):
    """FunctionCompiler's memory, table and reference instructions (a mixin)."""

    # ---- tables ----------------------------------------------------------------------

    def table_element_address(self, table: int, index: int):
        """Bounds-check `index` and leave the element's address in SCRATCH."""
        a = self.asm
        a.mov(64, SCRATCH, Mem(R15, self.mc.vm.table(table)))
        a.alu("cmp", 64, index, Mem(SCRATCH, L.TB_SIZE))
        a.jcc(AE, self.trap_label(L.TRAP_TABLE_OOB))
        a.mov(64, SCRATCH, Mem(SCRATCH, L.TB_ELEMS))
        a.lea(SCRATCH, Mem(SCRATCH, 0, index, 8))

    def op_table_get(self):
        table = self.u32()
        index = self.pop_reg()
        self.table_element_address(table, index)
        self.asm.mov(64, index, Mem(SCRATCH, 0))
        self.push_reg(index, "ref")

    def op_table_set(self):
        table = self.u32()
        value = self.pop_reg()
        index = self.pop_reg()
        self.table_element_address(table, index)
        self.asm.mov(64, Mem(SCRATCH, 0), value)
        self.free(value, False)
        self.free(index, False)

    # ---- memory ----------------------------------------------------------------------

    def address(self, memory: int, offset: int, size: int) -> tuple[Mem, int | None]:
        """Pop an address, bounds-check [addr+offset, +size) against memory `memory`.

        Returns the operand and a temporary register holding the memory's base (memories
        other than 0), which the caller frees after the access.
        """
        mt = self.mc.memories[memory]
        entry = self.stack[-1]
        a = self.asm
        size_field = Mem(R15, self.mc.vm.memory_size(memory))
        base = R14
        temp = None
        if memory != 0:
            avoid = (entry[1],) if entry[0] == REG else ()
            temp = base = self.alloc(False, avoid)
            a.mov(64, base, Mem(R15, self.mc.vm.memory_base(memory)))
        constant = entry[0] == CONST
        if constant:
            self.stack.pop()
            addr = entry[1] & MASK64
            end = addr + offset + size
            if end <= mt.limits.minimum * 65536 and addr + offset < (1 << 31):
                return Mem(base, addr + offset), temp
        # SCRATCH holds the access's end (address + offset + size) at every jump to it.
        out_of_bounds = self.trap_label(L.trap_word(L.TRAP_MEMORY_OOB, memory, size), detail=SCRATCH)
        if constant:
            a.mov_imm(64, SCRATCH, end & MASK64)
            if end > MASK64:
                a.jmp(out_of_bounds)
                return Mem(base, 0), temp
            a.alu("cmp", 64, SCRATCH, size_field)
            a.jcc(A, out_of_bounds)
            return Mem(base, -size, SCRATCH), temp
        addr = self.pop_reg(avoid=(base,))
        self.free(addr, False)
        if not mt.limits.is64 and offset + size < (1 << 31):
            a.lea(SCRATCH, Mem(addr, offset + size))
        else:
            if offset + size < (1 << 31):
                a.mov(64, SCRATCH, addr)
                a.alu_imm("add", 64, SCRATCH, offset + size)
            else:
                a.mov_imm(64, SCRATCH, (offset + size) & MASK64)
                a.alu("add", 64, SCRATCH, addr)
            if offset + size > MASK64:  # past the end of any memory, whatever the address
                a.jmp(out_of_bounds)
                return Mem(base, 0), temp
            if mt.limits.is64:
                a.jcc(B, out_of_bounds)  # carry: wrapped past 2^64
        a.alu("cmp", 64, SCRATCH, size_field)
        a.jcc(A, out_of_bounds)
        if offset < (1 << 31):
            return Mem(base, offset, addr), temp
        return Mem(base, -size, SCRATCH), temp

    def load_op(self, ty: str, size: int, signed: bool):
        arg = self.memarg()
        mem, temp = self.address(arg.memory, arg.offset, size // 8)
        a = self.asm
        avoid = tuple(r for r in (mem.index, temp) if r is not None)
        reg = self.alloc(is_float(ty), avoid=avoid)
        if is_float(ty):
            a.movs(size, reg, mem)
        elif size == width(ty) or (size == 32 and not signed):
            a.mov(size, reg, mem)
        elif signed:
            a.movsx(width(ty), size, reg, mem)
        else:
            a.movzx(32, size, reg, mem)
        if temp is not None:
            self.free(temp, False)
        self.push_reg(reg, ty)

    def store_op(self, ty: str, size: int):
        arg = self.memarg()
        value = self.pop_reg()
        mem, temp = self.address(arg.memory, arg.offset, size // 8)
        if is_float(ty):
            self.asm.movs(size, mem, value)
        else:
            self.asm.mov(size, mem, value)
        self.free(value, is_float(ty))
        if temp is not None:
            self.free(temp, False)

    def table_index_type(self, table: int) -> str:
        return "i64" if self.mc.tables[table].limits.is64 else "i32"

    def address_type(self, memory: int) -> str:
        return "i64" if self.mc.memories[memory].limits.is64 else "i32"

    def op_memory_size(self):
        memory = self.u32()
        reg = self.alloc(False)
        self.asm.mov(64, reg, Mem(R15, self.mc.vm.memory_size(memory)))
        self.asm.shift_imm("shr", 64, reg, 16)
        self.push_reg(reg, self.address_type(memory))

    def op_memory_grow(self):
        memory = self.u32()
        self.call_builtin(B_MEMORY_GROW, [(CONST, memory, "i32")] + self.pop_args(1),
                          self.address_type(memory))

    # ---- references ------------------------------------------------------------------

    def op_ref_null(self):
        self.heaptype()
        self.push(CONST, 0, "ref")

    def op_ref_is_null(self):
        reg = self.pop_reg()
        self.asm.test(64, reg, reg)
        self.free(reg, False)
        self.flags_result(E)

    def op_ref_func(self):
        i = self.u32()
        reg = self.alloc(False)
        self.asm.mov(64, reg, Mem(R15, self.mc.vm.func(i)))
        self.push_reg(reg, "ref")

    def op_ref_as_non_null(self):
        reg = self.pop_reg()
        self.asm.test(64, reg, reg)
        self.asm.jcc(E, self.trap_label(L.TRAP_NULL_REF))
        self.push_reg(reg, "ref")

    def op_br_on_null(self):
        depth = self.u32()
        reg = self.pop_reg()
        self.asm.test(64, reg, reg)
        self.branch_if(NE, depth)
        self.push_reg(reg, "ref")

    def op_br_on_non_null(self):
        depth = self.u32()
        reg = self.pop_reg()
        self.push_reg(reg, "ref")
        self.asm.test(64, reg, reg)
        self.branch_if(E, depth)
        self.release(self.pop())

    # ---- the 0xFC prefix -------------------------------------------------------------

    def op_prefix_fc(self):
        sub = self.u32()
        if sub <= 7:
            ity = "i32" if sub < 4 else "i64"
            fty = "f32" if sub % 4 < 2 else "f64"
            self.trunc(ity, fty, sub % 2 == 0, True)
            return
        imm = lambda v: (CONST, v, "i32")
        if sub == 8:  # memory.init
            seg = self.u32()
            memory = self.u32()
            self.call_builtin(B_MEMORY_INIT, [imm(memory), imm(seg)] + self.pop_args(3), None)
        elif sub == 9:
            self.call_builtin(B_DATA_DROP, [imm(self.u32())], None)
        elif sub == 10:
            dst = self.u32()
            src = self.u32()
            self.call_builtin(B_MEMORY_COPY, [imm(dst), imm(src)] + self.pop_args(3), None)
        elif sub == 11:
            self.call_builtin(B_MEMORY_FILL, [imm(self.u32())] + self.pop_args(3), None)
        elif sub == 12:
            seg = self.u32()
            table = self.u32()
            self.call_builtin(B_TABLE_INIT, [imm(table), imm(seg)] + self.pop_args(3), None)
        elif sub == 13:
            self.call_builtin(B_ELEM_DROP, [imm(self.u32())], None)
        elif sub == 14:
            dst = self.u32()
            src = self.u32()
            self.call_builtin(B_TABLE_COPY, [imm(dst), imm(src)] + self.pop_args(3), None)
        elif sub == 15:
            table = self.u32()
            self.call_builtin(B_TABLE_GROW, [imm(table)] + self.pop_args(2), self.table_index_type(table))
        elif sub == 16:
            table = self.u32()
            reg = self.alloc(False)
            self.asm.mov(64, reg, Mem(R15, self.mc.vm.table(table)))
            self.asm.mov(64, reg, Mem(reg, L.TB_SIZE))
            self.push_reg(reg, self.table_index_type(table))
        elif sub == 17:
            table = self.u32()
            self.call_builtin(B_TABLE_FILL, [imm(table)] + self.pop_args(3), None)
        else:
            raise CompileError(f"unsupported instruction 0xfc {sub} at offset 0x{self.op_offset:x}")
