"""DWARF basics shared by the CFI writer and the evaluator: x86-64 register numbers,
LEB128, and location expressions (building them, and evaluating the subset we emit).

Standard library only: the gdb plugin imports this inside gdb's own Python.
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Callable

# DWARF register numbers of the System V x86-64 ABI; 16 is the return-address column,
# 17-32 are xmm0-xmm15.
REGISTER_NUMBERS = {
    "rax": 0, "rdx": 1, "rcx": 2, "rbx": 3, "rsi": 4, "rdi": 5, "rbp": 6, "rsp": 7,
    "r8": 8, "r9": 9, "r10": 10, "r11": 11, "r12": 12, "r13": 13, "r14": 14, "r15": 15,
    "rip": 16, **{f"xmm{n}": 17 + n for n in range(16)},
}
REGISTER_NAMES = {n: name for name, n in REGISTER_NUMBERS.items()}
RETURN_ADDRESS = REGISTER_NUMBERS["rip"]

MASK64 = (1 << 64) - 1


def uleb128(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"uleb128 of a negative value {value}")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sleb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40):
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def read_leb128(data: bytes, pos: int, signed: bool = False) -> tuple[int, int]:
    """(value, position after it)."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            if signed and byte & 0x40:
                value -= 1 << shift
            return value, pos



# ---- location expressions ---------------------------------------------------------------

DW_OP_deref = 0x06
DW_OP_constu = 0x10
DW_OP_consts = 0x11
DW_OP_dup = 0x12
DW_OP_minus = 0x1C
DW_OP_plus = 0x22
DW_OP_plus_uconst = 0x23
DW_OP_lit0 = 0x30
DW_OP_reg0 = 0x50
DW_OP_breg0 = 0x70
DW_OP_regx = 0x90
DW_OP_bregx = 0x92


class Expression(namedtuple("Expression", "code")):
    """A DWARF expression (`code`: its bytes), as a CFA rule (its value is the CFA) or as a
    register rule (the CFA is pushed first; the result is the address the register was
    saved at). A plain namedtuple: this module is standard library only."""

    __slots__ = ()

    def __add__(self, other: "Expression") -> "Expression":
        return Expression(self.code + other.code)


def breg(register: str, offset: int = 0) -> Expression:
    """Push register + offset (DW_OP_breg<n>; never DW_OP_reg<n>, which names a register)."""
    number = REGISTER_NUMBERS[register]
    if number < 32:
        return Expression(bytes([DW_OP_breg0 + number]) + sleb128(offset))
    return Expression(bytes([DW_OP_bregx]) + uleb128(number) + sleb128(offset))


def register_location(register: str) -> Expression:
    """A location that is the register itself (DW_OP_reg<n>): the variable's bytes are its
    low-order ones."""
    number = REGISTER_NUMBERS[register]
    if number < 32:
        return Expression(bytes([DW_OP_reg0 + number]))
    return Expression(bytes([DW_OP_regx]) + uleb128(number))


def chain_expression(chain) -> Expression:
    """An engine `frames.PointerChain` (base, steps, load_last) as a DWARF expression."""
    expr = breg(chain.base, chain.steps[0])
    for step in chain.steps[1:]:
        expr = expr + deref()
        if step:
            expr = expr + (plus_uconst(step) if step > 0 else const(step) + plus())
    return expr + deref() if chain.load_last else expr


def as_expression(value):
    """Rule parts may be PointerChains; everything else passes through unchanged."""
    return chain_expression(value) if hasattr(value, "load_last") else value


def deref() -> Expression:
    return Expression(bytes([DW_OP_deref]))


def plus_uconst(value: int) -> Expression:
    return Expression(bytes([DW_OP_plus_uconst]) + uleb128(value))


def const(value: int) -> Expression:
    """Push a constant, as the shortest of DW_OP_lit<n>, DW_OP_constu and DW_OP_consts."""
    if 0 <= value < 32:
        return Expression(bytes([DW_OP_lit0 + value]))
    if value >= 0:
        return Expression(bytes([DW_OP_constu]) + uleb128(value))
    return Expression(bytes([DW_OP_consts]) + sleb128(value))


def plus() -> Expression:
    return Expression(bytes([DW_OP_plus]))


def minus() -> Expression:
    return Expression(bytes([DW_OP_minus]))


class ExpressionError(Exception):
    """An expression uses an operation we do not evaluate, or reads a register we lack."""


def evaluate(expr: Expression | bytes, registers: dict[str, int],
             read_memory: Callable[[int, int], bytes], push: list[int] | None = None) -> int:
    """The value left on top of the stack; `push` is the initial stack (the CFA, for
    register rules)."""
    code = expr.code if isinstance(expr, Expression) else bytes(expr)
    stack = list(push or [])
    pos = 0
    while pos < len(code):
        op = code[pos]
        pos += 1
        if DW_OP_lit0 <= op < DW_OP_lit0 + 32:
            stack.append(op - DW_OP_lit0)
        elif DW_OP_breg0 <= op < DW_OP_breg0 + 32 or op == DW_OP_bregx:
            if op == DW_OP_bregx:
                number, pos = read_leb128(code, pos)
            else:
                number = op - DW_OP_breg0
            offset, pos = read_leb128(code, pos, signed=True)
            name = REGISTER_NAMES.get(number)
            if name not in registers:
                raise ExpressionError(f"expression reads register {name or number}, which is unknown")
            stack.append((registers[name] + offset) & MASK64)
        elif op == DW_OP_deref:
            stack.append(int.from_bytes(read_memory(stack.pop(), 8), "little"))
        elif op == DW_OP_constu:
            value, pos = read_leb128(code, pos)
            stack.append(value & MASK64)
        elif op == DW_OP_consts:
            value, pos = read_leb128(code, pos, signed=True)
            stack.append(value & MASK64)
        elif op == DW_OP_plus_uconst:
            value, pos = read_leb128(code, pos)
            stack.append((stack.pop() + value) & MASK64)
        elif op == DW_OP_plus:
            b, a = stack.pop(), stack.pop()
            stack.append((a + b) & MASK64)
        elif op == DW_OP_minus:
            b, a = stack.pop(), stack.pop()
            stack.append((a - b) & MASK64)
        elif op == DW_OP_dup:
            stack.append(stack[-1])
        else:
            raise ExpressionError(f"unsupported DWARF operation 0x{op:02x}")
    if not stack:
        raise ExpressionError("expression left an empty stack")
    return stack[-1]
