"""Wasm-level debug info, for code the producer gave no DWARF for (or none at all).

Each function becomes a subprogram whose parameters and locals are variables named from the
name section (else `local0`, `local1`, ...), typed from their Wasm types (i32 -> int32_t,
...), and read from their frame slots. Parameters are addressed from the CFA, so they are
right at every pc; the other locals sit in a lexical block that starts after the native
prologue, which is what zeroes them. Where a loop keeps a local in a register only (its
pin ranges), a location list names that register there and the slot elsewhere. The line
table's "lines" are Wasm module offsets, so `info line` and `bt` give the offset the trap
reports and Wasmtime use.
"""

from __future__ import annotations

import functools
import os

from elftools.dwarf.enums import ENUM_DW_AT, ENUM_DW_TAG

from .codemap import FunctionCode
from .dwarf import register_location
from .dwarfout import (DW_FORM_addr, DW_FORM_data1, DW_FORM_data2, DW_FORM_data8, DW_FORM_exprloc,
                       DW_FORM_flag_present, DW_FORM_sec_offset, DW_FORM_strp, FORM_REFERENCE,
                       DebugInfoWriter, Die, LineRow, LineSequence)
from .locations import slot_address

AT = ENUM_DW_AT
TAG = ENUM_DW_TAG
DW_ATE_address = 0x01
DW_ATE_float = 0x04
DW_ATE_signed = 0x05
DW_LANG_C99 = 0x0C
DW_CC_nocall = 0x03
PRODUCER = "stackstitch"

# Wasm value type -> (C name, DWARF encoding, size)
_BASE_TYPES = {
    "i32": ("int32_t", DW_ATE_signed, 4),
    "i64": ("int64_t", DW_ATE_signed, 8),
    "f32": ("float", DW_ATE_float, 4),
    "f64": ("double", DW_ATE_float, 8),
    "ref": ("ref", DW_ATE_address, 8),
}


class WasmTypes:
    """The base types for Wasm values, made on first use inside one compile unit."""

    def __init__(self, unit: Die):
        self.unit = unit
        self.types: dict[str, Die] = {}

    def get(self, value_type: str) -> Die | None:
        if value_type not in _BASE_TYPES:
            return None  # v128: no slot layout we describe
        die = self.types.get(value_type)
        if die is None:
            name, encoding, size = _BASE_TYPES[value_type]
            die = self.types[value_type] = Die(TAG["DW_TAG_base_type"])
            die.add(AT["DW_AT_name"], DW_FORM_strp, name)
            die.add(AT["DW_AT_encoding"], DW_FORM_data1, encoding)
            die.add(AT["DW_AT_byte_size"], DW_FORM_data1, size)
            self.unit.children.append(die)
        return die


def add_wasm_variables(subprogram: Die, function: FunctionCode, names: dict, types: WasmTypes,
                       writer: DebugInfoWriter) -> None:
    """Parameters as formal parameters; other locals in a block after the prologue."""
    nparams = len(function.param_types)
    for index, value_type in enumerate(function.param_types):
        _variable(subprogram, TAG["DW_TAG_formal_parameter"], function, index, value_type, names, types,
                  writer, function.start)
    if not function.local_types:
        return
    block = subprogram.child(Die(TAG["DW_TAG_lexical_block"]))
    block.add(AT["DW_AT_low_pc"], DW_FORM_addr, function.body_start)
    block.add(AT["DW_AT_high_pc"], DW_FORM_data8, function.end - function.body_start)
    for j, value_type in enumerate(function.local_types):
        _variable(block, TAG["DW_TAG_variable"], function, nparams + j, value_type, names, types,
                  writer, function.body_start)


def _variable(parent: Die, tag: int, function: FunctionCode, index: int, value_type: str,
              names: dict, types: WasmTypes, writer: DebugInfoWriter, start: int) -> None:
    """The local's DIE, located in its slot from `start` on, except where it lives in a
    register (a location list)."""
    base = types.get(value_type)
    if base is None:
        return
    die = parent.child(Die(tag))
    die.add(AT["DW_AT_name"], DW_FORM_strp, names.get(index) or f"local{index}")
    die.add(AT["DW_AT_type"], FORM_REFERENCE, base)
    slot = slot_address(index, len(function.param_types))
    ranges = function.pins.get(index)
    if not ranges:
        die.add(AT["DW_AT_location"], DW_FORM_exprloc, slot)
        return
    entries, at = [], start
    for lo, hi, register in ranges:  # after the prologue, in order, not overlapping
        if lo > at:
            entries.append((at, lo, slot))
        entries.append((lo, hi, _register_code(register)))
        at = hi
    if at < function.end:
        entries.append((at, function.end, slot))
    die.add(AT["DW_AT_location"], DW_FORM_sec_offset, writer.location_list(entries))


@functools.cache
def _register_code(register: str) -> bytes:
    return register_location(register).code


def wasm_unit(writer: DebugInfoWriter, functions: list[FunctionCode], source_path: str,
              local_names: dict, code_start: int) -> Die:
    """A compile unit for `functions`, named `source_path`, whose lines are module offsets."""
    directory, name = os.path.split(source_path)
    unit = Die(TAG["DW_TAG_compile_unit"])
    unit.add(AT["DW_AT_producer"], DW_FORM_strp, PRODUCER)
    unit.add(AT["DW_AT_language"], DW_FORM_data2, DW_LANG_C99)
    unit.add(AT["DW_AT_name"], DW_FORM_strp, source_path)
    unit.add(AT["DW_AT_comp_dir"], DW_FORM_strp, directory or ".")
    unit.add(AT["DW_AT_low_pc"], DW_FORM_addr, 0)
    ranges = [(f.start, f.end) for f in functions]
    unit.add(AT["DW_AT_ranges"], DW_FORM_sec_offset, writer.range_list(ranges))
    sequences = [LineSequence(_offset_rows(f, code_start), f.end) for f in functions]
    unit.add(AT["DW_AT_stmt_list"], DW_FORM_sec_offset,
             writer.line_table([directory] if directory else [], [(name, 1 if directory else 0)], sequences))
    types = WasmTypes(unit)
    for f in functions:
        subprogram = unit.child(Die(TAG["DW_TAG_subprogram"]))
        subprogram.add(AT["DW_AT_name"], DW_FORM_strp, f.name)
        subprogram.add(AT["DW_AT_low_pc"], DW_FORM_addr, f.start)
        subprogram.add(AT["DW_AT_high_pc"], DW_FORM_data8, f.end - f.start)
        subprogram.add(AT["DW_AT_external"], DW_FORM_flag_present)
        subprogram.add(AT["DW_AT_calling_convention"], DW_FORM_data1, DW_CC_nocall)
        add_wasm_variables(subprogram, f, local_names.get(f.index, {}), types, writer)
    return unit


def _offset_rows(function: FunctionCode, code_start: int) -> list[LineRow]:
    """A row per change of Wasm offset; the "line" is the module offset. The first body
    instruction starts a row of its own, marked as the end of the prologue."""
    rows: list[LineRow] = []
    for k, (start, _end, wasm) in enumerate(function.pieces):
        line = wasm + code_start
        if not rows or rows[-1].line != line or k == 1:
            rows.append(LineRow(start, 1, line, prologue_end=k == 1))
    return rows
