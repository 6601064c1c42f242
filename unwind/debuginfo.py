"""Minimal DWARF 4 debug info for a JIT object: one compile unit named after the Wasm module,
a subprogram per function, and a line table whose "line numbers" are Wasm module byte
offsets, so `info line *ADDR` in gdb (and lldb's line entries) report the Wasm offset.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from .dwarf import sleb128, uleb128

DW_TAG_compile_unit = 0x11
DW_TAG_subprogram = 0x2E
DW_CHILDREN_no, DW_CHILDREN_yes = 0, 1
DW_AT_name = 0x03
DW_AT_stmt_list = 0x10
DW_AT_low_pc = 0x11
DW_AT_high_pc = 0x12
DW_AT_language = 0x13
DW_AT_comp_dir = 0x1B
DW_AT_producer = 0x25
DW_AT_external = 0x3F
DW_FORM_addr = 0x01
DW_FORM_data2 = 0x05
DW_FORM_data8 = 0x07
DW_FORM_string = 0x08
DW_FORM_sec_offset = 0x17
DW_FORM_flag_present = 0x19
DW_LANG_C99 = 0x0C

DW_LNS_copy = 0x01
DW_LNS_advance_pc = 0x02
DW_LNS_advance_line = 0x03
DW_LNE_end_sequence = 0x01
DW_LNE_set_address = 0x02

PRODUCER = "stackstitch"
_STANDARD_OPCODE_LENGTHS = bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])
LINE_BASE, LINE_RANGE = -5, 14  # special opcodes: line steps -5..8
OPCODE_BASE = len(_STANDARD_OPCODE_LENGTHS) + 1


@dataclass
class FunctionLines:
    name: str
    start: int  # absolute addresses
    end: int
    lines: list  # [(absolute address, Wasm module offset)], sorted by address


@dataclass
class DebugSections:
    debug_abbrev: bytes
    debug_info: bytes
    debug_line: bytes


def _abbreviations() -> bytes:
    out = bytearray()
    out += uleb128(1) + uleb128(DW_TAG_compile_unit) + bytes([DW_CHILDREN_yes])
    for attribute, form in ((DW_AT_producer, DW_FORM_string), (DW_AT_language, DW_FORM_data2),
                            (DW_AT_name, DW_FORM_string), (DW_AT_comp_dir, DW_FORM_string),
                            (DW_AT_low_pc, DW_FORM_addr), (DW_AT_high_pc, DW_FORM_data8),
                            (DW_AT_stmt_list, DW_FORM_sec_offset)):
        out += uleb128(attribute) + uleb128(form)
    out += b"\0\0"
    out += uleb128(2) + uleb128(DW_TAG_subprogram) + bytes([DW_CHILDREN_no])
    for attribute, form in ((DW_AT_name, DW_FORM_string), (DW_AT_low_pc, DW_FORM_addr),
                            (DW_AT_high_pc, DW_FORM_data8), (DW_AT_external, DW_FORM_flag_present)):
        out += uleb128(attribute) + uleb128(form)
    out += b"\0\0"
    out += b"\0"
    return bytes(out)


def _cstring(text: str) -> bytes:
    return text.encode() + b"\0"


def _compile_unit(source_path: str, low: int, high: int, functions: list[FunctionLines]) -> bytes:
    die = bytearray(uleb128(1))
    die += _cstring(PRODUCER) + struct.pack("<H", DW_LANG_C99)
    die += _cstring(source_path) + _cstring(os.path.dirname(source_path) or ".")
    die += struct.pack("<QQI", low, high - low, 0)
    for f in functions:
        die += uleb128(2) + _cstring(f.name) + struct.pack("<QQ", f.start, f.end - f.start)
    die += b"\0"
    header = struct.pack("<HIB", 4, 0, 8)  # version, .debug_abbrev offset, address size
    return struct.pack("<I", len(header) + len(die)) + header + bytes(die)


def _line_program(functions: list[FunctionLines]) -> bytes:
    """One sequence per function: set_address, then a row per change of Wasm offset (a
    one-byte special opcode when the steps are small, as they nearly always are), then
    end_sequence at the function's end."""
    out = bytearray()
    for f in functions:
        out += b"\0\x09" + bytes([DW_LNE_set_address]) + struct.pack("<Q", f.start)
        address, line = f.start, 1
        for at, offset in f.lines:
            if offset == line and at != f.start:
                continue
            step, delta = at - address, offset - line
            special = (delta - LINE_BASE) + LINE_RANGE * step + OPCODE_BASE
            if 0 <= delta - LINE_BASE < LINE_RANGE and step >= 0 and special <= 255:
                out.append(special)
            else:
                if step:
                    out.append(DW_LNS_advance_pc)
                    out += uleb128(step)
                if delta:
                    out.append(DW_LNS_advance_line)
                    out += sleb128(delta)
                out.append(DW_LNS_copy)
            address, line = at, offset
        out.append(DW_LNS_advance_pc)
        out += uleb128(f.end - address)
        out += b"\0\x01" + bytes([DW_LNE_end_sequence])
    return bytes(out)


def _line_table(source_path: str, functions: list[FunctionLines]) -> bytes:
    directory, name = os.path.split(source_path)
    after_header_length = bytearray()
    after_header_length += bytes([1, 1, 1])  # min instruction length, max ops, default_is_stmt
    after_header_length += struct.pack("<bBB", LINE_BASE, LINE_RANGE, OPCODE_BASE)
    after_header_length += _STANDARD_OPCODE_LENGTHS
    after_header_length += (_cstring(directory) if directory else b"") + b"\0"
    after_header_length += _cstring(name) + uleb128(1 if directory else 0) + uleb128(0) + uleb128(0)
    after_header_length += b"\0"
    body = struct.pack("<HI", 4, len(after_header_length)) + after_header_length + _line_program(functions)
    return struct.pack("<I", len(body)) + body


def build_debug_sections(source_path: str, functions: list[FunctionLines]) -> DebugSections:
    """The compile unit spans from the first function's start to the last one's end."""
    low = min(f.start for f in functions)
    high = max(f.end for f in functions)
    return DebugSections(_abbreviations(), _compile_unit(source_path, low, high, functions),
                         _line_table(source_path, functions))
