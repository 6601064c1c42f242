"""Stack switching and exceptions for the single-pass compiler.

Switching instructions move every value through canonical slots and the runtime's
transfer area, save the running stack's context in its continuation record, and jump to
the target's; exceptions are zero-cost, found by a runtime walk of the frame chain.
"""

from __future__ import annotations

from .. import layout as L
from ..frontend.types import FuncType
from .common import (B_CONT_ATTACH, B_CONT_NEW, B_THROW, B_THROW_INTO, B_THROW_REF, CONST, SCRATCH, SLOT,
                     CodegenCore, CompileError, TryRegion, simple_type)
from .control import SWITCHING_TEMPS
from .tracing import emit_trace_event, emit_trace_word
from .x86 import (AE, NE, R8, R9, R10, R11, R15, RAX, RBP, RBX, RCX, RDI, RDX, RSI, RSP,
                  A, E, Label, Mem)


def emit_copy_words(a, src: int, dst: int, field: int, count: int, temp: int):
    """Copy the `count` (a register, counted down to 0) words at `field` of record `src` to
    record `dst`, last first. A plain loop: `rep movsq` costs more than a whole switch for
    the few words involved."""
    copy, copied = Label(), Label()
    a.bind(copy)
    a.test(64, count, count)
    a.jcc(E, copied)
    a.alu_imm("sub", 64, count, 1)
    a.mov(64, temp, Mem(src, field, count, 8))
    a.mov(64, Mem(dst, field, count, 8), temp)
    a.jmp(copy)
    a.bind(copied)


class SwitchingCodegen(CodegenCore):
    """FunctionCompiler's stack-switching and exception instructions (a mixin)."""

    # ---- stack switching -------------------------------------------------------------
    #
    # All values go through canonical slots and the runtime's transfer area; every register
    # is free around a switch. A switch saves rsp/rbp/landing pc in the running stack's
    # record and jumps to the target record's saved context (stubs.emit_switch_to).

    def cont_func_type(self, ct: int) -> FuncType:
        return self.mc.module.types[self.mc.module.types[ct].composite.func_type].composite

    def values_to_transfer(self, count: int, first_word: int = 0):
        """Move the top `count` values (already in slots) to the transfer area; rax: runtime."""
        h = len(self.stack)
        for j in range(count):
            self.asm.mov(64, SCRATCH, self.slot_mem(h - count + j))
            self.asm.mov(64, Mem(RAX, L.RT_TRANSFER + 8 * (first_word + j)), SCRATCH)
        del self.stack[h - count:]

    def values_from_transfer(self, types):
        a = self.asm
        for j, ty in enumerate(types):
            k = len(self.stack)
            a.mov(64, SCRATCH, Mem(RAX, L.RT_TRANSFER + 8 * j))
            a.mov(64, self.slot_mem(k), SCRATCH)
            self.push(SLOT, k, ty)

    def take_continuation(self, slot: int):
        """Load the reference in `slot` into rcx as a record address, trapping if it is null
        or already consumed, and consume it."""
        a = self.asm
        a.mov(64, RCX, self.slot_mem(slot))
        a.test(64, RCX, RCX)
        a.jcc(E, self.trap_label(L.TRAP_NULL_CONT))
        a.mov(64, RDX, RCX)
        a.shift_imm("shr", 64, RDX, L.REVISION_SHIFT)
        a.shift_imm("shl", 64, RCX, 64 - L.REVISION_SHIFT)
        a.shift_imm("shr", 64, RCX, 64 - L.REVISION_SHIFT)
        a.movzx(32, 16, R8, Mem(RCX, L.CR_REVISION))
        a.alu("cmp", 32, R8, RDX)
        a.jcc(NE, self.trap_label(L.TRAP_CONSUMED))
        a.alu_imm("add", 64, Mem(RCX, L.CR_REVISION), 1)

    def merge_bound_values(self, record: int, count: int):
        """If cont.bind left values in `record`, put them before the `count` transfer values."""
        a = self.asm
        done = Label()
        a.alu_imm("cmp", 64, Mem(record, L.CR_NBOUND), 0)
        a.jcc(E, done)
        if record != RCX:
            a.mov(64, RCX, record)
        a.mov_imm(32, RDX, count)
        a.call_indirect(Mem(RAX, L.RT_MERGE_STUB))
        a.bind(done)

    def reference_to(self, record: int, dst: int):
        """dst = a fresh reference to `record` (its current revision in the high bits)."""
        a = self.asm
        a.mov(64, dst, Mem(record, L.CR_REVISION))
        a.shift_imm("shl", 64, dst, L.REVISION_SHIFT)
        a.alu("or", 64, dst, record)

    def save_context(self, record: int, landing: Label):
        """Record where this stack continues: rsp, rbp and the landing pc."""
        a = self.asm
        a.mov(64, Mem(record, L.CR_SP), RSP)
        a.mov(64, Mem(record, L.CR_FP), RBP)
        self.asm.lea_rip(R11, landing)
        a.mov(64, Mem(record, L.CR_PC), R11)

    def switch_stacks(self, own: int, target: int, landing: Label, kind: int, trace_kind: int,
                      trace_detail: int | None = None):
        """Leave this stack, saving its context in record `own`, and continue on record
        `target`'s stack; control comes back at `landing`, which the caller binds next.

        Native mode saves the context here and jumps to the switch stub, which finishes the
        switch under a frame of its own (a frame-pointer walk sampled mid-switch then sees
        the stub on top of this function, never this function on top of the target's
        frames); `kind` (L.SWITCH_*) picks the stub. Libcall mode calls the runtime's
        switch routine, which returns on the other stack, as fiber libraries do. When
        tracing, r8 tells the stub which event this is (`trace_kind`, with register
        `trace_detail`)."""
        a = self.asm
        a.mov(64, RSI, target)
        if own != RDI:
            a.mov(64, RDI, own)
        if self.mc.tracing:
            emit_trace_word(a, R8, trace_kind, trace_detail)
        if self.mc.libcall:
            a.call_indirect(Mem(RAX, L.RT_LIBCALL_SWITCH))
        else:
            self.save_context(RDI, landing)
            a.jmp_indirect(Mem(RAX, L.RT_SWITCH_STUBS + 8 * kind))

    def everything_to_slots(self):
        """Before a switch or a throw, after which the frame is read from its slots (by
        the runtime, a handler, or code landing here later): every value on the stack,
        constants too, and every pinned local the loop wrote."""
        self.spill_all(keep_consts=False)
        self.sync_pins()

    def land(self, pins: bool = True):
        """Code after a switch (or an exception) arrives here: restore the registers this
        function relies on (vmctx, memory base, loop-pinned locals unless `pins` is False)
        and rax: runtime."""
        a = self.asm
        self.restore_after_call(pins)
        a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))

    def op_cont_new(self):
        """Take a fresh record (no stack: that comes at the first resume) from the runtime's
        free list. Only when that list is empty, or no stack is free, ask the runtime for
        more (a builtin call, which may map a new slab of either): the first resume then
        rarely calls out, which would put host code in the middle of a switch that a
        debugger steps through."""
        ct = self.u32()
        ft = self.cont_func_type(ct)
        a = self.asm
        self.max_out = max(self.max_out, L.MIN_CALL_AREA)
        self.everything_to_slots()
        a.mov(64, RDX, self.slot_mem(len(self.stack) - 1))
        self.stack.pop()
        a.test(64, RDX, RDX)
        a.jcc(E, self.trap_label(L.TRAP_NULL_FUNC))
        a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
        slow, done = Label(), Label()
        a.alu_imm("cmp", 64, Mem(RAX, L.RT_FREE_LIST), 0)
        a.jcc(E, slow)
        a.mov(64, RCX, Mem(RAX, L.RT_FRESH_FREE))
        a.test(64, RCX, RCX)
        a.jcc(E, slow)
        a.mov(64, R8, Mem(RCX, L.CR_NEXT_FREE))
        a.mov(64, Mem(RAX, L.RT_FRESH_FREE), R8)
        a.mov(64, Mem(RCX, L.CR_FUNC), RDX)
        a.store_imm(64, Mem(RCX, L.CR_NARGS), len(ft.params))
        a.store_imm(64, Mem(RCX, L.CR_NRESULTS), len(ft.results))
        a.store_imm(64, Mem(RCX, L.CR_NBOUND), 0)
        a.mov(64, R8, Mem(RAX, L.RT_NEXT_CONT_ID))
        a.mov(64, Mem(RCX, L.CR_ID), R8)
        a.alu_imm("add", 64, R8, 1)
        a.mov(64, Mem(RAX, L.RT_NEXT_CONT_ID), R8)
        a.store_imm(64, Mem(RCX, L.CR_STATE), L.CONT_FRESH)  # last: handed out, with its id
        self.reference_to(RCX, R9)
        a.jmp(done)
        a.bind(slow)
        a.store_imm(64, Mem(RSP, 0), ct)
        a.mov(64, Mem(RSP, 8), RDX)
        a.mov(64, SCRATCH, Mem(R15, self.mc.vm.builtin(B_CONT_NEW)))
        self.call_funcref_in(SCRATCH)
        self.restore_after_call(pins=False)
        a.mov(64, R9, Mem(RSP, 0))
        a.bind(done)
        self.events.append((a.pos, L.EVENT_CONT_NEW))
        if self.mc.tracing:
            self.trace_cont_new(R9)
        k = len(self.stack)  # to its slot: r9 may be a pin, the pins are reloaded next
        a.mov(64, self.slot_mem(k), R9)
        self.push(SLOT, k, "ref")
        self.reload_pins()

    def attach_stack(self):
        """rcx: the record of a continuation about to run, its reference consumed (rax:
        runtime). A fresh one has no stack yet: a stack's record from the free list takes
        over its fields and becomes the continuation (rcx), with its saved context at the
        start stub on its base frame, and the fresh record is freed. Only when the free
        list is empty does the runtime do this (a builtin call, which may map a new slab)."""
        a = self.asm
        self.max_out = max(self.max_out, L.MIN_CALL_AREA)
        attached, slow = Label(), Label()
        a.alu_imm("cmp", 64, Mem(RCX, L.CR_STATE), L.CONT_FRESH)
        a.jcc(NE, attached)
        a.mov(64, RDX, Mem(RAX, L.RT_FREE_LIST))
        a.test(64, RDX, RDX)
        a.jcc(E, slow)
        a.mov(64, R8, Mem(RDX, L.CR_NEXT_FREE))
        a.mov(64, Mem(RAX, L.RT_FREE_LIST), R8)
        # The fresh record is freed first, so that a reader never finds two records with
        # one id; nothing takes it before this resume has copied its fields.
        a.store_imm(64, Mem(RCX, L.CR_STATE), L.CONT_RETURNED)
        retired = Label()
        a.alu_imm("cmp", 64, Mem(RCX, L.CR_REVISION), L.RETIRE_REVISION)
        a.jcc(AE, retired)
        a.mov(64, R8, Mem(RAX, L.RT_FRESH_FREE))
        a.mov(64, Mem(RCX, L.CR_NEXT_FREE), R8)
        a.mov(64, Mem(RAX, L.RT_FRESH_FREE), RCX)
        a.bind(retired)
        for offset in (L.CR_FUNC, L.CR_NARGS, L.CR_NRESULTS, L.CR_ID, L.CR_NBOUND):
            a.mov(64, R8, Mem(RCX, offset))
            a.mov(64, Mem(RDX, offset), R8)
        emit_copy_words(a, RCX, RDX, L.CR_BOUND, R8, R9)  # the values cont.bind bound
        a.lea(R8, Mem(RDX, L.BASE_FRAME_RBP))
        a.mov(64, Mem(RDX, L.CR_SP), R8)
        a.mov(64, Mem(RDX, L.CR_FP), R8)
        a.mov(64, R8, Mem(RAX, L.RT_START_STUB))
        a.mov(64, Mem(RDX, L.CR_PC), R8)
        a.mov(64, Mem(RDX, L.CR_TOP), RDX)
        a.store_imm(64, Mem(RDX, L.CR_STATE), L.CONT_FRESH)
        a.mov(64, RCX, RDX)
        a.jmp(attached)
        a.bind(slow)
        a.mov(64, Mem(RSP, 0), RCX)
        a.mov(64, SCRATCH, Mem(R15, self.mc.vm.builtin(B_CONT_ATTACH)))
        self.call_funcref_in(SCRATCH)
        self.land(pins=False)
        a.mov(64, RCX, Mem(RSP, 0))
        a.bind(attached)

    def trace_cont_new(self, reference: int):
        """The cont.new event: its creator, and the new continuation with its function."""
        a = self.asm
        a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
        a.mov(64, RSI, reference)
        a.shift_imm("shl", 64, RSI, 64 - L.REVISION_SHIFT)
        a.shift_imm("shr", 64, RSI, 64 - L.REVISION_SHIFT)
        a.mov(64, R8, Mem(RSI, L.CR_FUNC))
        emit_trace_word(a, R8, L.TRACE_NEW, R8)
        a.mov(64, RDI, Mem(RAX, L.RT_CURRENT))
        emit_trace_event(a, R8, RDI, RSI)

    def op_cont_bind(self):
        ct1 = self.u32()
        ct2 = self.u32()
        count = len(self.cont_func_type(ct1).params) - len(self.cont_func_type(ct2).params)
        self.everything_to_slots()
        a = self.asm
        h = len(self.stack)
        self.take_continuation(h - 1)
        a.mov(64, R8, Mem(RCX, L.CR_NBOUND))
        if count > L.MAX_BOUND:
            a.jmp(self.trap_label(L.TRAP_TOO_MANY_BOUND))
        else:
            a.alu_imm("cmp", 64, R8, L.MAX_BOUND - count)
            a.jcc(A, self.trap_label(L.TRAP_TOO_MANY_BOUND))
        for j in range(count):
            a.mov(64, SCRATCH, self.slot_mem(h - 1 - count + j))
            a.mov(64, Mem(RCX, L.CR_BOUND, R8, 8), SCRATCH)
            a.alu_imm("add", 64, R8, 1)
        a.mov(64, Mem(RCX, L.CR_NBOUND), R8)
        del self.stack[h - 1 - count:]
        reg = self.alloc(False, avoid=(RCX,))
        self.reference_to(RCX, reg)
        self.reload_pins(SWITCHING_TEMPS)
        self.push_reg(reg, "ref")

    def op_resume(self):
        ct = self.u32()
        self.emit_resume(self.cont_func_type(ct), self.handlers())

    def emit_resume(self, ft: FuncType, clauses, throw_tag: int | None = None):
        """resume, or with `throw_tag` resume_throw (a tag index) / resume_throw_ref (-1):
        the continuation is linked in the same way, then an exception is thrown at its
        suspension point instead of switching to it."""
        if len(clauses) > L.MAX_HANDLERS:
            raise CompileError(f"more than {L.MAX_HANDLERS} handlers on one resume")
        a = self.asm
        self.everything_to_slots()
        h = len(self.stack)
        a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
        self.take_continuation(h - 1)
        self.events.append((a.pos, L.EVENT_RESUME))
        self.attach_stack()
        del self.stack[h - 1]
        if throw_tag is None:
            n = len(ft.params)
            self.values_to_transfer(n)
            self.merge_bound_values(RCX, n)
        elif throw_tag >= 0:
            self.values_to_transfer(len(self.tag_types_of(throw_tag).params))
        else:
            self.values_to_transfer(1)  # the exnref
        for i, (tag, depth) in enumerate(clauses):
            a.mov(64, R8, Mem(R15, self.mc.vm.tag(tag)))
            if depth is None:
                a.alu_imm("or", 64, R8, 1)
            a.mov(64, Mem(RCX, L.CR_HANDLERS + 8 * i), R8)
        a.store_imm(64, Mem(RCX, L.CR_HANDLER_COUNT), len(clauses))
        landing = Label()
        a.mov(64, RDX, Mem(RAX, L.RT_CURRENT))
        a.mov(64, Mem(RCX, L.CR_PARENT), RDX)
        self.asm.lea_rip(R9, landing)
        a.mov(64, Mem(RCX, L.BASE_FRAME_RBP), RBP)  # the base frame now returns into this resume
        a.mov(64, Mem(RCX, L.BASE_FRAME_RETURN), R9)
        if throw_tag is None:
            a.mov(64, R10, Mem(RCX, L.CR_TOP))
            self.switch_stacks(RDX, R10, landing, L.SWITCH_RESUME, L.TRACE_RESUME)
        else:
            if self.mc.tracing:
                self.trace_resume_throw(throw_tag)
            self.save_context(RDX, landing)
            self.max_out = max(self.max_out, 2)
            a.store_imm(64, Mem(RSP, 0), throw_tag)
            a.mov(64, Mem(RSP, 8), RCX)
            a.mov(64, SCRATCH, Mem(R15, self.mc.vm.builtin(B_THROW_INTO)))
            self.call_funcref_in(SCRATCH)
            a.ud2()
        a.bind(landing)
        self.land()
        returned = Label()
        a.mov(64, RCX, Mem(RAX, L.RT_TRANSFER_KIND))
        a.test(64, RCX, RCX)
        a.jcc(E, returned)
        for i, (tag, depth) in enumerate(clauses):
            if depth is None:
                continue
            other = Label()
            a.alu_imm("cmp", 64, RCX, i + 1)
            a.jcc(NE, other)
            self.branch_with_transfer(depth, len(self.tag_types_of(tag).params) + 1)
            a.bind(other)
        a.ud2()
        a.bind(returned)
        self.values_from_transfer([simple_type(t) for t in ft.results])

    def trace_resume_throw(self, throw_tag: int):
        """The resume_throw event, from the running stack (rdx) to the continuation (rcx),
        with the tag (none for resume_throw_ref); keeps rax, rcx and rdx."""
        a = self.asm
        if throw_tag >= 0:
            a.mov(64, R8, Mem(R15, self.mc.vm.tag(throw_tag)))
            emit_trace_word(a, R8, L.TRACE_RESUME_THROW, R8)
        else:
            emit_trace_word(a, R8, L.TRACE_RESUME_THROW)
        a.mov(64, RDI, RDX)
        a.mov(64, RSI, RCX)
        emit_trace_event(a, R8, RDI, RSI)
        a.mov(64, RDX, RDI)
        a.mov(64, RCX, RSI)

    def tag_types_of(self, tag: int) -> FuncType:
        return self.mc.tag_types[tag]

    def branch_with_transfer(self, depth: int, count: int):
        """Branch to a label carrying `count` values from the transfer area (rax: runtime)."""
        a = self.asm
        frame = self.frames[-1 - depth]
        for j in range(count):
            dst = Mem(RBP, 16 + 8 * j) if frame.kind == "func" else self.slot_mem(frame.base + j)
            a.mov(64, SCRATCH, Mem(RAX, L.RT_TRANSFER + 8 * j))
            a.mov(64, dst, SCRATCH)
        if frame.kind == "func":
            self.epilogue()
        else:
            self.jump_with_pins(frame)

    def op_suspend(self):
        tag = self.u32()
        ft = self.tag_types_of(tag)
        a = self.asm
        n = len(ft.params)
        self.everything_to_slots()
        a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
        self.values_to_transfer(n)
        a.mov(64, RDX, Mem(R15, self.mc.vm.tag(tag)))
        a.call_indirect(Mem(RAX, L.RT_SEARCH_STUB))  # rcx: handling record, r8: clause
        landing = Label()
        self.suspend_segment(n)
        a.alu_imm("add", 64, R8, 1)
        a.mov(64, Mem(RAX, L.RT_TRANSFER_KIND), R8)
        a.mov(64, R10, Mem(RCX, L.CR_PARENT))
        self.switch_stacks(RDI, R10, landing, L.SWITCH_SUSPEND, L.TRACE_SUSPEND, RDX)
        a.bind(landing)
        self.land()
        self.values_from_transfer([simple_type(t) for t in ft.results])

    def suspend_segment(self, ref_word: int):
        """Suspend the stacks from the running one (left in rdi) up to record rcx (whose
        resume handles the tag in rdx); the new reference goes to transfer word `ref_word`."""
        a = self.asm
        a.mov(64, RDI, Mem(RAX, L.RT_CURRENT))
        a.mov(64, Mem(RCX, L.CR_TOP), RDI)
        a.store_imm(64, Mem(RCX, L.CR_STATE), L.CONT_SUSPENDED)
        a.mov(64, Mem(RCX, L.CR_TAG), RDX)
        self.reference_to(RCX, R9)
        a.mov(64, Mem(RAX, L.RT_TRANSFER + 8 * ref_word), R9)

    def op_switch(self):
        ct = self.u32()
        tag = self.u32()
        ft = self.cont_func_type(ct)
        own_ct = ft.params[-1].heap
        results = [simple_type(t) for t in self.cont_func_type(own_ct).params]
        a = self.asm
        n = len(ft.params)  # including the reference to the switching continuation
        self.everything_to_slots()
        h = len(self.stack)
        a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
        self.take_continuation(h - 1)
        self.attach_stack()
        del self.stack[h - 1]
        self.values_to_transfer(n - 1)
        a.mov(64, RBX, RCX)  # the target
        a.mov(64, RDX, Mem(R15, self.mc.vm.tag(tag)))
        a.alu_imm("or", 64, RDX, 1)
        a.call_indirect(Mem(RAX, L.RT_SEARCH_STUB))
        landing = Label()
        self.suspend_segment(n - 1)
        # The target takes the suspended segment's place under the same resume.
        a.mov(64, R9, Mem(RCX, L.CR_PARENT))
        a.mov(64, Mem(RBX, L.CR_PARENT), R9)
        for off in (L.BASE_FRAME_RBP, L.BASE_FRAME_RETURN):
            a.mov(64, R9, Mem(RCX, off))
            a.mov(64, Mem(RBX, off), R9)
        a.mov(64, R9, Mem(RCX, L.CR_HANDLER_COUNT))
        a.mov(64, Mem(RBX, L.CR_HANDLER_COUNT), R9)
        emit_copy_words(a, RCX, RBX, L.CR_HANDLERS, R9, R10)
        self.merge_bound_values(RBX, n)
        a.mov(64, RDI, Mem(RAX, L.RT_CURRENT))
        a.mov(64, R10, Mem(RBX, L.CR_TOP))
        if self.mc.tracing:  # the merge took rdx
            a.mov(64, RDX, Mem(R15, self.mc.vm.tag(tag)))
        self.switch_stacks(RDI, R10, landing, L.SWITCH_SWITCH, L.TRACE_SWITCH, RDX)
        a.bind(landing)
        self.land()
        self.values_from_transfer(results)

    # ---- exceptions ------------------------------------------------------------------
    #
    # Zero-cost: try_table only records its code range and clauses. A throw calls into the
    # runtime, which walks the rbp chain (across continuation base frames too), finds the
    # innermost matching clause and continues at the try_table's landing with the payload
    # in the transfer area and the clause number in RT_TRANSFER_KIND.

    def op_try_table(self):
        params, results = self.block_signature()
        clauses = self.catches()
        frame = self.enter_block("try", params, results)
        frame.try_region = TryRegion(self.asm.pos, 0, 0, clauses)  # ends at its landing

    def emit_try_landing(self, frame):
        a = self.asm
        region = frame.try_region
        if self.reachable:
            a.jmp(frame.label)
        landing = a.pos
        self.note_pins({})  # entered from the runtime, which left only the slots right
        self.land()
        a.mov(64, RCX, Mem(RAX, L.RT_TRANSFER_KIND))
        for i, (kind, tag, depth) in enumerate(region.clauses):
            other = Label()
            a.alu_imm("cmp", 64, RCX, i + 1)
            a.jcc(NE, other)
            count = (len(self.tag_types_of(tag).params) if tag is not None else 0) + (kind in (1, 3))
            self.branch_with_transfer(depth, count)
            a.bind(other)
        a.ud2()
        self.tries.append(region._replace(end=landing, landing=landing,
                                          clauses=[(kind, tag) for kind, tag, _ in region.clauses]))

    def op_throw(self):
        tag = self.u32()
        self.everything_to_slots()
        self.asm.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
        self.values_to_transfer(len(self.tag_types_of(tag).params))
        self.call_builtin(B_THROW, [(CONST, tag, "i32")], None)
        self.asm.ud2()
        self.set_unreachable()

    def op_throw_ref(self):
        self.call_builtin(B_THROW_REF, self.pop_args(1), None)
        self.asm.ud2()
        self.set_unreachable()

    def op_resume_throw(self):
        ct = self.u32()
        tag = self.u32()
        self.emit_resume(self.cont_func_type(ct), self.handlers(), throw_tag=tag)

    def op_resume_throw_ref(self):
        ct = self.u32()
        self.emit_resume(self.cont_func_type(ct), self.handlers(), throw_tag=-1)

