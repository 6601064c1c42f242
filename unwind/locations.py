"""Wasm DWARF location expressions -> native ones, for the frames our compiler generates.

A Wasm expression names Wasm places: `DW_OP_WASM_location` kind 0 (a local), 1 or 3 (a
global), 2 (an operand-stack slot); `DW_OP_fbreg` (the frame base, itself a local or a
global holding the shadow-stack pointer); `DW_OP_addr` and `DW_OP_deref` (linear memory).
Natively:

* local i lives in its frame slot, at CFA + 8i for a parameter and CFA - 32 - 8j for
  non-parameter local j (rbp + 16 + 8i and rbp - 16 - 8j, with CFA = rbp + 16). The CFA
  keeps parameters readable even in the prologue, before rbp is set. Where a loop keeps
  the local in a register only (`translate`'s `registers`), that register: the location
  DW_OP_reg<n> when the variable is the local, its value (DW_OP_breg<n> 0; an i32 is kept
  zero-extended there) inside a computation;
* the vmctx is at CFA - 24 ([rbp-8]); a global's cell address is at vmctx + its offset;
  memory 0's base at vmctx + VM_MEM_BASE;
* a linear-memory address becomes a native one by adding that base;
* an operand-stack slot has no fixed native home (the value may sit in any register), so a
  variable kept there is optimized out: never a wrong value.

Anything else the translator does not know also makes the location optimized out.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass, field

from elftools.dwarf.dwarf_expr import DWARFExprParser

from stackstitch.engine.layout import FRAME_VMCTX, VM_MEM_BASE

from .dwarf import breg, const, minus, plus, plus_uconst, register_location, sleb128, uleb128, Expression

# The frame layout of generated code (engine/DESIGN.md), from the CFA = rbp + 16.
CFA_TO_VMCTX = FRAME_VMCTX - 16  # the CFA is rbp + 16


def cfa_to_slot(local: int, nparams: int) -> int:
    """Where Wasm local `local` lives: [rbp+16+8i] for parameter i, [rbp-16-8j] for
    non-parameter local j."""
    return 8 * local if local < nparams else -32 - 8 * (local - nparams)


@functools.cache
def slot_address(local: int, nparams: int) -> bytes:
    """An expression pushing the address of a local's frame slot (every variable of the
    Wasm-level info has one: made once per place)."""
    builder = _Builder(Frame([], nparams, None, []))
    builder.cfa_plus(cfa_to_slot(local, nparams))
    return bytes(builder.code)

DW_OP_deref = 0x06
DW_OP_deref_size = 0x94
DW_OP_piece = 0x93
DW_OP_stack_value = 0x9F
DW_OP_call_frame_cfa = 0x9C
DW_OP_push_object_address = 0x97
DW_OP_breg16 = 0x80  # rip
DW_OP_dup = 0x12
DW_OP_swap = 0x16
DW_OP_const1u = 0x08
DW_OP_shr = 0x25
DW_OP_lit0 = 0x30
DW_OP_eq = 0x29
DW_OP_lt = 0x2D
DW_OP_and = 0x1A
DW_OP_bra = 0x28
DW_OP_skip = 0x2F

WASM_LOCAL, WASM_GLOBAL, WASM_OPERAND_STACK, WASM_GLOBAL_U32 = 0, 1, 2, 3

# Stack operations copied unchanged: they compute on values, not on Wasm places.
_PLAIN_OPERATIONS = {
    "DW_OP_dup", "DW_OP_drop", "DW_OP_over", "DW_OP_swap", "DW_OP_rot", "DW_OP_abs", "DW_OP_and",
    "DW_OP_div", "DW_OP_minus", "DW_OP_mod", "DW_OP_mul", "DW_OP_neg", "DW_OP_not", "DW_OP_or",
    "DW_OP_plus", "DW_OP_shl", "DW_OP_shr", "DW_OP_shra", "DW_OP_xor", "DW_OP_eq", "DW_OP_ge",
    "DW_OP_gt", "DW_OP_le", "DW_OP_lt", "DW_OP_ne", "DW_OP_nop",
}
_CONSTANTS = {"DW_OP_addr", "DW_OP_const1u", "DW_OP_const1s", "DW_OP_const2u", "DW_OP_const2s",
              "DW_OP_const4u", "DW_OP_const4s", "DW_OP_const8u", "DW_OP_const8s", "DW_OP_constu",
              "DW_OP_consts"}


class Unsupported(Exception):
    """The expression uses something with no exact native equivalent."""


@dataclass
class Frame:
    """What a translation needs to know about the function the expression runs in."""
    local_types: list  # Wasm value types of parameters then locals
    nparams: int
    global_offset: object  # callable: global index -> vmctx offset of its cell pointer
    global_types: list
    frame_base: list | None = None  # the subprogram's DW_AT_frame_base, parsed
    address_size: int = 4  # of linear-memory addresses (8 for memory64)


@dataclass
class Native:
    """A translated location. `needs_body`: it reads a non-parameter slot or the vmctx,
    which only hold their values after the native prologue; `uses_frame_base`: it is
    relative to the producer's frame base, set by the Wasm-level prologue; `locals`: the
    Wasm locals whose contents it depends on."""
    code: bytes
    needs_body: bool = False
    uses_frame_base: bool = False
    locals: frozenset = frozenset()


@dataclass
class _Builder:
    frame: Frame
    registers: dict = field(default_factory=dict)  # local index -> the register it lives in
    code: bytearray = field(default_factory=bytearray)
    needs_body: bool = False
    uses_frame_base: bool = False
    locals: set = field(default_factory=set)

    def emit(self, expression: Expression | bytes) -> None:
        self.code += expression.code if isinstance(expression, Expression) else expression

    def cfa_plus(self, offset: int) -> None:
        self.code.append(DW_OP_call_frame_cfa)
        if offset > 0:
            self.emit(plus_uconst(offset))
        elif offset < 0:
            self.emit(const(-offset) + minus())

    def local_address(self, index: int) -> None:
        if index >= len(self.frame.local_types):
            raise Unsupported(f"local {index} does not exist")
        self.locals.add(index)
        self.needs_body |= index >= self.frame.nparams
        self.cfa_plus(cfa_to_slot(index, self.frame.nparams))

    def vmctx(self) -> None:
        self.needs_body = True
        self.cfa_plus(CFA_TO_VMCTX)
        self.code.append(DW_OP_deref)

    def global_address(self, index: int) -> None:
        if index >= len(self.frame.global_types) or self.frame.global_offset is None:
            raise Unsupported(f"global {index} is not known")
        self.vmctx()
        self.emit(plus_uconst(self.frame.global_offset(index)))
        self.code.append(DW_OP_deref)

    def place_address(self, kind: int, index: int) -> str:
        """Push the native address of a Wasm local or global; its Wasm value type."""
        if kind == WASM_LOCAL:
            self.local_address(index)
            return self.frame.local_types[index]
        if kind in (WASM_GLOBAL, WASM_GLOBAL_U32):
            self.global_address(index)
            return self.frame.global_types[index]
        raise Unsupported("the value lives on the Wasm operand stack")

    def in_register(self, kind: int, index: int) -> str | None:
        """The register a Wasm local lives in here, or None (a global, or a local in its slot)."""
        return self.registers.get(index) if kind == WASM_LOCAL else None

    def place_value(self, kind: int, index: int) -> None:
        register = self.in_register(kind, index)
        if register is None:
            self.load(self.place_address(kind, index))
            return
        if register.startswith("xmm"):
            raise Unsupported("a float local's register inside a computation")
        self.locals.add(index)
        self.emit(breg(register))

    def zero_extend(self) -> None:
        """Make a 4-byte value 8 bytes wide: lldb keeps the width of DW_OP_deref_size's
        result, and would not read an 8-byte pointer from it."""
        self.emit(const(0) + plus())

    def load(self, value_type: str) -> None:
        if value_type in ("i32", "f32"):
            self.code += bytes([DW_OP_deref_size, 4])
        elif value_type in ("i64", "f64"):
            self.code.append(DW_OP_deref)
        else:
            raise Unsupported(f"a {value_type} value")

    def memory_base(self) -> None:
        self.vmctx()
        self.emit(plus_uconst(VM_MEM_BASE))
        self.code.append(DW_OP_deref)

    def to_native_address(self) -> None:
        """Top of stack: a linear-memory address -> the native one."""
        self.memory_base()
        self.emit(plus())


def memory_base_expression() -> bytes:
    """Push the native base of memory 0 of the frame being looked at (through its vmctx)."""
    builder = _Builder(Frame([], 0, None, []))
    builder.memory_base()
    return bytes(builder.code)


def relocation_expression(code_start: int, code_end: int) -> bytes:
    """DW_AT_data_location of an object in linear memory: its Wasm address (the object
    address a debugger pushes) plus the memory base of the frame being looked at."""
    return in_code_guard(code_start, code_end,
                         bytes([DW_OP_push_object_address]) + memory_base_expression() + plus().code)


def in_code_guard(code_start: int, code_end: int, expression: bytes) -> bytes:
    """`expression` if the frame's pc lies in [code_start, code_end), else address 0, which
    no debugger can read: an expression that finds the memory base through the frame
    would read garbage in a frame of other code (the host's, or another module's)."""
    check = bytes([DW_OP_breg16]) + sleb128(0) + const(code_start).code + minus().code
    check += bytes([DW_OP_dup, DW_OP_const1u, 32, DW_OP_shr, DW_OP_lit0, DW_OP_eq, DW_OP_swap])
    check += const(code_end - code_start).code + bytes([DW_OP_lt, DW_OP_and])
    fail = bytes([DW_OP_lit0, DW_OP_skip]) + struct.pack("<h", len(expression))
    return check + bytes([DW_OP_bra]) + struct.pack("<h", len(fail)) + fail + expression


def parser(structs) -> DWARFExprParser:
    """A parser for one unit's expressions (building one costs far more than using it)."""
    return DWARFExprParser(structs)


def parse(expression: list[int] | bytes, expression_parser: DWARFExprParser) -> list:
    return expression_parser.parse_expr(list(expression))


def translate(ops: list, frame: Frame, wasm_pointer: bool = False, size: int | None = None,
              registers: dict | None = None) -> Native:
    """A parsed Wasm location -> native; `wasm_pointer`: the variable is a Wasm pointer,
    natively typed as an 8-byte pointer, so its 4 bytes become a zero-extended value;
    `size`: the variable's size in bytes, if known; `registers`: the locals that live in
    registers where this translation applies (local index -> register name). Raises
    Unsupported.

    A value in pieces must be complete: lldb shows a missing piece as zero bytes, so a
    partly optimized-out variable is wholly optimized out."""
    pieces = _split_pieces(ops)
    builder = _Builder(frame, registers or {})
    if len(pieces) == 1 and pieces[0][1] is None:
        _location(builder, pieces[0][0], whole_pointer=wasm_pointer)
    else:
        if wasm_pointer:
            raise Unsupported("a pointer in pieces")
        if size is None or sum(piece_size for _, piece_size in pieces) < size:
            raise Unsupported("pieces that do not cover the whole value")
        for piece_ops, piece_size in pieces:
            if not piece_ops:
                raise Unsupported("a piece that is optimized out")
            _location(builder, piece_ops, whole_pointer=False)
            builder.code.append(DW_OP_piece)
            builder.code += uleb128(piece_size)
    return Native(bytes(builder.code), builder.needs_body, builder.uses_frame_base, frozenset(builder.locals))


def _split_pieces(ops: list) -> list[tuple[list, int | None]]:
    """[(operations, piece size)], or [(operations, None)] for a location in one piece."""
    pieces, current = [], []
    for op in ops:
        if op.op_name == "DW_OP_piece":
            pieces.append((current, op.args[0]))
            current = []
        else:
            current.append(op)
    if not pieces:
        return [(current, None)]
    if current:
        raise Unsupported("operations after the last piece")
    return pieces


def _location(builder: _Builder, ops: list, whole_pointer: bool) -> None:
    """One piece's location: a memory location (native address) or a value."""
    names = [op.op_name for op in ops]
    if not ops:
        raise Unsupported("an empty location")
    if names[0] == "DW_OP_WASM_location" and (len(ops) == 1 or names[1:] == ["DW_OP_stack_value"]):
        kind, index = ops[0].args  # the variable is that place
        register = builder.in_register(kind, index)
        if whole_pointer:
            builder.place_value(kind, index)
            builder.zero_extend()
            builder.code.append(DW_OP_stack_value)
        elif register is not None:
            builder.locals.add(index)
            builder.emit(register_location(register))
        else:
            value_type = builder.place_address(kind, index)
            if len(ops) == 2:
                builder.load(value_type)
                builder.code.append(DW_OP_stack_value)
        return
    is_value = names[-1] == "DW_OP_stack_value"
    _compute(builder, ops[:-1] if is_value else ops)
    if is_value:
        if whole_pointer:
            builder.zero_extend()
        builder.code.append(DW_OP_stack_value)
    elif whole_pointer:
        builder.to_native_address()
        builder.code += bytes([DW_OP_deref_size, 4])
        builder.zero_extend()
        builder.code.append(DW_OP_stack_value)
    else:
        builder.to_native_address()


def _compute(builder: _Builder, ops: list) -> None:
    """Stack operations over Wasm values; Wasm places push their values."""
    for op in ops:
        name, args = op.op_name, op.args
        if name == "DW_OP_WASM_location":
            builder.place_value(*args)
        elif name == "DW_OP_fbreg":
            _frame_base_value(builder)
            if args[0]:
                builder.emit(const(args[0]) + plus() if args[0] < 0 else plus_uconst(args[0]))
        elif name in _CONSTANTS:
            builder.emit(const(args[0]))
        elif name.startswith("DW_OP_lit"):
            builder.emit(const(int(name[len("DW_OP_lit"):])))
        elif name == "DW_OP_plus_uconst":
            builder.emit(plus_uconst(args[0]))
        elif name in _PLAIN_OPERATIONS:
            builder.code.append(op.op)
        elif name in ("DW_OP_deref", "DW_OP_deref_size"):
            size = args[0] if args else builder.frame.address_size
            builder.to_native_address()
            builder.code += bytes([DW_OP_deref_size, size])
        else:
            raise Unsupported(f"{name} in a Wasm location")


def _frame_base_value(builder: _Builder) -> None:
    base = builder.frame.frame_base
    if not base:
        raise Unsupported("DW_OP_fbreg without a frame base")
    builder.uses_frame_base = True
    names = [op.op_name for op in base]
    # LLVM's frame base is the value of a local (the function's shadow-stack pointer) or,
    # for frameless functions, of the shadow-stack pointer global, which holds the
    # innermost frame's value: right in frame 0 only, so not used.
    if names[0] != "DW_OP_WASM_location" or names[1:] not in ([], ["DW_OP_stack_value"]):
        raise Unsupported("a frame base that is not a local's value")
    if base[0].args[0] != WASM_LOCAL:
        raise Unsupported("a frame base in a global")
    builder.place_value(*base[0].args)

