"""What the compiler's parts share: value-stack entry kinds, scratch registers, builtin
ids, and the small type helpers."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .x86 import R11

if TYPE_CHECKING:
    from ..frontend.instructions import MemArg
    from ..frontend.module import Module
    from ..frontend.types import FuncType
    from .control import Frame
    from .frames import CfaRule
    from .x86 import Assembler, Label, Mem

# Where a value on the abstract stack lives: an Entry's kind.
CONST, REG, LOCAL, SLOT = range(4)

# A value-stack entry: (kind, value, type). `value` is the constant (CONST), the register
# (REG), the local's index (LOCAL, read lazily) or the slot number (SLOT); `type` is
# `simple_type`'s. Plain tuples, because the compiler makes millions of them.
Entry = tuple[int, int, str]

SCRATCH = R11  # never allocated: address and memory-to-memory temporaries
XSCRATCH = 15  # the same among xmm registers

# Builtins: runtime routines called like imports (see runtime.Instance._make_builtins).
B_MEMORY_GROW, B_MEMORY_INIT, B_DATA_DROP, B_MEMORY_COPY, B_MEMORY_FILL, \
    B_TABLE_INIT, B_ELEM_DROP, B_TABLE_COPY, B_TABLE_GROW, B_TABLE_FILL, B_CONT_NEW, \
    B_THROW, B_THROW_REF, B_THROW_INTO, B_CONT_ATTACH = range(15)
NUM_BUILTINS = 15


class CompileError(Exception):
    """A construct the compiler does not support (validation has already passed)."""


def simple_type(t) -> str:
    """The compiler's view of a value type: a number type, or "ref" for any reference."""
    return t if isinstance(t, str) else "ref"


def is_float(ty: str) -> bool:
    return ty == "f32" or ty == "f64"


def width(ty: str) -> int:
    return 32 if ty == "i32" or ty == "f32" else 64


def f32_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f64_bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


@dataclass
class TryRegion:
    """A try_table's code range and catch clauses, for the exception unwinder."""

    start: int  # blob offsets: [start, end) is the body, landing dispatches on the clause
    end: int = 0
    landing: int = 0
    clauses: list = field(default_factory=list)  # [(kind 0..3, tag index or None)]


class CodegenCore(Protocol):
    """What the compiler's mixins (valuestack, control, calls, memory, numeric, switching)
    rely on from each other and from FunctionCompiler, which combines them. Each mixin
    derives from this class, so a type checker sees every cross-mixin use declared here."""

    # state of the function being compiled (see FunctionCompiler.__init__)
    mc: object  # the ModuleCompiler: module-wide tables, function labels, vmctx layout
    asm: Assembler
    module: Module
    code: bytes
    pos: int
    op_offset: int  # the offset of the instruction being compiled
    ftype: FuncType
    nparams: int
    nlocals: int
    local_types: list[str]
    stack: list[Entry]
    frames: list[Frame]
    reachable: bool
    pinned: dict[int, int]  # local index -> register a loop keeps it in
    max_out: int  # outgoing argument words any call needs
    addr_map: list[tuple[int, int]]
    cfi_rows: list[tuple[int, CfaRule]]
    tries: list[TryRegion]
    events: list[tuple[int, int]]  # (native offset, layout.EVENT_*): event sites for debuggers

    # reading immediates (frontend.instructions.BodyReader)
    def u32(self) -> int: ...
    def sleb(self) -> int: ...
    def f32_bits(self) -> int: ...
    def f64_bits(self) -> int: ...
    def memarg(self) -> MemArg: ...
    def heaptype(self) -> str | int: ...
    def valtypes(self) -> list: ...
    def catches(self) -> list: ...
    def handlers(self) -> list: ...
    def block_signature(self) -> tuple[tuple, tuple]: ...

    # the value stack and registers (valuestack)
    def alloc(self, xmm: bool, avoid=()) -> int: ...
    def free(self, reg: int, xmm: bool) -> None: ...
    def claim(self, reg: int) -> None: ...
    def spill(self, i: int) -> None: ...
    def spill_all(self, keep_consts: bool = True) -> None: ...
    def spill_regs(self) -> None: ...
    def slot_mem(self, k: int) -> Mem: ...
    def local_mem(self, i: int) -> Mem: ...
    def load(self, entry: Entry, reg: int) -> None: ...
    def store_entry(self, dst: Mem, entry: Entry) -> None: ...
    def operand(self, entry: Entry): ...
    def push(self, kind: int, val: int, ty: str) -> None: ...
    def push_reg(self, reg: int, ty: str) -> None: ...
    def pop(self) -> Entry: ...
    def pop_reg(self, avoid=()) -> int: ...
    def release(self, entry: Entry) -> None: ...
    def move_to_slots(self, count: int, dst_base: int) -> None: ...

    # control (control, codegen)
    def trap_label(self, code: int, detail: int | None = None) -> Label: ...
    def emit_trap_call(self, code: int) -> None: ...
    def enter_block(self, kind: str, params: tuple, results: tuple) -> Frame: ...
    def set_unreachable(self) -> None: ...
    def branch_if(self, not_taken_cc: int, depth: int) -> None: ...
    def store_results(self, n: int) -> None: ...
    def epilogue(self) -> None: ...
    def reload_pins(self) -> None: ...
    def op_return(self) -> None: ...

    # calls (calls)
    def call_builtin(self, builtin: int, args: list[Entry], result: str | None) -> None: ...
    def call_funcref_in(self, reg: int, jump: bool = False) -> None: ...
    def pop_args(self, n: int) -> list[Entry]: ...

    # shared by instruction families (numeric, switching)
    def flags_result(self, cc: int) -> None: ...
    def trunc(self, ity: str, fty: str, signed: bool, saturating: bool) -> None: ...
    def emit_try_landing(self, frame: Frame) -> None: ...
