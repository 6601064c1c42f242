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
import struct
from array import array

from .. import layout as L
from ..frontend.instructions import BodyReader, UnknownInstruction
from ..frontend.module import Module
from ..frontend.types import FuncType
from .calls import CallsCodegen
from .common import (SCRATCH, XSCRATCH, CompileError, Entry, TryRegion, is_float, local_operands,
                     no_garbage_collection, simple_type)
from .compiled import CompiledFunction, CompiledModule, PairsView, from_bytes, to_bytes
from .control import ControlCodegen, Frame
from .frames import RBP_FRAME, CfaRule, emit_pop_frame, emit_push_frame
from .handlers import build_handlers
from .memory import MemoryCodegen
from .numeric import NumericCodegen
from .switching import SwitchingCodegen
from .valuestack import GPR_ORDER, XMM_ORDER, ValueStackCodegen
from .x86 import GPR_NAMES, R15, RAX, RBP, RCX, RDI, RSI, RSP, Assembler, B, Label, Mem


# Modules with at least this many functions per process compile in several processes.
PARALLEL_MIN_FUNCTIONS = 256
_SENT, _FAILED = 0, 1  # what a compiler child's message starts with
# A child compiles slower than the parent (copying the pages it writes, encoding its part
# and sending it back), so the parent takes more: on the compile benchmark's module, with
# 1.1 times as much the parent waited 13-18 ms for the child's part, with 1.2 about 6.
FIRST_SHARE = 1.2
FUNCTION_ALIGNMENT = 16
_TRAP_STUB = Mem(R15, L.VM_TRAP_STUB)
_RUNTIME = Mem(R15, L.VM_RUNTIME)
_STACK_LIMIT = Mem(RAX, L.RT_STACK_LIMIT)  # with the runtime's address in rax
_TRAP_EXITS: dict[tuple, bytes] = {}  # (trap code, detail) -> FunctionCompiler.emit_trap_exit's bytes
_ZEROING: dict[int, bytes] = {}  # number of declared locals -> FunctionCompiler.zero_locals' bytes


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
        # Each memory's current size in bytes, as an operand (every bounds check reads it).
        self.memory_sizes = [Mem(R15, vmlayout.memory_size(i)) for i in range(len(self.memories))]
        self.tables = [i.desc for i in module.imports_of("table")] + [t.type for t in module.tables]
        tags = [i.desc for i in module.imports_of("tag")] + list(module.tags)
        self.tag_types = [module.types[t.type_index].composite for t in tags]
        self.asm = Assembler()
        self.imported_funcs = module.num_imported_funcs
        self.func_labels = [Label() for _ in range(self.imported_funcs + len(module.funcs))]
        self.func_types = [module.func_type(i) for i in range(len(self.func_labels))]
        self.global_types = [simple_type(i.desc.valtype) for i in module.imports_of("global")]
        self.global_types += [simple_type(g.type.valtype) for g in module.globals]
        self.jump_tables: list[tuple[int, int, Label]] = []
        # The address map of every function this process compiles, flat (native offset,
        # Wasm offset, ...): a function's map is a view of it, and it is the module's whole
        # table for the binary form and the debug root, without a tuple per instruction.
        self.addr_pairs = array("I")

    def compile(self) -> CompiledModule:
        count = len(self.module.code)
        processes = min(len(os.sched_getaffinity(0)), count // PARALLEL_MIN_FUNCTIONS)
        with no_garbage_collection():
            if processes > 1:
                return self.compile_in_processes(processes)
            code, functions, calls = self.compile_range(0, count)
            return CompiledModule(code, functions, self.vm)

    def compile_range(self, lo: int, hi: int) -> tuple[bytes, list, dict]:
        """Compile defined functions lo..hi-1 into one blob. Also returns the direct calls
        to functions outside the range: {function index: [rel32 field offsets]}."""
        first = self.imported_funcs
        functions = [FunctionCompiler(self, first + k, self.module.code[k]).compile()
                     for k in range(lo, hi)]
        buf = self.asm.buf
        for at, table_pos, label in self.jump_tables:
            self.asm.patch_i32(at, label.pos - table_pos)
        calls = {i: label.fixups for i, label in enumerate(self.func_labels) if label.fixups}
        return bytes(buf), functions, calls

    def split(self, parts: int) -> list[tuple[int, int]]:
        """Consecutive ranges of defined functions, one per process, sized by body bytes so
        that all finish together: the first (this process's) takes FIRST_SHARE times as
        much as each of the others, whose processes copy the pages they touch and send
        their part back."""
        bodies = self.module.code
        shares = [FIRST_SHARE] + [1.0] * (parts - 1)
        total = sum(body.code_end - body.code_start for body in bodies) / sum(shares)
        ranges, lo, done, limit = [], 0, 0, total * shares[0]
        for k, body in enumerate(bodies):
            done += body.code_end - body.code_start
            if done >= limit and len(ranges) < parts - 1:
                ranges.append((lo, k + 1))
                lo = k + 1
                limit += total * shares[len(ranges)]
        ranges.append((lo, len(bodies)))
        return [r for r in ranges if r[0] < r[1]]

    def compile_in_processes(self, parts: int) -> CompiledModule:
        """Compile ranges of functions in forked children, the first range here, as big
        modules are worth it on several cores; then concatenate the blobs and link the
        direct calls across ranges. Children send their part in the binary form."""
        ranges = self.split(parts)
        children = [self._fork_compiler(lo, hi) for lo, hi in ranges[1:]]
        try:
            code, functions, calls = self.compile_range(*ranges[0])
        finally:
            results = [self._collect(pid, pipe) for pid, pipe in children]
        blob = bytearray(code)
        links = [(0, calls)]
        for part_data, part_calls in results:
            shift = len(blob)
            part = from_bytes(part_data, moved_by=shift)
            functions += part.functions
            blob += part.code
            links.append((shift, part_calls))
        starts = {f.index: f.start for f in functions}
        for base, part_calls in links:
            for index, fields in part_calls.items():
                for at in fields:
                    at += base
                    blob[at:at + 4] = struct.pack("<i", starts[index] - (at + 4))
        return CompiledModule(bytes(blob), functions, self.vm)

    def _fork_compiler(self, lo: int, hi: int) -> tuple[int, int]:
        """A child compiling functions lo..hi-1; (its pid, the pipe its result comes on):
        a status byte, then the part's binary form (length-prefixed) and its calls out of
        the range (index, count, field offsets...), or an error message."""
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: compile, send, leave without running any cleanup
            try:
                os.close(read_end)
                try:
                    code, functions, calls = self.compile_range(lo, hi)
                    part = to_bytes(CompiledModule(code, functions))
                    links = array("Q")
                    for index, fields in calls.items():
                        links.extend((index, len(fields), *fields))
                    message = struct.pack("<BQ", _SENT, len(part)) + part + links.tobytes()
                except Exception as error:
                    message = struct.pack("<B", _FAILED) + f"{type(error).__name__}: {error}".encode()
                with os.fdopen(write_end, "wb") as pipe:
                    pipe.write(message)
            finally:
                os._exit(0)
        os.close(write_end)
        return pid, read_end

    @staticmethod
    def _collect(pid: int, pipe: int) -> tuple[memoryview, dict]:
        """A child's part: (its binary form, calls out of its range); CompileError if it failed."""
        with os.fdopen(pipe, "rb") as stream:
            data = stream.read()
        os.waitpid(pid, 0)
        if not data or data[0] != _SENT:
            reason = data[1:].decode(errors="replace") if data else "it died"
            raise CompileError(f"a compiler process failed: {reason}")
        (length,) = struct.unpack_from("<Q", data, 1)
        links = array("Q", data[9 + length:])
        calls, at = {}, 0
        while at < len(links):
            index, count = links[at], links[at + 1]
            calls[index] = list(links[at + 2:at + 2 + count])
            at += 2 + count
        return memoryview(data)[9:9 + length], calls


class FunctionCompiler(BodyReader, ValueStackCodegen, ControlCodegen, CallsCodegen, MemoryCodegen,
                       NumericCodegen, SwitchingCodegen):
    """Compiles one function body, reading its immediates through `BodyReader`. Its parts
    are mixins, one per kind of instruction, that rely on each other only through
    `common.CodegenCore`; this class holds the state they share and the main loop."""

    def __init__(self, mc: ModuleCompiler, func_index: int, body):
        # At most 29 attributes, BodyReader's two included: CPython 3.11 keeps that many
        # inline in the instance; one more turns them into a dictionary and slows the whole
        # compiler down by 8% (tests/test_engine.py checks the count).
        super().__init__(mc.module.data, body.code_start)
        self.mc = mc
        self.asm = mc.asm
        self.index = func_index
        ft: FuncType = mc.func_types[func_index]
        self.local_types = [simple_type(t) for t in ft.params] + [simple_type(t) for t in body.locals]
        self.nlocals = len(body.locals)
        self.local_mems = local_operands(len(ft.params), self.nlocals)
        self.slot_mems: list[Mem] = []
        self.stack: list[Entry] = []
        self.max_out = 0
        self.free_gpr = list(GPR_ORDER)
        self.free_xmm = list(XMM_ORDER)
        self.frames: list[Frame] = []
        self.reachable = True
        self.dead_depth = 0
        # (label, trap code, wasm offset, what details the trap, pins in registers there),
        # or for a branch that leaves loops which pinned locals
        # (label, None, wasm offset, (move_pins' arguments, target), pins in registers there)
        self.ool: list[tuple] = []
        self.addr_map = mc.addr_pairs  # this function's pairs are appended to the module's
        self.cfi_rows: list[tuple[int, CfaRule]] = []
        self.events: list[tuple[int, int]] = []  # (native offset, layout.EVENT_*)
        self.op_offset = 0
        self.tries: list[TryRegion] = []
        self.type_id_fields: list[tuple[int, int]] = []
        self.pinned: dict[int, int] = {}  # local index -> register the loop keeps it in
        self.pin_states: list[tuple[int, dict]] = [(0, {})]  # see CodegenCore
        self.cached: dict[int, int] = {}  # local index -> register caching its value
        self.loop_uses: dict[int, tuple] = {}  # loop body offset -> (local uses, writes)
        self.constants: dict[tuple[int, str], Label] = {}  # float constants -> pool words
        # (memory, local) -> the largest access end proven in bounds for the local's value
        # since the last join (memories never shrink): later accesses below it need no check
        self.checked_ends: dict[tuple[int, int], int] = {}

    @property
    def ftype(self) -> FuncType:
        return self.mc.func_types[self.index]

    # ---- function structure ----------------------------------------------------------

    def trap_label(self, code: int, detail: int | tuple | None = None) -> Label:
        """A label for out-of-line trap code; `detail` names a register whose value goes
        into the trap message (the element index of an uninitialized table element), or a
        (register, addend) pair whose sum does (the end of a memory access)."""
        label = Label()
        self.ool.append((label, code, self.op_offset, detail, self.pin_states[-1][1]))
        return label

    def emit_trap_exit(self, code: int, detail):
        """The end of a trap's out-of-line code: its detail (see trap_label) to the runtime,
        then the trap stub's call. The bytes depend on nothing else, and a function has many
        such exits (one per bounds check), so each pair is encoded once."""
        a = self.asm
        known = _TRAP_EXITS.get((code, detail))
        if known is not None:
            a.repeat(known)
            return
        start = a.pos
        value = detail
        if isinstance(detail, tuple):
            a.lea(SCRATCH, Mem(*detail))
            value = SCRATCH
        if value is not None:
            a.mov(64, RSI, _RUNTIME)
            a.mov(64, Mem(RSI, L.RT_TRAP_DETAIL), value)
        self.emit_trap_call(code)
        _TRAP_EXITS[(code, detail)] = a.encoded_since(start)

    def emit_trap_call(self, code: int):
        self.asm.mov_imm_noflags(RSI, code)
        self.asm.call_indirect(_TRAP_STUB)

    def compile(self) -> CompiledFunction:
        a = self.asm
        start = a.pos
        self.mc.func_labels[self.index].pos = None
        a.bind(self.mc.func_labels[self.index])
        self.op_offset = self.pos
        first_pair = len(self.addr_map)
        self.addr_map.extend((start, self.pos))
        # Prologue: standard rbp frame, vmctx saved at rbp-8, stack-limit check.
        emit_push_frame(a, self.cfi_rows)
        a.push(R15)
        a.mov(64, RAX, _RUNTIME)
        frame_fixup_lea = a.lea_patchable(SCRATCH, RSP)  # the frame's lowest address
        a.alu("cmp", 64, SCRATCH, _STACK_LIMIT)
        a.jcc(B, self.trap_label(L.TRAP_STACK_EXHAUSTED))
        frame_fixup_sub = a.alu_imm_patchable("sub", 64, RSP)
        if self.nlocals:
            self.zero_locals()
        results = tuple(simple_type(t) for t in self.ftype.results)
        self.frames.append(Frame("func", Label(), 0, (), results, self.pinned, {}))
        self.body()
        for label, code, offset, detail, pins in self.ool:
            self.addr_map.extend((a.pos, offset))
            a.bind(label)
            self.note_pins(pins)
            if code is None:  # a conditional branch out of loops that pinned locals
                moves, target = detail
                self.move_pins(*moves)
                a.jmp(target)
                continue
            self.sync_pins()  # a debugger reads the locals of a trapping frame from slots
            self.emit_trap_exit(code, detail)
        self.note_pins({})
        self.emit_constants()
        frame_size = 8 * (self.nlocals + len(self.slot_mems) + self.max_out)  # slots ever used
        if frame_size % 16 != 8:
            frame_size += 8
        a.patch_i32(frame_fixup_lea, -(frame_size + 8))
        a.patch_i32(frame_fixup_sub, frame_size)
        self.tries.sort(key=lambda t: -t.start)
        addr_map = PairsView(self.addr_map, first_pair, (len(self.addr_map) - first_pair) // 2)
        end = a.pos
        # The next function starts at a multiple of 16, as x86-64 compilers place functions.
        # So does every part of a module compiled in several processes, and a part's float
        # constants stay 8-byte aligned wherever it lands: the code does not depend on how
        # the module was split.
        a.align(FUNCTION_ALIGNMENT)
        return CompiledFunction(self.index, start, end, addr_map, self.cfi_rows, self.nlocals,
                                frame_size, self.tries, self.type_id_fields, self.events,
                                self.pin_ranges(end))

    def pin_ranges(self, end: int) -> list:
        """pin_states as (start, end, local, register name) ranges, by local and start,
        `end` closing the last state; ranges that meet are joined."""
        states = self.pin_states
        runs: dict[int, list] = {}  # local -> [[start, end, register], ...] in order
        for k in range(1, len(states)):
            start, pins = states[k]
            stop = states[k + 1][0] if k + 1 < len(states) else end
            for index, reg in pins.items():
                local_runs = runs.get(index)
                if local_runs is None:
                    runs[index] = [[start, stop, reg]]
                elif local_runs[-1][1] == start and local_runs[-1][2] == reg:
                    local_runs[-1][1] = stop
                else:
                    local_runs.append([start, stop, reg])
        ranges = []
        for index in sorted(runs):
            xmm = is_float(self.local_types[index])
            for start, stop, reg in runs[index]:
                ranges.append((start, stop, index, f"xmm{reg}" if xmm else GPR_NAMES[reg]))
        return ranges

    def zero_locals(self):
        """Zero the declared locals' slots: code that depends on their number alone, so
        encoded once for each number."""
        a = self.asm
        known = _ZEROING.get(self.nlocals)
        if known is not None:
            a.repeat(known)
            return
        start = a.pos
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
        _ZEROING[self.nlocals] = a.encoded_since(start)

    def epilogue(self):
        a = self.asm
        emit_pop_frame(a, self.cfi_rows)
        a.ret()
        self.cfi_rows.append((a.pos, RBP_FRAME))

    def body(self):
        handlers = _HANDLERS
        code = self.code
        addr_map = self.addr_map
        buf = self.asm.buf
        frames = self.frames
        while frames:
            pos = self.pos
            self.op_offset = pos
            if not self.reachable:
                self.skip_dead()
                continue
            op = code[pos]
            self.pos = pos + 1
            native = len(buf)
            if addr_map[-2] != native:
                addr_map.append(native)
                addr_map.append(pos)
            else:
                addr_map[-1] = pos
            handlers[op](self)

    def op_unsupported(self):
        """The handler of every opcode byte the compiler does not implement."""
        op, pos = self.code[self.op_offset], self.op_offset
        raise CompileError(f"unsupported instruction 0x{op:02x} at offset 0x{pos:x}")

    def next_opcode(self):
        try:
            return self.opcode()
        except UnknownInstruction as e:
            raise CompileError(str(e)) from None

_HANDLERS = build_handlers(FunctionCompiler)
