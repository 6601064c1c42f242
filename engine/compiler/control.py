"""Structured control flow for the single-pass compiler: blocks, loops (with the locals
they keep in registers), if/else, branches, br_table and return. At every join all values
are in their canonical slots, so a label needs no register state."""

from __future__ import annotations

from .. import layout as L
from ..frontend.instructions import NO_IMMEDIATES
from .common import (LOCAL, SCRATCH, SLOT, CodegenCore, TryRegion, is_float, rbp_operand,
                     simple_type, width)
from .x86 import AE, R8, R9, R10, R12, R13, RAX, RBX, RCX, E, Label, Mem, negate

# Registers that may hold a loop's most-read locals for the whole loop. A pinned local
# that the loop writes lives only in its register there: its frame slot is written back
# where something reads slots (calls, switches, throws, traps, leaving the loop), and the
# debug info says where it lives (CompiledFunction.pin_ranges). Never claimed by
# fixed-register code (division, shifts, bulk instructions); the switching sequences that
# use rbx, r8, r9 or r10 as temporaries reload the pins they held afterwards
# (SWITCHING_TEMPS).
GPR_PINS = (R12, R13, RBX, R10, R9, R8)
SWITCHING_TEMPS = (RBX, R8, R9, R10)
XMM_PINS = (14, 13, 12, 11, 10, 9, 8, 7, 6)

# How much more a use counts for pinning in a loop one level deeper.
LOOP_WEIGHT = 8

# block, loop, if and try_table: each opens a label that its `end` closes.
BLOCK_OPENERS = (0x02, 0x03, 0x04, 0x1F)


class Frame:
    """A block, loop, if, try_table or the function itself, while it is being compiled.
    (A plain class: the compiler makes one per block, and a dataclass's is slower.)"""

    __slots__ = ("kind", "label", "base", "params", "results", "else_label", "has_else",
                 "try_region", "pinned", "written", "outer_pinned")

    def __init__(self, kind: str, label: Label, base: int, params: tuple, results: tuple,
                 pinned: dict, written: dict):
        self.kind = kind  # "block" | "loop" | "if" | "try" | "func"
        self.label = label  # branch target: loop start, or block/if end
        self.base = base  # stack height below the frame's parameters
        self.params = params
        self.results = results
        self.else_label: Label | None = None
        self.has_else = False
        self.try_region: TryRegion | None = None
        self.pinned = pinned  # the pins where the label is (never changed: shared)
        self.written = written  # those of them the pinning loops write: slots may be stale
        self.outer_pinned: dict | None = None  # a loop that changed the pins: the ones outside

    @property
    def branch_types(self):
        return self.params if self.kind == "loop" else self.results


class ControlCodegen(CodegenCore):
    """FunctionCompiler's control instructions (a mixin)."""

    # ---- immediates ------------------------------------------------------------------

    def block_signature(self) -> tuple[tuple, tuple]:
        """A block type immediate as (parameter types, result types)."""
        bt = self.blocktype()
        if bt is None:
            return (), ()
        if not isinstance(bt, int):
            return (), (simple_type(bt),)
        ft = self.mc.module.types[bt].composite
        return tuple(simple_type(t) for t in ft.params), tuple(simple_type(t) for t in ft.results)

    # ---- unreachable code ------------------------------------------------------------

    def skip_dead(self):
        """Decode past an instruction in unreachable code, tracking only block nesting."""
        op = self.next_opcode()
        code = op.code if op.prefix is None else None
        if code in BLOCK_OPENERS:
            self.dead_depth += 1
        elif code == 0x0B:
            if self.dead_depth:
                self.dead_depth -= 1
            else:
                self.op_end()
            return
        elif code == 0x05 and not self.dead_depth:
            self.op_else()
            return
        self.skip_immediates(op)

    def set_unreachable(self):
        frame = self.frames[-1]
        for e in self.stack[frame.base:]:
            self.release(e)
        del self.stack[frame.base:]
        self.reachable = False
        self.dead_depth = 0

    # ---- control ---------------------------------------------------------------------

    def op_unreachable(self):
        self.sync_pins()
        self.emit_trap_call(L.TRAP_UNREACHABLE)
        self.set_unreachable()

    def op_nop(self):
        pass

    def enter_block(self, kind: str, params: tuple, results: tuple) -> Frame:
        """Every value goes to its stack slot, constants too. The parameters are rewritten
        by branches; the values below them must be where the compiler says on every path
        that reaches the block's end or its landing pad, and a constant left as an
        immediate here would be stored later in the block (a throw, a resume spills
        constants) on some paths only."""
        base = len(self.stack) - len(params)
        self.spill_all(keep_consts=False)
        frame = Frame(kind, Label(), base, params, results, self.pinned, self.frames[-1].written)
        self.frames.append(frame)
        return frame

    def op_block(self):
        params, results = self.block_signature()
        self.enter_block("block", params, results)

    def op_loop(self):
        params, results = self.block_signature()
        frame = self.enter_block("loop", params, results)
        self.forget_at_join()  # the back edge brings other values
        self.pin_loop_locals(frame)
        self.asm.bind(frame.label)

    def pin_loop_locals(self, frame: Frame):
        """Keep the locals this loop uses most in registers while it runs, so values carried
        from one iteration to the next do not go through memory. When every pin register
        is taken, an enclosing loop's pin of a local this loop uses much less (or not at
        all) is lent to this loop's local until the loop is left (branch_pins, unpin)."""
        uses, writes = self.local_uses_in_loop()
        outer = pinned = self.pinned  # copied before the first change: frames share dicts
        for index in sorted(uses, key=uses.get, reverse=True):
            if uses[index] < 2 or index in pinned:
                continue
            xmm = is_float(self.local_types[index])
            free = self.free_xmm if xmm else self.free_gpr
            reg = next((r for r in (XMM_PINS if xmm else GPR_PINS) if r in free), None)
            lender = None
            if reg is None:
                lender = min((i for i in pinned if is_float(self.local_types[i]) == xmm),
                             key=lambda i: uses.get(i, 0), default=None)
                if lender is None or 2 * uses.get(lender, 0) >= uses[index]:
                    continue
            if pinned is outer:
                pinned = dict(outer)
            if lender is None:
                free.remove(reg)
            else:
                reg = pinned.pop(lender)
            pinned[index] = reg
        if pinned is outer:
            return
        written = {index: reg for index, reg in pinned.items()
                   if (index in writes if outer.get(index) != reg else index in frame.written)}
        self.move_pins(outer, self.pins_in_registers(), pinned, written)
        self.pinned = frame.pinned = pinned
        frame.written = written
        frame.outer_pinned = outer

    def load_pin(self, index: int, reg: int):
        ty = self.local_types[index]
        if is_float(ty):
            self.asm.movs(width(ty), reg, self.local_mem(index))
        else:
            self.asm.mov(width(ty), reg, self.local_mem(index))

    def store_pin(self, index: int, reg: int):
        ty = self.local_types[index]
        if is_float(ty):
            self.asm.movs(64, self.local_mem(index), reg)
        else:
            self.asm.mov(64, self.local_mem(index), reg)

    def move_pins(self, pinned: dict, written: dict, target: dict, target_written: dict):
        """From the pins `pinned` (the `written` ones possibly newer than their slots) to
        the pins `target`: write back the written pins the target does not keep where they
        are, then load the target's pins that are not already in place."""
        stores = [(i, reg) for i, reg in written.items() if target.get(i) != reg]
        for index, reg in stores:
            self.store_pin(index, reg)
        if stores:
            self.note_pins({i: reg for i, reg in written.items() if target.get(i) == reg})
        for index, reg in target.items():
            if pinned.get(index) != reg:
                self.load_pin(index, reg)
        self.note_pins(target_written)

    def branch_pins(self, frame: Frame) -> tuple | None:
        """What a branch to `frame`'s label must do with the pins (move_pins' arguments),
        or None if they are already as the label expects."""
        target = frame.pinned
        if target is self.pinned:
            return None
        return self.pinned, self.pins_in_registers(), target, frame.written

    def pins_in_registers(self) -> dict:
        """The pinned locals whose registers hold their values here and whose slots may be
        stale: empty between sync_pins and the reload after a call or switch."""
        return self.pin_states[-1][1]

    def note_pins(self, pins: dict):
        """From here on, the locals in `pins` live in those registers (for the debug info)."""
        states = self.pin_states
        if states[-1][1] == pins:
            return
        pos = self.asm.pos
        if states[-1][0] == pos:
            states.pop()
            if states[-1][1] == pins:
                return
        states.append((pos, pins))

    def sync_pins(self):
        """Before code that clobbers registers or reads frame slots (calls, switches,
        throws, traps): every written pin goes back to its slot."""
        pins = self.pin_states[-1][1]
        if pins:
            for index, reg in pins.items():
                self.store_pin(index, reg)
            self.note_pins({})

    def reload_pins(self, regs: tuple | None = None):
        """After anything that clobbers registers (calls, switches, landings), which
        sync_pins preceded; with `regs`, after code that used only those general-purpose
        registers as temporaries: the pins among them."""
        assert not self.pins_in_registers(), "pins reloaded before being written back"
        for index, reg in self.pinned.items():
            if regs is None or (reg in regs and not is_float(self.local_types[index])):
                self.load_pin(index, reg)
        self.note_pins(self.frames[-1].written)

    def unpin(self, frame: Frame):
        """At a loop's end: the pins outside it again (written back and reloaded if
        reachable), and the registers only this loop pinned free."""
        outer = frame.outer_pinned
        if self.reachable:
            self.move_pins(self.pinned, self.pins_in_registers(), outer, self.frames[-1].written)
        held = {(is_float(self.local_types[index]), reg) for index, reg in outer.items()}
        for index, reg in self.pinned.items():
            xmm = is_float(self.local_types[index])
            if (xmm, reg) not in held:
                self.free(reg, xmm)
        self.pinned = outer

    def local_uses_in_loop(self) -> tuple[dict[int, int], set[int]]:
        """How much the loop whose body starts at self.pos uses each local, and which locals
        it writes: every local.get, set or tee counts LOOP_WEIGHT^k, k the number of loops
        nested in this one around it (so that inner loops get registers first). The first
        loop of a nest is scanned once, with every loop nested in it."""
        found = self.loop_uses.pop(self.pos, None)
        if found is None:
            self.scan_loop_nest()
            found = self.loop_uses.pop(self.pos)
        return found

    def scan_loop_nest(self):
        start = self.pos
        loops = [({}, set())]  # (uses, writes) of every loop enclosing the scan point
        self.loop_uses[start] = loops[0]
        blocks = [True]  # for each open block, whether it is a loop
        body, pos = self.code, start
        while blocks:
            byte = body[pos]
            if byte == 0x20 or byte == 0x21 or byte == 0x22:  # local.get, local.set, local.tee
                index = body[pos + 1]
                if index < 0x80:  # a one-byte index, read inline
                    pos += 2
                else:
                    self.pos = pos + 1
                    index = self.u32()
                    pos = self.pos
                weight = 1
                for uses, writes in reversed(loops):
                    uses[index] = uses.get(index, 0) + weight
                    weight *= LOOP_WEIGHT
                    if byte != 0x20:
                        writes.add(index)
                continue
            if byte == 0x0B:
                if blocks.pop():
                    loops.pop()
                pos += 1
                continue
            if NO_IMMEDIATES[byte]:
                pos += 1
                continue
            after = self.skip_plain(pos)  # most other instructions, without decoding them
            if after is not None:
                pos = after
                continue
            self.pos = pos
            op = self.next_opcode()
            self.skip_immediates(op)
            if op.prefix is None and op.code in BLOCK_OPENERS:
                blocks.append(op.code == 0x03)
                if op.code == 0x03:
                    loops.append(({}, set()))
                    self.loop_uses[self.pos] = loops[-1]
            pos = self.pos
        self.pos = start

    def op_if(self):
        params, results = self.block_signature()
        cond = self.pop()
        frame = self.enter_block("if", params, results)
        frame.else_label = Label()
        self.test_entry(cond, 32)
        self.asm.jcc(E, frame.else_label)

    def end_of_arm(self, frame: Frame):
        """Fallthrough at else/end: results into the frame's canonical slots."""
        self.move_to_slots(len(frame.results), frame.base)
        for e in self.stack[frame.base:]:
            self.release(e)
        del self.stack[frame.base:]

    def reset_to_slots(self, frame: Frame, types: tuple):
        del self.stack[frame.base:]
        for j, ty in enumerate(types):
            self.push(SLOT, frame.base + j, ty)

    def op_else(self):
        frame = self.frames[-1]
        if self.reachable:
            self.end_of_arm(frame)
            self.asm.jmp(frame.label)
        frame.has_else = True
        self.forget_at_join()
        self.asm.bind(frame.else_label)
        self.note_pins(frame.written)
        self.reset_to_slots(frame, frame.params)
        self.reachable = True

    def forget_at_join(self):
        """Where control flow joins (also when reached from dead code), what this pass knew
        on one path (cached locals, bounds already checked) may not hold on another."""
        self.clear_cache()
        self.checked_ends.clear()

    def op_end(self):
        frame = self.frames.pop()
        self.forget_at_join()
        if frame.kind == "func":
            if self.reachable:
                self.emit_return(frame)
            self.asm.bind(frame.label)
            return
        if self.reachable:
            self.end_of_arm(frame)
        if frame.outer_pinned is not None:
            self.unpin(frame)
        if frame.kind == "if" and not frame.has_else:
            self.asm.bind(frame.else_label)
        if frame.kind == "try":
            self.emit_try_landing(frame)
        if frame.kind != "loop":
            self.asm.bind(frame.label)
        self.note_pins(self.frames[-1].written)
        self.reset_to_slots(frame, frame.results)
        self.reachable = True

    def store_results(self, n: int):
        """Write the top n values to the result area, which overlaps the parameters: a value
        still read from a parameter there is first copied to its own stack slot. Only moves,
        and the value stack is left as it was: on a conditional branch this code runs on the
        taken path alone, and the fall-through path must find every value where it was."""
        h = len(self.stack)
        entries = []
        for j in range(n):
            kind, val, ty = entry = self.stack[h - n + j]
            if kind == LOCAL and val < n and val not in self.pinned:
                self.store_entry(self.slot_mem(h - n + j), entry)
                entry = (SLOT, h - n + j, ty)
            entries.append(entry)
        for j, entry in enumerate(entries):
            self.store_entry(rbp_operand(16 + 8 * j), entry)

    def emit_return(self, frame: Frame):
        n = len(frame.results)
        h = len(self.stack)
        self.store_results(n)
        for e in self.stack[h - n:]:
            self.release(e)
        del self.stack[h - n:]
        self.epilogue()

    def branch_to(self, depth: int):
        """Jump to the label of the frame `depth` levels out, carrying its branch values."""
        frame = self.frames[-1 - depth]
        if frame.kind == "func":
            self.store_results(len(frame.results))
            self.epilogue()
            return
        self.move_to_slots(len(frame.branch_types), frame.base)
        self.jump_with_pins(frame)

    def jump_with_pins(self, frame: Frame):
        """Jump to `frame`'s label with the pins as it expects them; the code after the jump
        (if any is reached from elsewhere) has them as they were."""
        moves = self.branch_pins(frame)
        if moves is None:
            self.asm.jmp(frame.label)
            return
        self.move_pins(*moves)
        self.asm.jmp(frame.label)
        self.note_pins(moves[1])

    def op_br(self):
        self.branch_to(self.u32())
        self.set_unreachable()

    def op_br_if(self):
        depth = self.u32()
        self.test_entry(self.pop(), 32)
        self.branch_if(E, depth)

    def branch_if(self, not_taken_cc: int, depth: int):
        """Branch when the flags do not satisfy `not_taken_cc`; fall through otherwise."""
        frame = self.frames[-1 - depth]
        needs_moves = frame.kind == "func" or any(
            not (self.stack[len(self.stack) - len(frame.branch_types) + j][0] == SLOT
                 and self.stack[len(self.stack) - len(frame.branch_types) + j][1] == frame.base + j)
            for j in range(len(frame.branch_types)))
        if not needs_moves:
            moves = self.branch_pins(frame)
            if moves is None:
                self.asm.jcc(negate(not_taken_cc), frame.label)
                return
            leave = Label()  # out of line: the loop's own path keeps going straight on
            self.asm.jcc(negate(not_taken_cc), leave)
            self.ool.append((leave, None, self.op_offset, (moves, frame.label), moves[1]))
            return
        skip = Label()
        self.asm.jcc(not_taken_cc, skip)
        self.branch_to(depth)
        self.asm.bind(skip)

    def op_br_table(self):
        count = self.u32()
        depths = [self.u32() for _ in range(count)]
        default = self.u32()
        index = self.pop_reg()
        a = self.asm
        arity = len(self.frames[-1 - default].branch_types)
        h = len(self.stack)
        for j in range(arity):
            self.spill(h - arity + j)
        stubs: dict[int, Label] = {}
        for d in depths + [default]:
            stubs.setdefault(d, Label())
        if count:
            a.alu_imm("cmp", 32, index, count)
            a.jcc(AE, stubs[default])
            table = Label()
            a.lea_rip(SCRATCH, table)
            tmp = RAX if index != RAX else RCX
            a.movsx(64, 32, tmp, Mem(SCRATCH, 0, index, 4))
            a.alu("add", 64, tmp, SCRATCH)
            a.jmp_indirect(tmp)
            a.bind(table)
            for d in depths:  # entries: target - table, filled in once every label is bound
                self.mc.jump_tables.append((a.data32(), table.pos, stubs[d]))
        self.free(index, False)
        for d, label in stubs.items():
            a.bind(label)
            self.branch_to(d)
        self.set_unreachable()

    def op_return(self):
        self.branch_to(len(self.frames) - 1)
        self.set_unreachable()
