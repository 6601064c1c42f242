"""Wasm types as the decoder produces them and the compiler and runtime consume them."""

from __future__ import annotations

from dataclasses import dataclass, field

NUM_TYPES = ("i32", "i64", "f32", "f64", "v128")
FLOAT_TYPES = ("f32", "f64")


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class FuncType:
    """A function type: parameter and result value types."""

    params: tuple[ValType, ...]
    results: tuple[ValType, ...]


@dataclass(frozen=True)
class ContType:
    """`(cont $ft)`: a continuation over function type index `func_type`."""

    func_type: int


@dataclass(frozen=True)
class StructType:
    """A GC struct type (decoded for validation's sake; the compiler rejects its instructions)."""

    fields: tuple


@dataclass(frozen=True)
class ArrayType:
    """A GC array type (decoded for validation's sake; the compiler rejects its instructions)."""

    field: object


CompositeType = FuncType | ContType | StructType | ArrayType


@dataclass(frozen=True)
class SubType:
    """One entry of the type section: a composite type with its declared supertypes."""

    composite: CompositeType
    final: bool = True
    supertypes: tuple[int, ...] = ()


@dataclass
class RecGroup:
    """Type indices `start .. start+len(types)-1` defined together."""

    start: int
    types: list[SubType] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    """Size limits of a memory (in pages) or a table (in elements)."""

    minimum: int
    maximum: int | None = None
    shared: bool = False
    is64: bool = False


@dataclass(frozen=True)
class TableType:
    """A table: its element reference type and limits."""

    element: RefType
    limits: Limits


@dataclass(frozen=True)
class MemoryType:
    """A linear memory: its limits (and whether it is 64-bit, in `limits`)."""

    limits: Limits


@dataclass(frozen=True)
class GlobalType:
    """A global: its value type and mutability."""

    valtype: ValType
    mutable: bool


@dataclass(frozen=True)
class TagType:
    """A tag's signature is a function type index (results are empty for exception tags)."""

    type_index: int
