"""Calls for the single-pass compiler: direct, indirect and through references, tail calls,
and calls into the runtime's builtins."""

from __future__ import annotations

from .. import layout as L
from ..frontend.types import FuncType
from .common import (CONST, REG, SCRATCH, SLOT, CodegenCore, frame_operand, is_float, simple_type,
                     width)
from .frames import RBP_FRAME, emit_pop_frame
from .x86 import AE, NE, R14, R15, RBP, RSP, E, Mem


# Operands every call's code reads: the vmctx saved in the frame, the vmctx's memory base,
# and the result area at rsp.
_SAVED_VMCTX = Mem(RBP, L.FRAME_VMCTX)
_MEMORY_BASE = Mem(R15, L.VM_MEM_BASE)
_FIRST_RESULT = Mem(RSP, 0)


class CallsCodegen(CodegenCore):
    """FunctionCompiler's call instructions (a mixin)."""

    # ---- calls -----------------------------------------------------------------------

    def prepare_call(self, ft: FuncType):
        """Write arguments to the outgoing area and spill everything the call clobbers."""
        n = len(ft.params)
        self.max_out = max(self.max_out, n, len(ft.results), L.MIN_CALL_AREA)
        h = len(self.stack)
        for j in range(n):
            self.store_entry(frame_operand(RSP, 8 * j), self.stack[h - n + j])
        for e in self.stack[h - n:]:
            self.release(e)
        del self.stack[h - n:]
        self.spill_regs()
        self.sync_pins()

    def restore_after_call(self, pins: bool = True):
        """After any call out (or a switch back in), our vmctx and memory base go back into
        r15 and r14: even a callee of this instance may have left another's, if it
        tail-called an import, a table entry or a function reference (that callee returns
        straight to us). Loop-pinned locals are reloaded too, unless `pins` is False (a
        slow path in the middle of a switch, which reloads them at its end)."""
        a = self.asm
        a.mov(64, R15, _SAVED_VMCTX)
        a.mov(64, R14, _MEMORY_BASE)
        if pins:
            self.reload_pins()

    def finish_call(self, ft: FuncType):
        a = self.asm
        self.restore_after_call()
        results = [simple_type(t) for t in ft.results]
        if len(results) == 1:
            ty = results[0]
            reg = self.alloc(is_float(ty))
            if is_float(ty):
                a.movs(width(ty), reg, _FIRST_RESULT)
            else:
                a.mov(width(ty), reg, _FIRST_RESULT)
            self.push_reg(reg, ty)
        else:
            for j, ty in enumerate(results):
                k = len(self.stack)
                a.mov(64, SCRATCH, Mem(RSP, 8 * j))
                a.mov(64, self.slot_mem(k), SCRATCH)
                self.push(SLOT, k, ty)

    def call_funcref_in(self, reg: int, jump: bool = False):
        """Call (or tail-jump to) the function reference record in `reg`, switching to its
        instance."""
        a = self.asm
        a.mov(64, R15, Mem(reg, L.FR_VMCTX))
        a.mov(64, R14, _MEMORY_BASE)
        if jump:
            a.jmp_indirect(Mem(reg, L.FR_CODE))
        else:
            a.call_indirect(Mem(reg, L.FR_CODE))

    def op_call(self):
        self.direct_call(self.u32(), tail=False)

    def op_return_call(self):
        self.direct_call(self.u32(), tail=True)

    def direct_call(self, index: int, tail: bool):
        ft = self.mc.func_types[index]
        if index < self.mc.imported_funcs:
            self.ref_call(ft, lambda: self.asm.mov(64, SCRATCH, Mem(R15, self.mc.vm.func(index))), tail)
            return
        if tail and self.tail_call_fits(ft):
            self.leave_for_tail_call(ft)
            self.asm.jmp_near(self.mc.func_labels[index])  # the same bytes however the module is split
            self.cfi_rows.append((self.asm.pos, RBP_FRAME))
            self.set_unreachable()
            return
        self.prepare_call(ft)
        self.asm.call_label(self.mc.func_labels[index])
        self.finish_call(ft)
        if tail:
            self.op_return()

    def tail_call_fits(self, ft: FuncType) -> bool:
        """Our incoming argument area has at least this many words (see MIN_CALL_AREA)."""
        return len(ft.params) <= max(L.MIN_CALL_AREA, len(self.ftype.params), len(self.ftype.results))

    def leave_for_tail_call(self, ft: FuncType):
        """Put the callee's arguments in our own incoming area and tear down our frame."""
        n = len(ft.params)
        self.store_results(n)
        for e in self.stack[len(self.stack) - n:]:
            self.release(e)
        del self.stack[len(self.stack) - n:]
        a = self.asm
        emit_pop_frame(a, self.cfi_rows)

    def ref_call(self, ft: FuncType, load_funcref, tail: bool):
        """Call the function reference record that `load_funcref` leaves in SCRATCH."""
        a = self.asm
        if tail and self.tail_call_fits(ft):
            load_funcref()
            target = self.alloc(False)
            a.mov(64, target, SCRATCH)
            self.leave_for_tail_call(ft)
            self.call_funcref_in(target, jump=True)
            self.cfi_rows.append((a.pos, RBP_FRAME))
            self.free(target, False)
            self.set_unreachable()
            return
        self.prepare_call(ft)
        load_funcref()
        self.call_funcref_in(SCRATCH)
        self.finish_call(ft)
        if tail:
            self.op_return()

    def checked_table_entry(self, type_index: int, table: int, index: int):
        """SCRATCH = the function in `table` at `index`, checked against the type."""
        a = self.asm
        a.mov(64, SCRATCH, Mem(R15, self.mc.vm.table(table)))
        a.alu("cmp", 64, index, Mem(SCRATCH, L.TB_SIZE))
        a.jcc(AE, self.trap_label(L.TRAP_UNDEFINED_ELEMENT))
        a.mov(64, SCRATCH, Mem(SCRATCH, L.TB_ELEMS))
        a.mov(64, SCRATCH, Mem(SCRATCH, 0, index, 8))
        a.test(64, SCRATCH, SCRATCH)
        a.jcc(E, self.trap_label(L.TRAP_UNINITIALIZED_ELEMENT, detail=index))
        # The canonical type id is the store's, not the module's: a 32-bit field the code
        # cache relocates (CompiledModule.type_id_fields).
        at = a.alu_imm_patchable("cmp", 64, Mem(SCRATCH, L.FR_TYPE_ID))
        a.patch_i32(at, self.mc.type_ids[type_index])
        self.type_id_fields.append((at, type_index))
        a.jcc(NE, self.trap_label(L.TRAP_SIGNATURE))

    def op_call_indirect(self, tail: bool = False):
        type_index = self.u32()
        table = self.u32()
        index = self.pop_reg()

        def load():
            self.checked_table_entry(type_index, table, index)
            self.free(index, False)

        self.ref_call(self.mc.module.types[type_index].composite, load, tail)

    def op_return_call_indirect(self):
        self.op_call_indirect(tail=True)

    def op_call_ref(self, tail: bool = False):
        type_index = self.u32()
        ref = self.pop_reg()

        def load():
            self.asm.test(64, ref, ref)
            self.asm.jcc(E, self.trap_label(L.TRAP_NULL_FUNC))
            self.asm.mov(64, SCRATCH, ref)
            self.free(ref, False)

        self.ref_call(self.mc.module.types[type_index].composite, load, tail)

    def op_return_call_ref(self):
        self.op_call_ref(tail=True)

    def call_builtin(self, builtin: int, args: list[tuple], result: str | None):
        """Call a runtime routine with the given entries (already popped) as arguments."""
        a = self.asm
        self.max_out = max(self.max_out, len(args), L.MIN_CALL_AREA)
        for j, entry in enumerate(args):
            kind, val, ty = entry
            if ty == "i32" and kind != REG:  # the routine reads whole words: zero-extend
                if kind == CONST:
                    a.mov_imm(32, SCRATCH, val)
                else:
                    self.load(entry, SCRATCH)
                a.mov(64, Mem(RSP, 8 * j), SCRATCH)
            else:
                self.store_entry(Mem(RSP, 8 * j), entry)
                self.release(entry)
        self.spill_regs()
        self.sync_pins()
        a.mov(64, SCRATCH, Mem(R15, self.mc.vm.builtin(builtin)))
        self.call_funcref_in(SCRATCH)
        self.restore_after_call()
        if result is not None:
            reg = self.alloc(False)
            a.mov(width(result), reg, _FIRST_RESULT)
            self.push_reg(reg, result)

    def pop_args(self, n: int) -> list[tuple]:
        args = self.stack[len(self.stack) - n:]
        del self.stack[len(self.stack) - n:]
        return args
