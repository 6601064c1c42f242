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

from .. import layout as L
from ..frontend.instructions import BodyReader, UnknownInstruction
from ..frontend.module import Module
from ..frontend.types import FuncType
from .calls import CallsCodegen
from .common import SCRATCH, XSCRATCH, CompileError, Entry, TryRegion, simple_type
from .control import ControlCodegen, Frame
from .frames import AFTER_PUSH_RBP, AT_CALL, RBP_FRAME, CfaRule
from .handlers import build_handlers
from .memory import MemoryCodegen
from .numeric import NumericCodegen
from .switching import SwitchingCodegen
from .valuestack import GPR_ORDER, XMM_ORDER, ValueStackCodegen
from .x86 import R15, RAX, RBP, RCX, RDI, RSI, RSP, Assembler, B, Label, Mem


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
    events: list  # [(native offset in blob, layout.EVENT_*)]: event sites for debuggers


@dataclass
class CompiledModule:
    code: bytes
    functions: list[CompiledFunction] = field(default_factory=list)
    vm_layout: L.VmctxLayout | None = None  # where the code finds globals etc. (debug info)


# Modules with at least this many functions compile in two processes.
PARALLEL_MIN_FUNCTIONS = 512


class ModuleCompiler:
    """Compiles every defined function of a module into one code blob."""

    def __init__(self, module: Module, type_ids: list[int], vmlayout: L.VmctxLayout,
                 libcall: bool = False, tracing: bool = False):
        self.module = module
        self.libcall = libcall  # switch stacks through a runtime routine (for comparison)
        self.tracing = tracing  # write trace events (a tracing store's code; tracing.py)
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
        return CompiledModule(code, functions, self.vm)

    def compile_range(self, lo: int, hi: int) -> tuple[bytes, list, dict]:
        """Compile defined functions lo..hi-1 into one blob. Also returns the direct calls
        to functions outside the range: {function index: [rel32 field offsets]}."""
        first = self.module.num_imported_funcs
        functions = [FunctionCompiler(self, first + k, self.module.code[k]).compile()
                     for k in range(lo, hi)]
        buf = self.asm.buf
        for at, table_pos, label in self.jump_tables:
            self.asm.patch_i32(at, label.pos - table_pos)
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
            f.events = [(native + shift, kind) for native, kind in f.events]
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
        return CompiledModule(bytes(code), functions, self.vm)


class FunctionCompiler(BodyReader, ValueStackCodegen, ControlCodegen, CallsCodegen, MemoryCodegen,
                       NumericCodegen, SwitchingCodegen):
    """Compiles one function body, reading its immediates through `BodyReader`. Its parts
    are mixins, one per kind of instruction, that rely on each other only through
    `common.CodegenCore`; this class holds the state they share and the main loop."""

    def __init__(self, mc: ModuleCompiler, func_index: int, body):
        # At most 29 attributes: CPython 3.11 keeps that many inline in the instance; one
        # more turns them into a dictionary and slows the whole compiler down by 8%.
        super().__init__(mc.module.data, body.code_start)
        self.mc = mc
        self.asm = mc.asm
        self.module = mc.module
        self.index = func_index
        ft: FuncType = mc.func_types[func_index]
        self.ftype = ft
        self.local_types = [simple_type(t) for t in ft.params] + [simple_type(t) for t in body.locals]
        self.nparams = len(ft.params)
        self.nlocals = len(body.locals)
        self.local_mems = [Mem(RBP, 16 + 8 * i) for i in range(self.nparams)]
        self.local_mems += [Mem(RBP, -16 - 8 * j) for j in range(self.nlocals)]
        self.slot_mems: list[Mem] = []
        self.stack: list[Entry] = []
        self.max_out = 0
        self.free_gpr = list(GPR_ORDER)
        self.free_xmm = list(XMM_ORDER)
        self.frames: list[Frame] = []
        self.reachable = True
        self.dead_depth = 0
        self.ool: list[tuple] = []  # (label, trap code, wasm offset, what details the trap)
        self.addr_map: list[tuple[int, int]] = []
        self.cfi_rows: list[tuple[int, CfaRule]] = []
        self.events: list[tuple[int, int]] = []  # (native offset, layout.EVENT_*)
        self.op_offset = 0
        self.tries: list[TryRegion] = []
        self.pinned: dict[int, int] = {}  # local index -> register holding a copy
        self.cached: dict[int, int] = {}  # local index -> register caching its value
        self.loop_uses: dict[int, dict] = {}  # loop body offset -> local uses (pre-scan)
        self.constants: dict[tuple[int, str], Label] = {}  # float constants -> pool words
        # (memory, local) -> the largest access end proven in bounds for the local's value
        # since the last join (memories never shrink): later accesses below it need no check
        self.checked_ends: dict[tuple[int, int], int] = {}

    # ---- function structure ----------------------------------------------------------

    def trap_label(self, code: int, detail: int | tuple | None = None) -> Label:
        """A label for out-of-line trap code; `detail` names a register whose value goes
        into the trap message (the element index of an uninitialized table element), or a
        (register, addend) pair whose sum does (the end of a memory access)."""
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
        frame_fixup_lea = a.lea_patchable(SCRATCH, RSP)  # the frame's lowest address
        a.alu("cmp", 64, SCRATCH, Mem(RAX, L.RT_STACK_LIMIT))
        a.jcc(B, self.trap_label(L.TRAP_STACK_EXHAUSTED))
        frame_fixup_sub = a.alu_imm_patchable("sub", 64, RSP)
        if self.nlocals:
            self.zero_locals()
        self.frames.append(Frame("func", Label(), 0, (), tuple(simple_type(t) for t in self.ftype.results)))
        self.body()
        for label, code, offset, detail in self.ool:
            self.addr_map.append((a.pos, offset))
            a.bind(label)
            if isinstance(detail, tuple):
                a.lea(SCRATCH, Mem(*detail))
                detail = SCRATCH
            if detail is not None:
                a.mov(64, RSI, Mem(R15, L.VM_RUNTIME))
                a.mov(64, Mem(RSI, L.RT_TRAP_DETAIL), detail)
            self.emit_trap_call(code)
        self.emit_constants()
        frame_size = 8 * (self.nlocals + len(self.slot_mems) + self.max_out)  # slots ever used
        if frame_size % 16 != 8:
            frame_size += 8
        a.patch_i32(frame_fixup_lea, -(frame_size + 8))
        a.patch_i32(frame_fixup_sub, frame_size)
        self.tries.sort(key=lambda t: -t.start)
        return CompiledFunction(self.index, start, a.pos, self.addr_map, self.cfi_rows, self.nlocals,
                                frame_size, self.tries, self.events)

    def zero_locals(self):
        a = self.asm
        if self.nlocals <= 8:
            a.mov_imm(32, RAX, 0)
            for j in range(self.nlocals):
                a.mov(64, Mem(RBP, -16 - 8 * j), RAX)
        elif self.nlocals <= 64:  # 16 bytes a store; rep stosq takes tens of cycles to start
            low = -8 - 8 * self.nlocals
            a.flogic("xor", 32, XSCRATCH, XSCRATCH)
            for k in range(self.nlocals // 2):
                a.movups(Mem(RBP, low + 16 * k), XSCRATCH)
            if self.nlocals % 2:
                a.movq_from_xmm(64, Mem(RBP, -16), XSCRATCH)
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
            if not self.reachable:
                self.skip_dead()
                continue
            op = code[pos]
            self.pos = pos + 1
            native = len(buf)
            if addr_map[-1][0] != native:
                addr_map.append((native, pos))
            else:
                addr_map[-1] = (native, pos)
            handler = handlers[op]
            if handler is None:
                raise CompileError(f"unsupported instruction 0x{op:02x} at offset 0x{pos:x}")
            handler(self)

    def next_opcode(self):
        try:
            return self.opcode()
        except UnknownInstruction as e:
            raise CompileError(str(e)) from None

_HANDLERS = build_handlers(FunctionCompiler)
