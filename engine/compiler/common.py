"""What the compiler's parts share: value-stack entry kinds, scratch registers, builtin
ids, and the small type helpers."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .x86 import R11

# Where a value on the abstract stack lives: (kind, value, type).
CONST, REG, LOCAL, SLOT = range(4)

SCRATCH = R11  # never allocated: address and memory-to-memory temporaries
XSCRATCH = 15  # the same among xmm registers

# Builtins: runtime routines called like imports (see runtime.Instance._make_builtins).
B_MEMORY_GROW, B_MEMORY_INIT, B_DATA_DROP, B_MEMORY_COPY, B_MEMORY_FILL, \
    B_TABLE_INIT, B_ELEM_DROP, B_TABLE_COPY, B_TABLE_GROW, B_TABLE_FILL, B_CONT_NEW, \
    B_THROW, B_THROW_REF, B_THROW_INTO = range(14)
NUM_BUILTINS = 14


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
