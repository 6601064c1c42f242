"""The decoded form of a Wasm module: what `binary.decode_module` returns.

Its parts are named tuples (never changed once decoded; cheaper to define at start-up
than dataclasses) and the module a plain class the decoder fills in.
"""

from __future__ import annotations

import functools

from ..records import record
from .types import (FuncType, GlobalType, MemoryType, RecGroup, RefType, SubType,
                    TableType, TagType, ValType)

# A constant expression, decoded: a list of (opcode name, immediate) such as
# [("i32.const", 5)], [("global.get", 0), ("i32.const", 1), ("i32.add", None)],
# [("ref.null", RefType)], [("ref.func", 3)], [("f64.const", raw_bits_int)].
ConstExpr = list


@record
class Import:
    """One import: where it comes from, its kind and its type."""

    module: str
    name: str
    kind: str  # "func" | "table" | "memory" | "global" | "tag"
    desc: int | TableType | MemoryType | GlobalType | TagType  # func: type index


@record
class Export:
    """One export: its name and what it exports."""

    name: str
    kind: str  # "func" | "table" | "memory" | "global" | "tag"
    index: int


@record
class Global:
    """A defined global: its type and initializer."""

    type: GlobalType
    init: ConstExpr


@record
class Table:
    """A defined table: its type and, in the initializer form, its initial element."""

    type: TableType
    init: ConstExpr | None = None  # the table-with-initializer form


@record
class Element:
    """An element segment."""

    mode: str  # "active" | "passive" | "declarative"
    reftype: RefType
    items: list[ConstExpr]  # a function index list decodes to [("ref.func", i)] items
    table: int = 0
    offset: ConstExpr | None = None


@record
class Data:
    """A data segment."""

    mode: str  # "active" | "passive"
    data: bytes
    memory: int = 0
    offset: ConstExpr | None = None


@record
class FunctionBody:
    """A defined function's locals and where its instructions lie in the module."""

    locals: list[ValType]  # the declared locals, expanded (parameters not included)
    code_start: int  # module offset of the first instruction
    code_end: int  # module offset just past the function's final `end`


class Module:
    """A decoded module; `data` is its bytes, into which bodies and names point."""

    def __init__(self, data: bytes):
        self.data = data
        self.types: list[SubType] = []
        self.rec_groups: list[RecGroup] = []
        self.imports: list[Import] = []
        self.funcs: list[int] = []  # type index of each defined function
        self.tables: list[Table] = []
        self.memories: list[MemoryType] = []
        self.globals: list[Global] = []
        self.tags: list[TagType] = []
        self.exports: list[Export] = []
        self.start: int | None = None
        self.elements: list[Element] = []
        self.datas: list[Data] = []
        self.data_count: int | None = None
        self.code: list[FunctionBody] = []
        self.name: str | None = None  # module name from the name section
        self.func_names: dict[int, str] = {}  # index space incl. imports
        self.local_names: dict[int, dict[int, str]] = {}
        self.tag_names: dict[int, str] = {}  # index space incl. imports
        # "table" | "memory" | "global" -> {index (imports included): name-section name}
        self.entity_names: dict[str, dict[int, str]] = {}
        # Module offsets: custom sections' contents (after the name), by name (the first of
        # each); the code section's contents (DWARF code addresses count from there).
        self.custom_sections: dict[str, tuple[int, int]] = {}
        self.code_section_start: int | None = None

    def imports_of(self, kind: str) -> list[Import]:
        return [i for i in self.imports if i.kind == kind]

    @property
    def num_imported_funcs(self) -> int:
        return sum(1 for i in self.imports if i.kind == "func")

    def func_type_index(self, func_index: int) -> int:
        """Type index of a function in the full index space (imports first)."""
        imported = [i.desc for i in self.imports if i.kind == "func"]
        if func_index < len(imported):
            return imported[func_index]
        return self.funcs[func_index - len(imported)]

    def func_type(self, func_index: int) -> FuncType:
        return self.types[self.func_type_index(func_index)].composite

    def func_name(self, func_index: int) -> str:
        """The name-section name, else an export name, else `wasm-function[N]`."""
        name = self.func_names.get(func_index) or self._export_names.get(("func", func_index))
        return name or f"wasm-function[{func_index}]"

    def tag_name(self, tag_index: int) -> str:
        """The name-section name, else an export name, else `module.name` of its import,
        else `tag[N]`: one scheme for trap reports, the debug root, gdb and perf."""
        name = self.tag_names.get(tag_index) or self._export_names.get(("tag", tag_index))
        if name is None:
            imported = self.imports_of("tag")
            if tag_index < len(imported):
                name = f"{imported[tag_index].module}.{imported[tag_index].name}"
        return name or f"tag[{tag_index}]"

    def entity_name(self, kind: str, index: int) -> str:
        """A table's, memory's or global's name: the name section's, else an export name,
        else `kind[N]` (for debuggers: `info wasm`)."""
        name = self.entity_names.get(kind, {}).get(index) or self._export_names.get((kind, index))
        return name or f"{kind}[{index}]"

    @functools.cached_property
    def _export_names(self) -> dict[tuple[str, int], str]:
        names: dict[tuple[str, int], str] = {}
        for export in self.exports:
            names.setdefault((export.kind, export.index), export.name)
        return names
