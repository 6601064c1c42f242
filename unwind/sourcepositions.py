"""Source positions of Wasm code offsets, from the module's own DWARF: what trap reports
print for each frame.

A code offset gets its line-table row (file, line, column) and the chain of inlined calls
around it, innermost first: the function inlined deepest, at the row; then each function
it was inlined into, at the call site (DW_AT_call_file/line/column). Only the unit that
covers the offset is read: its line program once, its DIEs once.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from .sourcelines import WasmLineTable, read_line_table
from .wasmdwarf import PARSE_ERRORS, WasmDwarf, comp_dir, die_ranges, from_wasm_tools, text, unit_base

SCOPE_TAGS = ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine", "DW_TAG_lexical_block")


@dataclass(frozen=True)
class SourcePosition:
    function: str | None  # the DWARF name of the function whose code this is
    file: str
    line: int
    column: int  # 0 if unknown


@dataclass
class _Scope:
    """A subprogram or an inlined call, with its code ranges and its inner scopes."""
    die: object
    ranges: list
    children: list


class _Unit:
    """One compile unit: its line table and its function scopes, read on first use."""

    def __init__(self, wasm: WasmDwarf, cu, ranges: list):
        self.wasm, self.cu, self.ranges = wasm, cu, ranges
        top = cu.get_top_DIE()
        self.bias = wasm.count_size if from_wasm_tools(top) else 0
        self.base = unit_base(top)
        self.comp_dir = comp_dir(top)
        self._table: WasmLineTable | None = None
        self._scopes: list[_Scope] | None = None

    def covers(self, offset: int) -> bool:
        return any(lo <= offset < hi for lo, hi in self.ranges)

    @property
    def table(self) -> WasmLineTable | None:
        if self._table is None:
            self._table = read_line_table(self.wasm.info, self.cu, self.bias)
        return self._table

    def file_name(self, index: int) -> str | None:
        """A file number as line rows and DW_AT_call_file give it, as a path."""
        table = self.table
        return table.file_path(index + table.file_shift, self.comp_dir) if table is not None else None

    def row(self, offset: int) -> tuple[str, int, int] | None:
        """(file, line, column) of the line-table row holding `offset`."""
        table = self.table
        if table is None:
            return None
        for sequence in table.sequences:
            if sequence.start <= offset < sequence.end:
                state = sequence.states[bisect.bisect_right(sequence.addresses, offset) - 1]
                file = self.file_name(state.file)
                return (file, state.line, state.column) if file is not None and state.line else None
        return None

    def scope_chain(self, offset: int) -> list:
        """The subprogram holding `offset`, then the inlined calls inside it that hold it,
        outermost first (lexical blocks left out)."""
        if self._scopes is None:
            self._scopes = self._read_scopes(self.cu.get_top_DIE())
        chain, scopes = [], self._scopes
        while True:
            scope = next((s for s in scopes if any(lo <= offset < hi for lo, hi in s.ranges)), None)
            if scope is None:
                return chain
            if scope.die.tag != "DW_TAG_lexical_block":
                chain.append(scope.die)
            scopes = scope.children

    def _read_scopes(self, parent) -> list[_Scope]:
        scopes = []
        range_lists = self.wasm.info.range_lists()
        for die in parent.iter_children():
            if die.tag in SCOPE_TAGS:
                ranges = die_ranges(die, range_lists, self.base, self.bias)
                if ranges:
                    scopes.append(_Scope(die, ranges, self._read_scopes(die)))
            elif die.tag in ("DW_TAG_namespace", "DW_TAG_class_type", "DW_TAG_structure_type"):
                scopes += self._read_scopes(die)  # C++ member functions
        return scopes


class SourcePositions:
    """Code offsets (from the code section's contents, as DWARF counts them) to positions."""

    def __init__(self, wasm: WasmDwarf):
        self.wasm = wasm
        self._units: list[_Unit] | None = None

    def at(self, offset: int) -> list[SourcePosition]:
        """Innermost first: the inlined functions at `offset`, then the function they were
        inlined into. Empty if no unit describes the offset, or its DWARF cannot be read."""
        try:
            unit = next((u for u in self.units() if u.covers(offset)), None)
            if unit is None:
                return []
            row = unit.row(offset)
            if row is None:
                return []
            positions = []
            file, line, column = row
            for die in reversed(unit.scope_chain(offset)):
                positions.append(SourcePosition(_function_name(die), file, line, column))
                if die.tag != "DW_TAG_inlined_subroutine":
                    break
                attributes = die.attributes
                call_file = unit.file_name(attributes["DW_AT_call_file"].value) \
                    if "DW_AT_call_file" in attributes else None
                file = call_file or file
                line = attributes["DW_AT_call_line"].value if "DW_AT_call_line" in attributes else 0
                column = attributes["DW_AT_call_column"].value if "DW_AT_call_column" in attributes else 0
            return positions or [SourcePosition(None, *row)]
        except PARSE_ERRORS:
            return []

    def units(self) -> list[_Unit]:
        if self._units is None:
            units = []
            range_lists = self.wasm.info.range_lists()
            for cu in self.wasm.info.iter_CUs():
                top = cu.get_top_DIE()
                bias = self.wasm.count_size if from_wasm_tools(top) else 0
                ranges = die_ranges(top, range_lists, unit_base(top), bias)
                if ranges:
                    units.append(_Unit(self.wasm, cu, ranges))
            self._units = units
        return self._units


def _function_name(die) -> str | None:
    """A subprogram's or inlined call's name, through its abstract origin or declaration."""
    for _ in range(4):
        name = die.attributes.get("DW_AT_name")
        if name is not None:
            return text(name.value)
        origin = die.attributes.get("DW_AT_abstract_origin") or die.attributes.get("DW_AT_specification")
        if origin is None:
            return None
        die = die.get_DIE_from_attribute(origin.name)
    return None
