"""Wasm types as the decoder produces them and the compiler and runtime consume them.

They are immutable values, compared and hashed by their fields: named tuples, which are
cheap to define (a frozen dataclass costs about 0.4 ms to make, at every start-up). As
tuples, two types of different kinds with equal fields compare equal: nothing compares
types across kinds, and the type registry (`Store.canonical_type_ids`) keys them by kind.
"""

from __future__ import annotations

from ..records import record


NUM_TYPES = ("i32", "i64", "f32", "f64", "v128")
FLOAT_TYPES = ("f32", "f64")


@record
class RefType:
    """A reference type; `heap` is an abstract heap type name or a module type index."""

    nullable: bool
    heap: str | int

    def __str__(self) -> str:
        return f"(ref {'null ' if self.nullable else ''}{self.heap})"


FUNCREF = RefType(True, "func")
EXTERNREF = RefType(True, "extern")
EXNREF = RefType(True, "exn")

ValType = str | RefType


@record
class FuncType:
    """A function type: parameter and result value types."""

    params: tuple[ValType, ...]
    results: tuple[ValType, ...]


@record
class ContType:
    """`(cont $ft)`: a continuation over function type index `func_type`."""

    func_type: int


@record
class StructType:
    """A GC struct type (decoded for validation's sake; the compiler rejects its instructions)."""

    fields: tuple


@record
class ArrayType:
    """A GC array type (decoded for validation's sake; the compiler rejects its instructions)."""

    field: object


CompositeType = FuncType | ContType | StructType | ArrayType


@record
class SubType:
    """One entry of the type section: a composite type with its declared supertypes."""

    composite: CompositeType
    final: bool = True
    supertypes: tuple[int, ...] = ()


@record
class RecGroup:
    """Type indices `start .. start+len(types)-1` defined together."""

    start: int
    types: list[SubType]


@record
class Limits:
    """Size limits of a memory (in pages) or a table (in elements)."""

    minimum: int
    maximum: int | None = None
    shared: bool = False
    is64: bool = False


@record
class TableType:
    """A table: its element reference type and limits."""

    element: RefType
    limits: Limits


@record
class MemoryType:
    """A linear memory: its limits (and whether it is 64-bit, in `limits`)."""

    limits: Limits


@record
class GlobalType:
    """A global: its value type and mutability."""

    valtype: ValType
    mutable: bool


@record
class TagType:
    """A tag's signature is a function type index (results are empty for exception tags)."""

    type_index: int
