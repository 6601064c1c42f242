"""Wasm types as the decoder produces them and the compiler and runtime consume them.

They are immutable values, compared and hashed by their fields: named tuples, which are
cheap to define (a frozen dataclass costs about 0.4 ms to make, at every start-up). As
tuples, two types of different kinds with equal fields compare equal: nothing compares
types across kinds, and the type registry (`Store.canonical_type_ids`) keys them by kind.
"""

from __future__ import annotations

from typing import NamedTuple

NUM_TYPES = ("i32", "i64", "f32", "f64", "v128")
FLOAT_TYPES = ("f32", "f64")


class RefType(NamedTuple):
    """A reference type; `heap` is an abstract heap type name or a module type index."""

    nullable: bool
    heap: str | int

    def __str__(self) -> str:
        return f"(ref {'null ' if self.nullable else ''}{self.heap})"


FUNCREF = RefType(True, "func")
EXTERNREF = RefType(True, "extern")
EXNREF = RefType(True, "exn")

ValType = str | RefType


class FuncType(NamedTuple):
    """A function type: parameter and result value types."""

    params: tuple[ValType, ...]
    results: tuple[ValType, ...]


class ContType(NamedTuple):
    """`(cont $ft)`: a continuation over function type index `func_type`."""

    func_type: int


class StructType(NamedTuple):
    """A GC struct type (decoded for validation's sake; the compiler rejects its instructions)."""

    fields: tuple


class ArrayType(NamedTuple):
    """A GC array type (decoded for validation's sake; the compiler rejects its instructions)."""

    field: object


CompositeType = FuncType | ContType | StructType | ArrayType


class SubType(NamedTuple):
    """One entry of the type section: a composite type with its declared supertypes."""

    composite: CompositeType
    final: bool = True
    supertypes: tuple[int, ...] = ()


class RecGroup(NamedTuple):
    """Type indices `start .. start+len(types)-1` defined together."""

    start: int
    types: list[SubType]


class Limits(NamedTuple):
    """Size limits of a memory (in pages) or a table (in elements)."""

    minimum: int
    maximum: int | None = None
    shared: bool = False
    is64: bool = False


class TableType(NamedTuple):
    """A table: its element reference type and limits."""

    element: RefType
    limits: Limits


class MemoryType(NamedTuple):
    """A linear memory: its limits (and whether it is 64-bit, in `limits`)."""

    limits: Limits


class GlobalType(NamedTuple):
    """A global: its value type and mutability."""

    valtype: ValType
    mutable: bool


class TagType(NamedTuple):
    """A tag's signature is a function type index (results are empty for exception tags)."""

    type_index: int
