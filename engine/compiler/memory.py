"""Memories, tables and references for the single-pass compiler: bounds-checked loads and
stores, memory.size/grow, table access, the bulk instructions of the 0xFC prefix.

Bulk instructions check their bounds here, before anything is written, and leave the work
to a native stub (bulkstubs.py) or to one string instruction: no Python on their path,
except table.grow when the table's elements must be reallocated."""

from __future__ import annotations

from .. import layout as L
from .bulkstubs import BULK_CLOBBERS
from .common import (B_TABLE_RESERVE, CONST, LOCAL, REG, SCRATCH, CodegenCore, CompileError, is_float,
                     width)
from .x86 import AE, NE, R14, R15, RAX, RCX, RDI, RDX, RSI, RSP, A, B, E, Label, Mem

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

    def address(self, memory: int, offset: int, size: int, avoid=()) -> tuple[Mem, int | None]:
        """Pop an address, bounds-check [addr+offset, +size) against memory `memory`.

        Returns the operand and a temporary register holding the memory's base (memories
        other than 0), which the caller frees after the access. No register the address
        needs is taken from `avoid`.
        """
        mt = self.mc.memories[memory]
        entry = self.stack[-1]
        a = self.asm
        size_field = self.mc.memory_sizes[memory]
        base = R14
        temp = None
        if memory != 0:
            temp = base = self.alloc(False, avoid + ((entry[1],) if entry[0] == REG else ()))
            a.mov(64, base, Mem(R15, self.mc.vm.memory_base(memory)))
        constant = entry[0] == CONST
        if constant:
            self.stack.pop()
            addr = entry[1] & MASK64
            end = addr + offset + size
            if end <= mt.limits.minimum * 65536 and addr + offset < (1 << 31):
                return Mem(base, addr + offset), temp
        # The trap reports the access's end (address + offset + size), from SCRATCH at every
        # jump to the label, or after the one-instruction check below from the address.
        trap_word = L.trap_word(L.TRAP_MEMORY_OOB, memory, size)
        if constant:
            out_of_bounds = self.trap_label(trap_word, detail=SCRATCH)
            a.mov_imm(64, SCRATCH, end & MASK64)
            if end > MASK64:
                a.jmp(out_of_bounds)
                return Mem(base, 0), temp
            a.alu("cmp", 64, SCRATCH, size_field)
            a.jcc(A, out_of_bounds)
            return Mem(base, -size, SCRATCH), temp
        addr = self.register_of(entry)  # a local's register serves as the index as it is
        if addr is None or addr == base:
            addr = self.pop_reg(avoid=(base,) + avoid)
            self.free(addr, False)
        else:
            self.release(self.pop())
        key = (memory, entry[1]) if entry[0] == LOCAL else None
        if key is not None and offset < (1 << 31):
            if offset + size <= self.checked_ends.get(key, 0):
                return Mem(base, offset, addr), temp  # proven by an earlier access
            self.checked_ends[key] = offset + size  # proven by the check below, if it passes
        if offset + size == 1:  # a byte at the address itself: in bounds iff addr < size
            a.alu("cmp", 64, addr, size_field)
            a.jcc(AE, self.trap_label(trap_word, detail=(addr, 1)))
            return Mem(base, 0, addr), temp
        out_of_bounds = self.trap_label(trap_word, detail=SCRATCH)
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
        avoid = (mem.index, temp)  # a None in it avoids nothing
        reg = self.result_pin() or self.alloc(is_float(ty), avoid=avoid)  # read, then written
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
        """The value is stored from where it is when a register holds it (a local's pin or
        cached copy): the address then takes no register from it."""
        arg = self.memarg()
        entry = self.stack[-1]
        if entry[0] == CONST:
            bits = entry[1] & ((1 << size) - 1)
            if size < 64 or bits < 1 << 31 or bits >= (1 << 64) - (1 << 31):
                self.stack.pop()
                mem, temp = self.address(arg.memory, arg.offset, size // 8)
                self.asm.store_imm(size, mem, bits)  # 64 bits: the imm32 sign-extends
                if temp is not None:
                    self.free(temp, False)
                return
        value = self.register_of(entry)
        if value is None or entry[0] == REG:
            value = self.pop_reg()
            owned = True
        else:
            self.stack.pop()
            owned = False
        mem, temp = self.address(arg.memory, arg.offset, size // 8,
                                 avoid=() if is_float(ty) else (value,))
        if is_float(ty):
            self.asm.movs(size, mem, value)
        else:
            self.asm.mov(size, mem, value)
        if owned:
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
        self.asm.mov(64, reg, self.mc.memory_sizes[memory])
        self.asm.shift_imm("shr", 64, reg, 16)
        self.push_reg(reg, self.address_type(memory))

    def op_memory_grow(self):
        memory = self.u32()
        entries = self.take_operands((RSI,))
        a = self.asm
        a.mov(64, RDI, Mem(R15, self.mc.vm.memory_record(memory)))
        a.call_indirect(Mem(R15, L.VM_GROW_STUB))
        if not self.mc.memories[memory].limits.is64:
            a.mov(32, RAX, RAX)  # -1 as an i32
        self.push_result_in_rax(entries, self.address_type(memory))

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

    # ---- bulk instructions -----------------------------------------------------------

    def take_operands(self, regs: tuple) -> list:
        """Pop the top len(regs) values into `regs`, in stack order, after moving every other
        stack value out of BULK_CLOBBERS (what the stubs may change). The popped entries'
        registers stay the caller's until release_all."""
        entries = self.pop_args(len(regs))
        for i, (kind, val, ty) in enumerate(self.stack):
            if kind == REG and not is_float(ty) and val in BULK_CLOBBERS:
                self.spill(i)
        a = self.asm
        moves = {target: e[1] for target, e in zip(regs, entries) if e[0] == REG and e[1] != target}
        while moves:  # a parallel move: each source register is read before it is written
            sources = set(moves.values())
            target = next((t for t in moves if t not in sources), None)
            if target is None:  # a cycle: park one source in SCRATCH
                target = next(iter(moves))
                a.mov(64, SCRATCH, moves[target])
                moves[target] = SCRATCH
                continue
            a.mov(64, target, moves.pop(target))
        for target, entry in zip(regs, entries):
            if entry[0] != REG:
                self.load(entry, target)
        return entries

    def release_all(self, entries: list):
        for entry in entries:
            self.release(entry)

    def push_result_in_rax(self, entries: list, ty: str):
        self.release_all(entries)
        self.claim(RAX)
        self.push_reg(RAX, ty)

    def check_range(self, start: int, count: int, limit: Mem, trap: Label, wide: bool):
        """Trap unless start + count <= [limit]; `wide`: the sum may pass 2^64."""
        a = self.asm
        if wide:
            a.mov(64, SCRATCH, start)
            a.alu("add", 64, SCRATCH, count)
            a.jcc(B, trap)
        else:
            a.lea(SCRATCH, Mem(start, 0, count))
        a.alu("cmp", 64, SCRATCH, limit)
        a.jcc(A, trap)

    def check_memory_range(self, memory: int, start: int, count: int, trap: Label):
        self.check_range(start, count, self.mc.memory_sizes[memory], trap,
                         self.mc.memories[memory].limits.is64)

    def add_memory_base(self, memory: int, reg: int):
        if memory == 0:
            self.asm.alu("add", 64, reg, R14)
        else:
            self.asm.alu("add", 64, reg, Mem(R15, self.mc.vm.memory_base(memory)))

    def memory_trap(self) -> Label:
        return self.trap_label(L.trap_word(L.TRAP_MEMORY_OOB))  # no address: access size 0

    def op_memory_copy(self, dst_memory: int, src_memory: int):
        entries = self.take_operands((RDI, RSI, RDX))
        trap = self.memory_trap()
        self.check_memory_range(dst_memory, RDI, RDX, trap)
        self.check_memory_range(src_memory, RSI, RDX, trap)
        self.add_memory_base(dst_memory, RDI)
        self.add_memory_base(src_memory, RSI)
        self.asm.call_indirect(Mem(R15, L.VM_COPY_STUB))
        self.release_all(entries)

    def op_memory_fill(self, memory: int):
        entries = self.take_operands((RDI, RSI, RDX))
        self.check_memory_range(memory, RDI, RDX, self.memory_trap())
        self.add_memory_base(memory, RDI)
        self.asm.call_indirect(Mem(R15, L.VM_FILL_STUB))
        self.release_all(entries)

    def op_memory_init(self, segment: int, memory: int):
        entries = self.take_operands((RDI, RSI, RDX))
        trap = self.memory_trap()
        field = self.mc.vm.data_segment(segment)
        self.check_memory_range(memory, RDI, RDX, trap)
        self.check_range(RSI, RDX, Mem(R15, field + 8), trap, False)
        self.add_memory_base(memory, RDI)
        self.asm.alu("add", 64, RSI, Mem(R15, field))
        self.asm.call_indirect(Mem(R15, L.VM_COPY_STUB))
        self.release_all(entries)

    def table_is64(self, table: int) -> bool:
        return self.mc.tables[table].limits.is64

    def element_address(self, record: int, index: int):
        """index = the address of element `index` of the table whose record is in `record`
        (which then holds the elements' address)."""
        self.asm.mov(64, record, Mem(record, L.TB_ELEMS))
        self.asm.lea(index, Mem(record, 0, index, 8))

    def op_table_copy(self, dst_table: int, src_table: int):
        entries = self.take_operands((RDI, RSI, RDX))
        a = self.asm
        trap = self.trap_label(L.TRAP_TABLE_OOB)
        a.mov(64, RAX, Mem(R15, self.mc.vm.table(dst_table)))
        self.check_range(RDI, RDX, Mem(RAX, L.TB_SIZE), trap, self.table_is64(dst_table))
        a.mov(64, RCX, Mem(R15, self.mc.vm.table(src_table)))
        self.check_range(RSI, RDX, Mem(RCX, L.TB_SIZE), trap, self.table_is64(src_table))
        self.element_address(RAX, RDI)
        self.element_address(RCX, RSI)
        a.shift_imm("shl", 64, RDX, 3)
        a.call_indirect(Mem(R15, L.VM_COPY_STUB))
        self.release_all(entries)

    def op_table_init(self, segment: int, table: int):
        entries = self.take_operands((RDI, RSI, RDX))
        a = self.asm
        trap = self.trap_label(L.TRAP_TABLE_OOB)
        field = self.mc.vm.elem_segment(segment)
        self.check_range(RSI, RDX, Mem(R15, field + 8), trap, False)
        a.mov(64, RAX, Mem(R15, self.mc.vm.table(table)))
        self.check_range(RDI, RDX, Mem(RAX, L.TB_SIZE), trap, self.table_is64(table))
        self.element_address(RAX, RDI)
        a.mov(64, RCX, Mem(R15, field))
        a.lea(RSI, Mem(RCX, 0, RSI, 8))
        a.shift_imm("shl", 64, RDX, 3)
        a.call_indirect(Mem(R15, L.VM_COPY_STUB))
        self.release_all(entries)

    def op_table_fill(self, table: int):
        entries = self.take_operands((RDI, RAX, RCX))
        a = self.asm
        a.mov(64, RDX, Mem(R15, self.mc.vm.table(table)))
        self.check_range(RDI, RCX, Mem(RDX, L.TB_SIZE), self.trap_label(L.TRAP_TABLE_OOB),
                         self.table_is64(table))
        self.element_address(RDX, RDI)
        a.rep_stosq()
        self.release_all(entries)

    def op_table_grow(self, table: int):
        """Grows in place while the elements have room (TB_CAPACITY); otherwise the runtime
        reallocates them (B_TABLE_RESERVE) and the growing starts over."""
        entries = self.take_operands((RAX, RCX))  # the new elements' value, the delta
        self.spill_regs()  # the runtime call clobbers every register
        a = self.asm
        retry, no_room, fail, done = Label(), Label(), Label(), Label()
        a.bind(retry)
        a.mov(64, RDX, Mem(R15, self.mc.vm.table(table)))
        a.mov(64, RSI, Mem(RDX, L.TB_MAX))
        a.alu("sub", 64, RSI, Mem(RDX, L.TB_SIZE))
        a.alu("cmp", 64, RCX, RSI)
        a.jcc(A, fail)
        a.mov(64, RSI, Mem(RDX, L.TB_SIZE))
        a.lea(SCRATCH, Mem(RSI, 0, RCX))
        a.alu("cmp", 64, SCRATCH, Mem(RDX, L.TB_CAPACITY))
        a.jcc(A, no_room)
        a.mov(64, Mem(RDX, L.TB_SIZE), SCRATCH)
        a.mov(64, RDI, Mem(RDX, L.TB_ELEMS))
        a.lea(RDI, Mem(RDI, 0, RSI, 8))
        a.rep_stosq()
        a.mov(64, RAX, RSI)  # the old size
        a.jmp(done)
        a.bind(no_room)  # table_reserve(table, new size), the operands kept above its arguments
        self.max_out = max(self.max_out, L.MIN_CALL_AREA)
        a.store_imm(64, Mem(RSP, 0), table)
        a.mov(64, Mem(RSP, 8), SCRATCH)
        a.mov(64, Mem(RSP, 16), RAX)
        a.mov(64, Mem(RSP, 24), RCX)
        self.sync_pins()
        a.mov(64, SCRATCH, Mem(R15, self.mc.vm.builtin(B_TABLE_RESERVE)))
        self.call_funcref_in(SCRATCH)
        self.restore_after_call()
        a.mov(64, RAX, Mem(RSP, 16))
        a.mov(64, RCX, Mem(RSP, 24))
        a.alu_imm("cmp", 64, Mem(RSP, 0), 0)
        a.jcc(NE, retry)
        a.bind(fail)
        a.mov_imm(64 if self.table_is64(table) else 32, RAX, -1)
        a.bind(done)
        self.push_result_in_rax(entries, self.table_index_type(table))

    # ---- the 0xFC prefix -------------------------------------------------------------

    def op_prefix_fc(self):
        sub = self.u32()
        if sub <= 7:
            ity = "i32" if sub < 4 else "i64"
            fty = "f32" if sub % 4 < 2 else "f64"
            self.trunc(ity, fty, sub % 2 == 0, True)
            return
        vm = self.mc.vm
        if sub == 8:
            segment = self.u32()
            self.op_memory_init(segment, self.u32())
        elif sub == 9:
            self.asm.store_imm(64, Mem(R15, vm.data_segment(self.u32()) + 8), 0)  # data.drop
        elif sub == 10:
            dst = self.u32()
            self.op_memory_copy(dst, self.u32())
        elif sub == 11:
            self.op_memory_fill(self.u32())
        elif sub == 12:
            segment = self.u32()
            self.op_table_init(segment, self.u32())
        elif sub == 13:
            self.asm.store_imm(64, Mem(R15, vm.elem_segment(self.u32()) + 8), 0)  # elem.drop
        elif sub == 14:
            dst = self.u32()
            self.op_table_copy(dst, self.u32())
        elif sub == 15:
            self.op_table_grow(self.u32())
        elif sub == 16:
            table = self.u32()
            reg = self.alloc(False)
            self.asm.mov(64, reg, Mem(R15, vm.table(table)))
            self.asm.mov(64, reg, Mem(reg, L.TB_SIZE))
            self.push_reg(reg, self.table_index_type(table))
        elif sub == 17:
            self.op_table_fill(self.u32())
        else:
            raise CompileError(f"unsupported instruction 0xfc {sub} at offset 0x{self.op_offset:x}")
