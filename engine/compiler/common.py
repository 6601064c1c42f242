"""What the compiler's parts share: value-stack entry kinds, scratch registers, builtin
ids, and the small type helpers."""

from __future__ import annotations

import gc
import struct
from contextlib import contextmanager

from ..records import record
from .x86 import R11, RBP, Mem

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from array import array
    from ..frontend.instructions import MemArg
    from ..frontend.types import FuncType
    from .control import Frame
    from .frames import CfaRule
    from .x86 import Assembler, Label, Mem, Rip

# Where a value on the abstract stack lives: an Entry's kind.
CONST, REG, LOCAL, SLOT = range(4)

# A value-stack entry: (kind, value, type). `value` is the constant (CONST), the register
# (REG), the local's index (LOCAL, read lazily) or the slot number (SLOT); `type` is
# `simple_type`'s. Plain tuples, because the compiler makes millions of them.
Entry = tuple[int, int, str]

SCRATCH = R11  # never allocated: address and memory-to-memory temporaries
XSCRATCH = 15  # the same among xmm registers

# Frame operands [rbp + disp] and [rsp + disp], made once and shared by all functions (a
# Mem is immutable): the locals of each (parameter count, local count), and single ones.
_LOCAL_OPERANDS: dict[tuple[int, int], list[Mem]] = {}
_FRAME_OPERANDS: dict[tuple[int, int], Mem] = {}


def frame_operand(base: int, disp: int) -> Mem:
    """[base + disp] for base rbp or rsp."""
    mem = _FRAME_OPERANDS.get((base, disp))
    if mem is None:
        mem = _FRAME_OPERANDS[base, disp] = Mem(base, disp)
    return mem


def rbp_operand(disp: int) -> Mem:
    return frame_operand(RBP, disp)


def local_operands(nparams: int, nlocals: int) -> list[Mem]:
    """Parameter i at [rbp + 16 + 8*i], declared local j at [rbp - 16 - 8*j] (not to be
    changed: shared)."""
    mems = _LOCAL_OPERANDS.get((nparams, nlocals))
    if mems is None:
        mems = [rbp_operand(16 + 8 * i) for i in range(nparams)]
        mems += [rbp_operand(-16 - 8 * j) for j in range(nlocals)]
        _LOCAL_OPERANDS[nparams, nlocals] = mems
    return mems


# Builtins: runtime routines called like imports (see runtime.Instance._make_builtins).
# Memory and table instructions need none (bulkstubs.py), except table.grow when the
# table has no room left.
B_TABLE_RESERVE, B_CONT_NEW, B_THROW, B_THROW_REF, B_THROW_INTO, B_CONT_ATTACH = range(6)
NUM_BUILTINS = 6


@contextmanager
def no_garbage_collection():
    """Compiling and decoding make millions of small objects and no reference cycles, so
    the cyclic collector's passes over them would only cost time (about 5%)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


class CompileError(Exception):
    """A construct the compiler does not support (validation has already passed)."""


def simple_type(t) -> str:
    """The compiler's view of a value type: a number type, or "ref" for any reference."""
    return t if isinstance(t, str) else "ref"


FLOATS = frozenset(("f32", "f64"))  # `ty in FLOATS`: is_float without a call, in hot paths
is_float = FLOATS.__contains__  # a built-in method: half the cost of a Python function's call


def width(ty: str) -> int:
    return 32 if ty == "i32" or ty == "f32" else 64


def f32_bits(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f64_bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


@record
class TryRegion:
    """A try_table's code range and catch clauses, for the exception unwinder."""

    start: int  # blob offsets: [start, end) is the body, landing dispatches on the clause
    end: int
    landing: int
    clauses: list  # [(kind 0..3, tag index or None)]


class CodegenCore:
    """What the compiler's mixins (valuestack, control, calls, memory, numeric, switching)
    rely on from each other and from FunctionCompiler, which combines them. Each mixin
    derives from this class, so a type checker sees every cross-mixin use declared here."""

    # state of the function being compiled (see FunctionCompiler.__init__)
    mc: object  # the ModuleCompiler: the module, its tables, function labels, vmctx layout
    asm: Assembler
    code: bytes
    pos: int
    op_offset: int  # the offset of the instruction being compiled
    ftype: FuncType
    nlocals: int
    local_types: list[str]
    stack: list[Entry]
    frames: list[Frame]
    reachable: bool
    pinned: dict[int, int]  # local index -> register a loop keeps it in
    # (native offset, {local: register}): from there on, those pinned locals live only in
    # their registers (their slots may be stale); becomes CompiledFunction.pin_ranges
    pin_states: list[tuple[int, dict]]
    ool: list[tuple]  # out-of-line code after the body: traps, branches that move pins
    cached: dict[int, int]  # local index -> register holding a copy since its local.set
    checked_ends: dict[tuple[int, int], int]  # bounds already proven for a local's value
    max_out: int  # outgoing argument words any call needs
    addr_map: array  # (native offset, Wasm offset) pairs, flat: see ModuleCompiler.addr_pairs
    cfi_rows: list[tuple[int, CfaRule]]
    tries: list[TryRegion]
    events: list[tuple[int, int]]  # (native offset, layout.EVENT_*): event sites for debuggers
    type_id_fields: list[tuple[int, int]]  # (imm32 offset, type index): see CompiledFunction

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
    def register_of(self, entry: Entry) -> int | None: ...
    def result_pin(self) -> int | None: ...
    def local_register(self, i: int) -> int | None: ...
    def clear_cache(self) -> None: ...
    def test_entry(self, entry: Entry, size: int) -> None: ...
    def select_on_flags(self, cc: int) -> None: ...
    def push(self, kind: int, val: int, ty: str) -> None: ...
    def push_reg(self, reg: int, ty: str) -> None: ...
    def pop(self) -> Entry: ...
    def pop_reg(self, avoid=()) -> int: ...
    def release(self, entry: Entry) -> None: ...
    def move_to_slots(self, count: int, dst_base: int) -> None: ...
    def float_constant(self, bits: int, ty: str) -> Rip: ...

    # control (control, codegen)
    def trap_label(self, code: int, detail: int | tuple | None = None) -> Label: ...
    def emit_trap_call(self, code: int) -> None: ...
    def enter_block(self, kind: str, params: tuple, results: tuple) -> Frame: ...
    def set_unreachable(self) -> None: ...
    def branch_if(self, not_taken_cc: int, depth: int) -> None: ...
    def store_results(self, n: int) -> None: ...
    def epilogue(self) -> None: ...
    def reload_pins(self, regs: tuple | None = None) -> None: ...
    def sync_pins(self) -> None: ...
    def note_pins(self, pins: dict) -> None: ...
    def pins_in_registers(self) -> dict: ...
    def jump_with_pins(self, frame: Frame) -> None: ...
    def restore_after_call(self, pins: bool = True) -> None: ...
    def op_return(self) -> None: ...

    # calls (calls)
    def call_builtin(self, builtin: int, args: list[Entry], result: str | None) -> None: ...
    def call_funcref_in(self, reg: int, jump: bool = False) -> None: ...
    def pop_args(self, n: int) -> list[Entry]: ...

    # shared by instruction families (numeric, switching)
    def flags_result(self, cc: int) -> None: ...
    def trunc(self, ity: str, fty: str, signed: bool, saturating: bool) -> None: ...
    def emit_try_landing(self, frame: Frame) -> None: ...
