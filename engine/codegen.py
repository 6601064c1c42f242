"""The single-pass compiler: each Wasm function body straight to x86-64.

Liftoff-style: an abstract value stack records where each operand lives (a constant, a
register, a lazily read local, or its canonical frame slot), and code is emitted as
instructions are read. At every control-flow join all values are in their canonical
slots, so a label needs no register state. Locals live in frame slots at fixed rbp
offsets, which keeps them readable by a debugger at every pc.

Besides code, the compiler records for each function an address map (native offset to
Wasm offset) and CFI rows (native offset to CFA rule), consumed by `unwind` and `backtrace`.
"""

from __future__ import annotations

import os
import pickle
import struct
from dataclasses import dataclass, field

from . import layout as L
from .codegen_common import (B_DATA_DROP, B_ELEM_DROP, B_MEMORY_COPY, B_MEMORY_FILL, B_MEMORY_GROW,
                             B_MEMORY_INIT, B_TABLE_COPY, B_TABLE_FILL, B_TABLE_GROW, B_TABLE_INIT,
                             CONST, LOCAL, REG, SCRATCH, SLOT, XSCRATCH, CompileError, TryRegion,
                             is_float, simple_type, width)
from .codegen_numeric import NumericCodegen
from .codegen_switching import SwitchingCodegen
from .frames import AFTER_PUSH_RBP, AT_CALL, RBP_FRAME
from .module import Module
from .types import FuncType
from .x86 import (A, AE, B, BE, E, G, GE, L as LT, LE, NE, RAX, RBP, RBX, RCX, RDI, RDX, RSI, RSP,
                  R8, R9, R10, R12, R13, R14, R15, Assembler, Label, Mem)


GPR_ORDER = (RAX, RCX, RDX, RBX, RSI, RDI, R8, R9, R10, R12, R13)
XMM_ORDER = tuple(range(15))
# Registers that may hold a copy of a loop's most-read locals for the whole loop (the
# frame slot stays current too: writes go to both). Never claimed by fixed-register code
# (division, shifts, switching sequences reload them at their landings).
GPR_PINS = (R12, R13, RBX)
XMM_PINS = (14, 13, 12, 11, 10, 9, 8)

_VALTYPE_BYTES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128"}

@dataclass
class Frame:
    kind: str  # "block" | "loop" | "if" | "func"
    label: Label  # branch target: loop start, or block/if end
    base: int  # stack height below the frame's parameters
    params: tuple
    results: tuple
    else_label: Label | None = None
    has_else: bool = False
    try_region: "TryRegion | None" = None
    pins: list = field(default_factory=list)  # locals this loop keeps in registers

    @property
    def branch_types(self):
        return self.params if self.kind == "loop" else self.results


@dataclass
class CompiledFunction:
    index: int
    start: int  # offset in the module's code blob
    end: int
    addr_map: list  # [(native offset in blob, wasm module offset)], sorted
    cfi_rows: list  # [(native offset in blob, frames.CfaRule)]; AT_CALL holds at `start`
    frame_locals: int  # non-parameter locals (slots at rbp-16-8*j)
    frame_size: int  # rsp = rbp - 8 - frame_size in the body
    tries: list  # [TryRegion], innermost first for nested ones


@dataclass
class CompiledModule:
    code: bytes
    functions: list[CompiledFunction] = field(default_factory=list)


# Modules with at least this many functions compile in two processes.
PARALLEL_MIN_FUNCTIONS = 512


class ModuleCompiler:
    """Compiles every defined function of a module into one code blob."""

    def __init__(self, module: Module, type_ids: list[int], vmlayout: L.VmctxLayout,
                 libcall: bool = False):
        self.module = module
        self.libcall = libcall  # switch stacks through a runtime routine (for comparison)
        self.type_ids = type_ids
        self.vm = vmlayout
        self.memories = [i.desc for i in module.imports_of("memory")] + list(module.memories)
        self.tables = [i.desc for i in module.imports_of("table")] + [t.type for t in module.tables]
        tags = [i.desc for i in module.imports_of("tag")] + list(module.tags)
        self.tag_types = [module.types[t.type_index].composite for t in tags]
        self.asm = Assembler()
        self.func_labels = [Label() for _ in range(module.num_imported_funcs + len(module.funcs))]
        self.func_types = [module.func_type(i) for i in range(len(self.func_labels))]
        self.global_types = [simple_type(i.desc.valtype) for i in module.imports_of("global")]
        self.global_types += [simple_type(g.type.valtype) for g in module.globals]
        self.jump_tables: list[tuple[int, int, Label]] = []

    def compile(self) -> CompiledModule:
        count = len(self.module.code)
        if count >= PARALLEL_MIN_FUNCTIONS and (os.cpu_count() or 1) > 1:
            return self.compile_in_two_processes()
        code, functions, calls = self.compile_range(0, count)
        return CompiledModule(code, functions)

    def compile_range(self, lo: int, hi: int) -> tuple[bytes, list, dict]:
        """Compile defined functions lo..hi-1 into one blob. Also returns the direct calls
        to functions outside the range: {function index: [rel32 field offsets]}."""
        first = self.module.num_imported_funcs
        functions = [FunctionCompiler(self, first + k, self.module.code[k]).compile()
                     for k in range(lo, hi)]
        buf = self.asm.buf
        for at, table_pos, label in self.jump_tables:
            buf[at:at + 4] = struct.pack("<i", label.pos - table_pos)
        calls = {i: label.fixups for i, label in enumerate(self.func_labels) if label.fixups}
        return bytes(buf), functions, calls

    def compile_in_two_processes(self) -> CompiledModule:
        """Compile the second half of the functions in a forked child, as big modules are
        worth it on two cores; then concatenate and link the direct calls across halves."""
        count = len(self.module.code)
        middle = count // 2
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compile, send, leave without running any cleanup
            os.close(read_end)
            try:
                try:
                    result = self.compile_range(middle, count)
                except Exception as error:
                    result = error
                with os.fdopen(write_end, "wb") as pipe:
                    pickle.dump(result, pipe, protocol=pickle.HIGHEST_PROTOCOL)
            finally:
                os._exit(0)
        os.close(write_end)
        try:
            code1, functions1, calls1 = self.compile_range(0, middle)
        finally:
            with os.fdopen(read_end, "rb") as pipe:
                data = pipe.read()
            os.waitpid(pid, 0)
        result = pickle.loads(data) if data else CompileError("the compiler's child process died")
        if isinstance(result, Exception):
            raise result
        code2, functions2, calls2 = result
        shift = len(code1)
        for f in functions2:
            f.start += shift
            f.end += shift
            f.addr_map = [(native + shift, wasm) for native, wasm in f.addr_map]
            f.cfi_rows = [(native + shift, rule) for native, rule in f.cfi_rows]
            for region in f.tries:
                region.start += shift
                region.end += shift
                region.landing += shift
        functions = functions1 + functions2
        starts = {f.index: f.start for f in functions}
        code = bytearray(code1 + code2)
        for calls, base in ((calls1, 0), (calls2, shift)):
            for index, fields in calls.items():
                for at in fields:
                    at += base
                    code[at:at + 4] = struct.pack("<i", starts[index] - (at + 4))
        return CompiledModule(bytes(code), functions)


class FunctionCompiler(NumericCodegen, SwitchingCodegen):
    def __init__(self, mc: ModuleCompiler, func_index: int, body):
        self.mc = mc
        self.asm = mc.asm
        self.module = mc.module
        self.code = mc.module.data
        self.pos = body.code_start
        self.end_pos = body.code_end
        self.index = func_index
        ft: FuncType = mc.func_types[func_index]
        self.ftype = ft
        self.local_types = [simple_type(t) for t in ft.params] + [simple_type(t) for t in body.locals]
        self.nparams = len(ft.params)
        self.nlocals = len(body.locals)
        self.slot_base = -16 - 8 * self.nlocals  # slot k at slot_base - 8*k
        self.local_mems = [Mem(RBP, 16 + 8 * i) for i in range(self.nparams)]
        self.local_mems += [Mem(RBP, -16 - 8 * j) for j in range(self.nlocals)]
        self.slot_mems: list[Mem] = []
        self.stack: list[tuple] = []  # (kind, value, type)
        self.max_out = 0
        self.free_gpr = list(GPR_ORDER)
        self.free_xmm = list(XMM_ORDER)
        self.frames: list[Frame] = []
        self.reachable = True
        self.dead_depth = 0
        self.ool: list[tuple] = []  # (label, trap code, wasm offset, register detailing the trap)
        self.addr_map: list[tuple[int, int]] = []
        self.cfi_rows: list[tuple[int, str]] = []
        self.op_offset = 0
        self.tries: list[TryRegion] = []
        self.pinned: dict[int, int] = {}  # local index -> register holding a copy
        self.loop_reads: dict[int, dict] = {}  # loop body offset -> local reads (pre-scan)

    # ---- locations -------------------------------------------------------------------

    def local_mem(self, i: int) -> Mem:
        return self.local_mems[i]

    def slot_mem(self, k: int) -> Mem:
        mems = self.slot_mems
        while k >= len(mems):
            mems.append(Mem(RBP, self.slot_base - 8 * len(mems)))
        return mems[k]

    # ---- register allocation ---------------------------------------------------------

    def alloc(self, xmm: bool, avoid=()) -> int:
        """A free register of the class (xmm or general-purpose), spilling if need be."""
        free = self.free_xmm if xmm else self.free_gpr
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
        if is_float(ty):
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
                mem = self.local_mem(val) if kind == LOCAL else self.slot_mem(val)
                a.movs(width(ty), reg, mem)
        else:
            if kind == REG:
                if val != reg:
                    a.mov(width(ty), reg, val)
            elif kind == CONST:
                a.mov_imm(width(ty), reg, val)
            elif kind == LOCAL and val in self.pinned:
                if self.pinned[val] != reg:
                    a.mov(width(ty), reg, self.pinned[val])
            else:
                mem = self.local_mem(val) if kind == LOCAL else self.slot_mem(val)
                a.mov(width(ty), reg, mem)

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
            self.free(entry[1], is_float(entry[2]))

    def pop_reg(self, avoid=()) -> int:
        """Pop the top value into a register the caller owns."""
        entry = self.stack.pop()
        kind, val, ty = entry
        if kind == REG and val not in avoid:
            return val
        reg = self.alloc(is_float(ty), avoid)
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

    # ---- immediates ------------------------------------------------------------------

    def u32(self) -> int:
        code = self.code
        pos = self.pos
        b = code[pos]
        pos += 1
        if b < 0x80:
            self.pos = pos
            return b
        result = b & 0x7F
        shift = 7
        while True:
            b = code[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
        self.pos = pos
        return result

    def sleb(self) -> int:
        code = self.code
        pos = self.pos
        result = 0
        shift = 0
        while True:
            b = code[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        self.pos = pos
        if b & 0x40:
            result -= 1 << shift
        return result

    def valtype(self) -> str:
        b = self.code[self.pos]
        self.pos += 1
        if b in _VALTYPE_BYTES:
            return _VALTYPE_BYTES[b]
        if b == 0x63 or b == 0x64:
            self.heaptype()
        return "ref"

    def heaptype(self):
        b = self.code[self.pos]
        if 0x60 <= b <= 0x7F:  # abstract heap type: one byte
            self.pos += 1
        else:
            self.sleb()

    def blocktype(self) -> tuple[tuple, tuple]:
        b = self.code[self.pos]
        if b == 0x40:
            self.pos += 1
            return (), ()
        if b in _VALTYPE_BYTES or b >= 0x60 or b == 0x63 or b == 0x64:
            return (), (self.valtype(),)
        ft = self.module.types[self.sleb()].composite
        return tuple(simple_type(t) for t in ft.params), tuple(simple_type(t) for t in ft.results)

    # ---- function structure ----------------------------------------------------------

    def trap_label(self, code: int, detail: int | None = None) -> Label:
        """A label for out-of-line trap code; `detail` names a register whose value goes
        into the trap message (the element index of an uninitialized table element)."""
        label = Label()
        self.ool.append((label, code, self.op_offset, detail))
        return label

    def emit_trap_call(self, code: int):
        self.asm.mov_imm_noflags(RSI, code)
        self.asm.call_indirect(Mem(R15, L.VM_TRAP_STUB))

    def compile(self) -> CompiledFunction:
        a = self.asm
        start = a.pos
        self.mc.func_labels[self.index].pos = None
        a.bind(self.mc.func_labels[self.index])
        self.op_offset = self.pos
        self.addr_map.append((start, self.pos))
        # Prologue: standard rbp frame, vmctx saved at rbp-8, stack-limit check.
        a.push(RBP)
        self.cfi_rows.append((a.pos, AFTER_PUSH_RBP))
        a.mov(64, RBP, RSP)
        self.cfi_rows.append((a.pos, RBP_FRAME))
        a.push(R15)
        a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))
        a.raw(b"\x4c\x8d\x9c\x24")  # lea r11, [rsp + disp32]
        frame_fixup_lea = a.pos
        a.raw(b"\0\0\0\0")
        a.alu("cmp", 64, SCRATCH, Mem(RAX, L.RT_STACK_LIMIT))
        a.jcc(B, self.trap_label(L.TRAP_STACK_EXHAUSTED))
        a.raw(b"\x48\x81\xec")  # sub rsp, imm32
        frame_fixup_sub = a.pos
        a.raw(b"\0\0\0\0")
        if self.nlocals:
            self.zero_locals()
        self.frames.append(Frame("func", Label(), 0, (), tuple(simple_type(t) for t in self.ftype.results)))
        self.body()
        for label, code, offset, detail in self.ool:
            self.addr_map.append((a.pos, offset))
            a.bind(label)
            if detail is not None:
                a.mov(64, RSI, Mem(R15, L.VM_RUNTIME))
                a.mov(64, Mem(RSI, L.RT_TRAP_DETAIL), detail)
            self.emit_trap_call(code)
        frame_size = 8 * (self.nlocals + len(self.slot_mems) + self.max_out)  # slots ever used
        if frame_size % 16 != 8:
            frame_size += 8
        a.buf[frame_fixup_lea:frame_fixup_lea + 4] = struct.pack("<i", -(frame_size + 8))
        a.buf[frame_fixup_sub:frame_fixup_sub + 4] = struct.pack("<i", frame_size)
        self.tries.sort(key=lambda t: -t.start)
        return CompiledFunction(self.index, start, a.pos, self.addr_map, self.cfi_rows, self.nlocals,
                                frame_size, self.tries)

    def zero_locals(self):
        a = self.asm
        if self.nlocals <= 8:
            a.mov_imm(32, RAX, 0)
            for j in range(self.nlocals):
                a.mov(64, Mem(RBP, -16 - 8 * j), RAX)
        else:
            a.lea(RDI, Mem(RBP, -16 - 8 * (self.nlocals - 1)))
            a.mov_imm(32, RAX, 0)
            a.mov_imm(32, RCX, self.nlocals)
            a.rep_stosq()

    def epilogue(self):
        a = self.asm
        a.mov(64, RSP, RBP)
        a.pop(RBP)
        self.cfi_rows.append((a.pos, AT_CALL))
        a.ret()
        self.cfi_rows.append((a.pos, RBP_FRAME))

    def body(self):
        handlers = _HANDLERS
        code = self.code
        addr_map = self.addr_map
        buf = self.asm.buf
        while self.frames:
            pos = self.pos
            self.op_offset = pos
            op = code[pos]
            self.pos = pos + 1
            if not self.reachable:
                self.skip(op)
                continue
            native = len(buf)
            if addr_map[-1][0] != native:
                addr_map.append((native, pos))
            else:
                addr_map[-1] = (native, pos)
            handler = handlers[op]
            if handler is None:
                raise CompileError(f"unsupported instruction 0x{op:02x} at offset 0x{pos:x}")
            handler(self)

    # ---- unreachable code ------------------------------------------------------------

    def skip(self, op: int):
        """Decode past an instruction in unreachable code, tracking only block nesting."""
        if op in (0x02, 0x03, 0x04, 0x1F):
            self.dead_depth += 1
            self.blocktype()
            if op == 0x1F:
                for _ in range(self.u32()):
                    kind = self.code[self.pos]
                    self.pos += 1
                    if kind in (0, 1):
                        self.u32()
                    self.u32()
            return
        if op == 0x0B:
            if self.dead_depth:
                self.dead_depth -= 1
            else:
                self.op_end()
            return
        if op == 0x05 and not self.dead_depth:
            self.op_else()
            return
        _skip_immediates(self, op)

    def set_unreachable(self):
        frame = self.frames[-1]
        for e in self.stack[frame.base:]:
            self.release(e)
        del self.stack[frame.base:]
        self.reachable = False
        self.dead_depth = 0

    # ---- control ---------------------------------------------------------------------

    def op_unreachable(self):
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
        frame = Frame(kind, Label(), base, params, results)
        self.frames.append(frame)
        return frame

    def op_block(self):
        params, results = self.blocktype()
        self.enter_block("block", params, results)

    def op_loop(self):
        params, results = self.blocktype()
        frame = self.enter_block("loop", params, results)
        self.pin_loop_locals(frame)
        self.asm.bind(frame.label)

    def pin_loop_locals(self, frame: Frame):
        """Keep the locals this loop reads most in registers while it runs, so values carried
        from one iteration to the next do not go through memory."""
        reads = self.local_reads_in_loop()
        for index in sorted(reads, key=reads.get, reverse=True):
            if index in self.pinned or reads[index] < 2:
                continue
            xmm = is_float(self.local_types[index])
            free = self.free_xmm if xmm else self.free_gpr
            reg = next((r for r in (XMM_PINS if xmm else GPR_PINS) if r in free), None)
            if reg is None:
                continue
            free.remove(reg)
            self.pinned[index] = reg
            frame.pins.append(index)
            self.reload_pin(index)

    def reload_pin(self, index: int):
        reg, ty = self.pinned[index], self.local_types[index]
        if is_float(ty):
            self.asm.movs(width(ty), reg, self.local_mem(index))
        else:
            self.asm.mov(width(ty), reg, self.local_mem(index))

    def reload_pins(self):
        """After anything that clobbers registers (calls, switches, landings)."""
        for index in self.pinned:
            self.reload_pin(index)

    def unpin(self, frame: Frame):
        for index in frame.pins:
            reg = self.pinned.pop(index)
            self.free(reg, is_float(self.local_types[index]))

    def local_reads_in_loop(self) -> dict[int, int]:
        """local.get/tee counts in the loop whose body starts at self.pos. The first loop
        of a nest is scanned once, with every loop nested in it."""
        reads = self.loop_reads.pop(self.pos, None)
        if reads is None:
            self.scan_loop_nest()
            reads = self.loop_reads.pop(self.pos)
        return reads

    def scan_loop_nest(self):
        start, code = self.pos, self.code
        open_loops = [{}]  # counts of every loop enclosing the scan point; None for blocks
        self.loop_reads[start] = open_loops[0]
        while open_loops:
            op = code[self.pos]
            self.pos += 1
            if op in (0x02, 0x03, 0x04, 0x1F):
                self.blocktype()
                if op == 0x1F:
                    for _ in range(self.u32()):
                        kind = code[self.pos]
                        self.pos += 1
                        if kind in (0, 1):
                            self.u32()
                        self.u32()
                if op == 0x03:
                    open_loops.append({})
                    self.loop_reads[self.pos] = open_loops[-1]
                else:
                    open_loops.append(None)
            elif op == 0x0B:
                open_loops.pop()
            elif op == 0x20 or op == 0x22:
                index = self.u32()
                for reads in open_loops:
                    if reads is not None:
                        reads[index] = reads.get(index, 0) + 1
            else:
                _skip_immediates(self, op)
        self.pos = start

    def op_if(self):
        params, results = self.blocktype()
        cond = self.pop_reg()
        self.free(cond, False)
        frame = self.enter_block("if", params, results)
        frame.else_label = Label()
        self.asm.test(32, cond, cond)
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
        self.asm.bind(frame.else_label)
        self.reset_to_slots(frame, frame.params)
        self.reachable = True

    def op_end(self):
        frame = self.frames.pop()
        if frame.pins:
            self.unpin(frame)
        if frame.kind == "func":
            if self.reachable:
                self.emit_return(frame)
            self.asm.bind(frame.label)
            return
        if self.reachable:
            self.end_of_arm(frame)
        if frame.kind == "if" and not frame.has_else:
            self.asm.bind(frame.else_label)
        if frame.kind == "try":
            self.emit_try_landing(frame)
        if frame.kind != "loop":
            self.asm.bind(frame.label)
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
            self.store_entry(Mem(RBP, 16 + 8 * j), entry)

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
        self.asm.jmp(frame.label)

    def op_br(self):
        self.branch_to(self.u32())
        self.set_unreachable()

    def op_br_if(self):
        depth = self.u32()
        cond = self.pop_reg()
        self.free(cond, False)
        self.asm.test(32, cond, cond)
        self.branch_if(E, depth)

    def branch_if(self, not_taken_cc: int, depth: int):
        """Branch when the flags do not satisfy `not_taken_cc`; fall through otherwise."""
        frame = self.frames[-1 - depth]
        needs_moves = frame.kind == "func" or any(
            not (self.stack[len(self.stack) - len(frame.branch_types) + j][0] == SLOT
                 and self.stack[len(self.stack) - len(frame.branch_types) + j][1] == frame.base + j)
            for j in range(len(frame.branch_types)))
        if not needs_moves:
            self.asm.jcc(not_taken_cc ^ 1, frame.label)
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
            a.raw(b"\x4c\x8d\x1d")  # lea r11, [rip + table]
            table_fix = a.pos
            a.raw(b"\0\0\0\0")
            a.movsx(64, 32, RAX if index != RAX else RCX, Mem(SCRATCH, 0, index, 4))
            tmp = RAX if index != RAX else RCX
            a.alu("add", 64, tmp, SCRATCH)
            a.jmp_indirect(tmp)
            table_pos = a.pos
            a.buf[table_fix:table_fix + 4] = struct.pack("<i", table_pos - (table_fix + 4))
            for d in depths:
                self.mc.jump_tables.append((a.pos, table_pos, stubs[d]))
                a.raw(b"\0\0\0\0")
        self.free(index, False)
        for d, label in stubs.items():
            a.bind(label)
            self.branch_to(d)
        self.set_unreachable()

    def op_return(self):
        self.branch_to(len(self.frames) - 1)
        self.set_unreachable()

    # ---- calls -----------------------------------------------------------------------

    def prepare_call(self, ft: FuncType):
        """Write arguments to the outgoing area and spill everything the call clobbers."""
        n = len(ft.params)
        self.max_out = max(self.max_out, n, len(ft.results), L.MIN_CALL_AREA)
        h = len(self.stack)
        for j in range(n):
            self.store_entry(Mem(RSP, 8 * j), self.stack[h - n + j])
        for e in self.stack[h - n:]:
            self.release(e)
        del self.stack[h - n:]
        self.spill_regs()

    def finish_call(self, ft: FuncType):
        """After any call, our vmctx and memory base go back into r15 and r14: even a
        callee of this instance may have left another's, if it tail-called an import, a
        table entry or a function reference (that callee returns straight to us)."""
        a = self.asm
        a.mov(64, R15, Mem(RBP, -8))
        a.mov(64, R14, Mem(R15, L.VM_MEM_BASE))
        self.reload_pins()
        results = [simple_type(t) for t in ft.results]
        if len(results) == 1:
            ty = results[0]
            reg = self.alloc(is_float(ty))
            if is_float(ty):
                a.movs(width(ty), reg, Mem(RSP, 0))
            else:
                a.mov(width(ty), reg, Mem(RSP, 0))
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
        a.mov(64, R14, Mem(R15, L.VM_MEM_BASE))
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
        if index < self.module.num_imported_funcs:
            self.ref_call(ft, lambda: self.asm.mov(64, SCRATCH, Mem(R15, self.mc.vm.func(index))), tail)
            return
        if tail and self.tail_call_fits(ft):
            self.leave_for_tail_call(ft)
            self.asm.jmp(self.mc.func_labels[index])
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
        return len(ft.params) <= max(L.MIN_CALL_AREA, self.nparams, len(self.ftype.results))

    def leave_for_tail_call(self, ft: FuncType):
        """Put the callee's arguments in our own incoming area and tear down our frame."""
        n = len(ft.params)
        self.store_results(n)
        for e in self.stack[len(self.stack) - n:]:
            self.release(e)
        del self.stack[len(self.stack) - n:]
        a = self.asm
        a.mov(64, RSP, RBP)
        a.pop(RBP)
        self.cfi_rows.append((a.pos, AT_CALL))

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
        a.alu_imm("cmp", 64, Mem(SCRATCH, L.FR_TYPE_ID), self.mc.type_ids[type_index])
        a.jcc(NE, self.trap_label(L.TRAP_SIGNATURE))

    def op_call_indirect(self, tail: bool = False):
        type_index = self.u32()
        table = self.u32()
        index = self.pop_reg()

        def load():
            self.checked_table_entry(type_index, table, index)
            self.free(index, False)

        self.ref_call(self.module.types[type_index].composite, load, tail)

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

        self.ref_call(self.module.types[type_index].composite, load, tail)

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
        a.mov(64, SCRATCH, Mem(R15, self.mc.vm.builtin(builtin)))
        self.call_funcref_in(SCRATCH)
        a.mov(64, R15, Mem(RBP, -8))
        a.mov(64, R14, Mem(R15, L.VM_MEM_BASE))
        self.reload_pins()
        if result is not None:
            reg = self.alloc(False)
            a.mov(width(result), reg, Mem(RSP, 0))
            self.push_reg(reg, result)

    def pop_args(self, n: int) -> list[tuple]:
        args = self.stack[len(self.stack) - n:]
        del self.stack[len(self.stack) - n:]
        return args

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
        for _ in range(self.u32()):
            self.valtype()
        self.op_select()

    def op_local_get(self):
        i = self.u32()
        self.push(LOCAL, i, self.local_types[i])

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

    def memarg(self) -> tuple[int, int]:
        """Read a memarg: (memory index, offset)."""
        align = self.u32()
        memory = self.u32() if align & 0x40 else 0
        return memory, self.u32()

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
        if entry[0] == CONST:
            self.stack.pop()
            addr = entry[1] & ((1 << 64) - 1)
            end = addr + offset + size
            if end <= mt.limits.minimum * 65536 and addr + offset < (1 << 31):
                return Mem(base, addr + offset), temp
            if end >= 1 << 64:
                a.jmp(self.trap_label(L.TRAP_MEMORY_OOB))
                return Mem(base, 0), temp
            a.mov_imm(64, SCRATCH, end)
            a.alu("cmp", 64, SCRATCH, size_field)
            a.jcc(A, self.trap_label(L.TRAP_MEMORY_OOB))
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
                a.mov_imm(64, SCRATCH, offset + size)
                a.alu("add", 64, SCRATCH, addr)
            if mt.limits.is64:
                a.jcc(B, self.trap_label(L.TRAP_MEMORY_OOB))  # carry: wrapped past 2^64
        a.alu("cmp", 64, SCRATCH, size_field)
        a.jcc(A, self.trap_label(L.TRAP_MEMORY_OOB))
        if offset < (1 << 31):
            return Mem(base, offset, addr), temp
        return Mem(base, -size, SCRATCH), temp

    def load_op(self, ty: str, size: int, signed: bool):
        memory, offset = self.memarg()
        mem, temp = self.address(memory, offset, size // 8)
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
        memory, offset = self.memarg()
        value = self.pop_reg()
        mem, temp = self.address(memory, offset, size // 8)
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


def _build_handlers():
    h = [None] * 256
    F = FunctionCompiler
    h[0x00] = F.op_unreachable
    h[0x01] = F.op_nop
    h[0x02] = F.op_block
    h[0x03] = F.op_loop
    h[0x04] = F.op_if
    h[0x05] = F.op_else
    h[0x0B] = F.op_end
    h[0x0C] = F.op_br
    h[0x0D] = F.op_br_if
    h[0x0E] = F.op_br_table
    h[0x0F] = F.op_return
    h[0x10] = F.op_call
    h[0x11] = F.op_call_indirect
    h[0x12] = F.op_return_call
    h[0x13] = F.op_return_call_indirect
    h[0x14] = F.op_call_ref
    h[0x15] = F.op_return_call_ref
    h[0x1A] = F.op_drop
    h[0x1B] = F.op_select
    h[0x1C] = F.op_select_t
    h[0x20] = F.op_local_get
    h[0x21] = F.op_local_set
    h[0x22] = F.op_local_tee
    h[0x23] = F.op_global_get
    h[0x24] = F.op_global_set
    h[0x25] = F.op_table_get
    h[0x26] = F.op_table_set
    loads = {0x28: ("i32", 32, False), 0x29: ("i64", 64, False), 0x2A: ("f32", 32, False),
             0x2B: ("f64", 64, False), 0x2C: ("i32", 8, True), 0x2D: ("i32", 8, False),
             0x2E: ("i32", 16, True), 0x2F: ("i32", 16, False), 0x30: ("i64", 8, True),
             0x31: ("i64", 8, False), 0x32: ("i64", 16, True), 0x33: ("i64", 16, False),
             0x34: ("i64", 32, True), 0x35: ("i64", 32, False)}
    for op, (ty, size, signed) in loads.items():
        h[op] = lambda self, ty=ty, size=size, signed=signed: self.load_op(ty, size, signed)
    stores = {0x36: ("i32", 32), 0x37: ("i64", 64), 0x38: ("f32", 32), 0x39: ("f64", 64),
              0x3A: ("i32", 8), 0x3B: ("i32", 16), 0x3C: ("i64", 8), 0x3D: ("i64", 16),
              0x3E: ("i64", 32)}
    for op, (ty, size) in stores.items():
        h[op] = lambda self, ty=ty, size=size: self.store_op(ty, size)
    h[0x3F] = F.op_memory_size
    h[0x40] = F.op_memory_grow
    h[0x41] = F.op_i32_const
    h[0x42] = F.op_i64_const
    h[0x43] = F.op_f32_const
    h[0x44] = F.op_f64_const
    int_cc = [E, NE, LT, B, G, A, LE, BE, GE, AE]
    for base, ty in ((0x45, "i32"), (0x50, "i64")):
        h[base] = lambda self, ty=ty: self.int_eqz(ty)
        for k, cc in enumerate(int_cc):
            h[base + 1 + k] = lambda self, cc=cc, ty=ty: self.int_compare(cc, ty)
    for base, ty in ((0x5B, "f32"), (0x61, "f64")):
        for k, op in enumerate(("eq", "ne", "lt", "gt", "le", "ge")):
            h[base + k] = lambda self, op=op, ty=ty: self.float_compare(op, ty)
    for base, ty in ((0x67, "i32"), (0x79, "i64")):
        h[base] = lambda self, ty=ty: self.int_bitcount("lzcnt", ty)
        h[base + 1] = lambda self, ty=ty: self.int_bitcount("tzcnt", ty)
        h[base + 2] = lambda self, ty=ty: self.int_bitcount("popcnt", ty)
        h[base + 3] = lambda self, ty=ty: self.int_binop("add", ty)
        h[base + 4] = lambda self, ty=ty: self.int_binop("sub", ty)
        h[base + 5] = lambda self, ty=ty: self.int_mul(ty)
        h[base + 6] = lambda self, ty=ty: self.int_divrem(ty, True, False)
        h[base + 7] = lambda self, ty=ty: self.int_divrem(ty, False, False)
        h[base + 8] = lambda self, ty=ty: self.int_divrem(ty, True, True)
        h[base + 9] = lambda self, ty=ty: self.int_divrem(ty, False, True)
        h[base + 10] = lambda self, ty=ty: self.int_binop("and", ty)
        h[base + 11] = lambda self, ty=ty: self.int_binop("or", ty)
        h[base + 12] = lambda self, ty=ty: self.int_binop("xor", ty)
        h[base + 13] = lambda self, ty=ty: self.int_shift("shl", ty)
        h[base + 14] = lambda self, ty=ty: self.int_shift("sar", ty)
        h[base + 15] = lambda self, ty=ty: self.int_shift("shr", ty)
        h[base + 16] = lambda self, ty=ty: self.int_shift("rol", ty)
        h[base + 17] = lambda self, ty=ty: self.int_shift("ror", ty)
    for base, ty in ((0x8B, "f32"), (0x99, "f64")):
        for k, op in enumerate(("abs", "neg", "ceil", "floor", "trunc", "nearest", "sqrt")):
            h[base + k] = lambda self, op=op, ty=ty: self.float_unop(op, ty)
        for k, op in enumerate(("add", "sub", "mul", "div")):
            h[base + 7 + k] = lambda self, op=op, ty=ty: self.float_binop(op, ty)
        h[base + 11] = lambda self, ty=ty: self.float_minmax(True, ty)
        h[base + 12] = lambda self, ty=ty: self.float_minmax(False, ty)
        h[base + 13] = lambda self, ty=ty: self.float_copysign(ty)
    h[0xA7] = F.op_i32_wrap_i64
    for op, (ity, fty, signed) in {0xA8: ("i32", "f32", True), 0xA9: ("i32", "f32", False),
                                   0xAA: ("i32", "f64", True), 0xAB: ("i32", "f64", False),
                                   0xAE: ("i64", "f32", True), 0xAF: ("i64", "f32", False),
                                   0xB0: ("i64", "f64", True), 0xB1: ("i64", "f64", False)}.items():
        h[op] = lambda self, ity=ity, fty=fty, signed=signed: self.trunc(ity, fty, signed, False)
    h[0xAC] = F.op_i64_extend_i32_s
    h[0xAD] = F.op_i64_extend_i32_u
    for op, (fty, ity, signed) in {0xB2: ("f32", "i32", True), 0xB3: ("f32", "i32", False),
                                   0xB4: ("f32", "i64", True), 0xB5: ("f32", "i64", False),
                                   0xB7: ("f64", "i32", True), 0xB8: ("f64", "i32", False),
                                   0xB9: ("f64", "i64", True), 0xBA: ("f64", "i64", False)}.items():
        h[op] = lambda self, fty=fty, ity=ity, signed=signed: self.convert(fty, ity, signed)
    h[0xB6] = F.op_f32_demote_f64
    h[0xBB] = F.op_f64_promote_f32
    h[0xBC] = lambda self: self.reinterpret("i32")
    h[0xBD] = lambda self: self.reinterpret("i64")
    h[0xBE] = lambda self: self.reinterpret("f32")
    h[0xBF] = lambda self: self.reinterpret("f64")
    h[0xC0] = lambda self: self.sign_extend("i32", 8)
    h[0xC1] = lambda self: self.sign_extend("i32", 16)
    h[0xC2] = lambda self: self.sign_extend("i64", 8)
    h[0xC3] = lambda self: self.sign_extend("i64", 16)
    h[0xC4] = lambda self: self.sign_extend("i64", 32)
    h[0xD0] = F.op_ref_null
    h[0xD1] = F.op_ref_is_null
    h[0xD2] = F.op_ref_func
    h[0xD4] = F.op_ref_as_non_null
    h[0xD5] = F.op_br_on_null
    h[0xD6] = F.op_br_on_non_null
    h[0xE0] = F.op_cont_new
    h[0xE1] = F.op_cont_bind
    h[0xE2] = F.op_suspend
    h[0xE3] = F.op_resume
    h[0xE4] = F.op_resume_throw
    h[0xE5] = F.op_resume_throw_ref
    h[0xE6] = F.op_switch
    h[0x08] = F.op_throw
    h[0x0A] = F.op_throw_ref
    h[0x1F] = F.op_try_table
    h[0xFC] = F.op_prefix_fc
    return h


_HANDLERS = _build_handlers()

# Immediate formats, for skipping unreachable code.
_NO_IMM = set(range(0x45, 0xC5)) | {0x00, 0x01, 0x05, 0x0F, 0x1A, 0x1B, 0xD1, 0xD3, 0xD4, 0x0A}
_ONE_U32 = {0x0C, 0x0D, 0x10, 0x12, 0x14, 0x15, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26,
            0x3F, 0x40, 0xD2, 0xD5, 0xD6, 0x08, 0xE0, 0xE2}
_TWO_U32 = {0x11, 0x13, 0xE1} | set(range(0x28, 0x3F))


def _skip_immediates(fc: FunctionCompiler, op: int):
    if op in _NO_IMM:
        return
    if op in _ONE_U32:
        fc.u32()
    elif op in _TWO_U32:
        fc.u32()
        fc.u32()
    elif op == 0x41 or op == 0x42:
        fc.sleb()
    elif op == 0x43:
        fc.pos += 4
    elif op == 0x44:
        fc.pos += 8
    elif op == 0x0E:
        for _ in range(fc.u32() + 1):
            fc.u32()
    elif op == 0x1C:
        for _ in range(fc.u32()):
            fc.valtype()
    elif op == 0xD0:
        fc.heaptype()
    elif op == 0xFC:
        sub = fc.u32()
        if sub in (8, 12, 14):
            fc.u32()
            fc.u32()
        elif sub in (9, 10, 11, 13, 15, 16, 17):
            fc.u32()
            if sub == 10:
                fc.u32()
    elif op in (0xE3, 0xE4, 0xE5):  # resume, resume_throw, resume_throw_ref
        fc.u32()
        if op == 0xE4:
            fc.u32()
        fc.handlers()
    elif op == 0xE6:  # switch
        fc.u32()
        fc.u32()
    else:
        raise CompileError(f"unsupported instruction 0x{op:02x} at offset 0x{fc.op_offset:x}")
