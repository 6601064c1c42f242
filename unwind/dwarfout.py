"""A DWARF 4 writer for JIT objects: DIE trees with their abbreviations, strings, location
and range lists, and line tables. Addresses are absolute 8-byte values.

Callers build `Die` trees whose attribute values are plain Python values (a `Die` for a
reference) and hand each compile unit's root to `DebugInfoWriter.add_unit`. References
within a unit become DW_FORM_ref4, others DW_FORM_ref_addr; both are patched once every
unit has been laid out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from stackstitch.engine.records import record

from .dwarf import sleb128, uleb128
from .elffile import StringTable

DWARF_VERSION = 4
ADDRESS_SIZE = 8

# Forms.
DW_FORM_addr = 0x01
DW_FORM_block2 = 0x03
DW_FORM_block4 = 0x04
DW_FORM_data2 = 0x05
DW_FORM_data4 = 0x06
DW_FORM_data8 = 0x07
DW_FORM_string = 0x08
DW_FORM_block = 0x09
DW_FORM_block1 = 0x0A
DW_FORM_data1 = 0x0B
DW_FORM_flag = 0x0C
DW_FORM_sdata = 0x0D
DW_FORM_strp = 0x0E
DW_FORM_udata = 0x0F
DW_FORM_ref_addr = 0x10
DW_FORM_ref4 = 0x13
DW_FORM_sec_offset = 0x17
DW_FORM_exprloc = 0x18
DW_FORM_flag_present = 0x19
FORM_REFERENCE = -1  # pseudo-form: DW_FORM_ref4 or DW_FORM_ref_addr, chosen when written

# Line program opcodes.
DW_LNS_copy = 0x01
DW_LNS_advance_pc = 0x02
DW_LNS_advance_line = 0x03
DW_LNS_set_file = 0x04
DW_LNS_set_column = 0x05
DW_LNS_negate_stmt = 0x06
DW_LNS_set_prologue_end = 0x0A
DW_LNE_end_sequence = 0x01
DW_LNE_set_address = 0x02
_STANDARD_OPCODE_LENGTHS = bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])
LINE_BASE, LINE_RANGE = -5, 14  # special opcodes: line steps -5..8
OPCODE_BASE = len(_STANDARD_OPCODE_LENGTHS) + 1


class Die:
    """One debugging information entry: tag, [(attribute, form, value)], children.
    `offset` is its .debug_info offset once written."""
    __slots__ = ("tag", "attributes", "children", "offset")

    def __init__(self, tag: int, attributes: list | None = None):
        self.tag = tag
        self.attributes = attributes if attributes is not None else []
        self.children: list[Die] = []
        self.offset: int | None = None

    def add(self, attribute: int, form: int, value=None) -> "Die":
        self.attributes.append((attribute, form, value))
        return self

    def child(self, die: "Die") -> "Die":
        self.children.append(die)
        return die


@record
class LineRow:
    address: int
    file: int
    line: int
    column: int = 0
    is_stmt: bool = True
    prologue_end: bool = False


@dataclass
class LineSequence:
    rows: list  # [LineRow], by address
    end: int  # the address just past the sequence


# A location or range list entry whose start is the largest address sets the base that
# the entries after it are offsets from (DWARF 4, 2.6.2 and 2.17.3).
_MAX_ADDRESS = 0xFFFF_FFFF_FFFF_FFFF
_ADDRESS_PAIR = struct.Struct("<QQ")  # a base address selection entry, or a range


class DebugInfoWriter:
    """Accumulates .debug_info, .debug_abbrev, .debug_str, .debug_loc, .debug_ranges and
    .debug_line for one object."""

    def __init__(self):
        self.info = bytearray()
        self.abbrev = bytearray()
        self.strings = StringTable()
        self.loc = bytearray()
        self.ranges = bytearray()
        self.line = bytearray()
        self._abbrev_codes: dict[tuple, int] = {}
        # (position, target, start of the referring unit for ref4 / None for ref_addr)
        self._references: list[tuple[int, Die, int | None]] = []
        self._unit_start = 0

    # ---- lists referenced from DIEs ------------------------------------------------------

    def location_list(self, entries: list[tuple[int, int, bytes]]) -> int:
        """A .debug_loc list of (start, end, expression); its offset
        (DW_FORM_sec_offset). Addresses are offsets from a base address selection entry,
        so that moving the code (`relocation`) changes one field per list, not two per
        entry."""
        offset = len(self.loc)
        entries = [entry for entry in entries if entry[0] < entry[1]]
        if entries:
            base = min(entry[0] for entry in entries)
            self.loc += _ADDRESS_PAIR.pack(_MAX_ADDRESS, base)
            for start, end, expression in entries:
                self.loc += struct.pack("<QQH", start - base, end - base, len(expression)) + expression
        self.loc += bytes(16)
        return offset

    def range_list(self, ranges: list[tuple[int, int]]) -> int:
        """A .debug_ranges list of (start, end) ranges, from a base address selection entry
        as location lists are."""
        offset = len(self.ranges)
        ranges = [r for r in ranges if r[0] < r[1]]
        if ranges:
            base = min(r[0] for r in ranges)
            self.ranges += _ADDRESS_PAIR.pack(_MAX_ADDRESS, base)
            for start, end in ranges:
                self.ranges += _ADDRESS_PAIR.pack(start - base, end - base)
        self.ranges += bytes(16)
        return offset

    def line_table(self, directories: list[str], files: list[tuple[str, int]],
                   sequences: list[LineSequence]) -> int:
        """A DWARF 4 line table; `directories` are the include directories (index 1 on),
        `files` (name, directory index) are files 1 on. Returns its .debug_line offset."""
        header = bytearray([1, 1, 1])  # min instruction length, max ops, default_is_stmt
        header += struct.pack("<bBB", LINE_BASE, LINE_RANGE, OPCODE_BASE) + _STANDARD_OPCODE_LENGTHS
        for directory in directories:
            header += _cstring(directory)
        header += b"\0"
        for name, directory in files:
            header += _cstring(name) + uleb128(directory) + b"\0\0"
        header += b"\0"
        body = struct.pack("<HI", DWARF_VERSION, len(header)) + header
        program = bytearray()
        for sequence in sequences:
            _encode_sequence(program, sequence)
        offset = len(self.line)
        self.line += struct.pack("<I", len(body) + len(program)) + body + program
        return offset

    # ---- units ---------------------------------------------------------------------------

    def add_unit(self, root: Die) -> None:
        """Lay out one compile unit (DWARF 4, 32-bit format, one shared abbreviation table)."""
        members: set[int] = set()
        stack = [root]
        while stack:
            die = stack.pop()
            members.add(id(die))
            stack += die.children
        self._unit_start = start = len(self.info)
        self.info += struct.pack("<IHIB", 0, DWARF_VERSION, 0, ADDRESS_SIZE)
        self._write(root, members)
        struct.pack_into("<I", self.info, start, len(self.info) - start - 4)

    def _write(self, die: Die, members: set[int]) -> None:
        info, codes, strings, references = self.info, self._abbrev_codes, self.strings, self._references
        die.offset = len(info)
        attributes = die.attributes
        forms = tuple([(attribute, (DW_FORM_ref4 if id(value) in members else DW_FORM_ref_addr)
                        if form == FORM_REFERENCE else form) for attribute, form, value in attributes])
        key = (die.tag, bool(die.children), forms)
        code = codes.get(key)
        if code is None:
            code = codes[key] = len(codes) + 1
            self.abbrev += uleb128(code) + uleb128(die.tag) + bytes([1 if die.children else 0])
            for attribute, form in forms:
                self.abbrev += uleb128(attribute) + uleb128(form)
            self.abbrev += b"\0\0"
        info += uleb128(code)
        for (_, form), (_, _, value) in zip(forms, attributes):
            if form == DW_FORM_strp:
                info += _U32.pack(strings.add(value))
            elif form == DW_FORM_ref4 or form == DW_FORM_ref_addr:
                references.append((len(info), value, self._unit_start if form == DW_FORM_ref4 else None))
                info += b"\0\0\0\0"
            else:
                info += _ENCODERS[form](value)
        if die.children:
            for child in die.children:
                self._write(child, members)
            info.append(0)

    def sections(self) -> dict[str, bytes]:
        """Section name -> contents, references resolved; empty sections are left out."""
        for position, target, unit_start in self._references:
            if target.offset is None:
                raise ValueError("a DIE refers to a DIE that was never written")
            struct.pack_into("<I", self.info, position, target.offset - (unit_start or 0))
        self._references.clear()
        sections = {".debug_abbrev": bytes(self.abbrev + b"\0"), ".debug_info": bytes(self.info),
                    ".debug_str": bytes(self.strings.data), ".debug_line": bytes(self.line),
                    ".debug_loc": bytes(self.loc), ".debug_ranges": bytes(self.ranges)}
        return {name: data for name, data in sections.items() if data}


def _cstring(text: str) -> bytes:
    return text.encode() + b"\0"


_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_ENCODERS = {
    DW_FORM_addr: lambda value: _U64.pack(value & (2**64 - 1)),
    DW_FORM_data8: lambda value: _U64.pack(value & (2**64 - 1)),
    DW_FORM_data1: lambda value: bytes([value & 0xFF]),
    DW_FORM_flag: lambda value: bytes([value & 0xFF]),
    DW_FORM_data2: lambda value: struct.pack("<H", value & 0xFFFF),
    DW_FORM_data4: lambda value: _U32.pack(value & 0xFFFFFFFF),
    DW_FORM_sec_offset: lambda value: _U32.pack(value),
    DW_FORM_udata: uleb128,
    DW_FORM_sdata: sleb128,
    DW_FORM_string: lambda value: _cstring(value),
    DW_FORM_exprloc: lambda value: uleb128(len(value)) + bytes(value),
    DW_FORM_block: lambda value: uleb128(len(value)) + bytes(value),
    DW_FORM_block1: lambda value: bytes([len(value)]) + bytes(value),
    DW_FORM_flag_present: lambda value: b"",
}


def _encode_sequence(out: bytearray, sequence: LineSequence) -> None:
    """set_address, then each row as the smallest opcodes that reach its state, then
    end_sequence at `sequence.end`."""
    rows = sequence.rows
    if not rows:
        return
    out += b"\0\x09" + bytes([DW_LNE_set_address]) + struct.pack("<Q", rows[0].address)
    address, file, line, column, is_stmt = rows[0].address, 1, 1, 0, True
    for row in rows:
        if row.file != file:
            out.append(DW_LNS_set_file)
            out += uleb128(row.file)
            file = row.file
        if row.column != column:
            out.append(DW_LNS_set_column)
            out += uleb128(row.column)
            column = row.column
        if row.is_stmt != is_stmt:
            out.append(DW_LNS_negate_stmt)
            is_stmt = row.is_stmt
        if row.prologue_end:
            out.append(DW_LNS_set_prologue_end)
        step, delta = row.address - address, row.line - line
        special = (delta - LINE_BASE) + LINE_RANGE * step + OPCODE_BASE
        if 0 <= delta - LINE_BASE < LINE_RANGE and 0 <= step and special <= 255:
            out.append(special)
        else:
            if step:
                out.append(DW_LNS_advance_pc)
                out += uleb128(step)
            if delta:
                out.append(DW_LNS_advance_line)
                out += sleb128(delta)
            out.append(DW_LNS_copy)
        address, line = row.address, row.line
    if sequence.end > address:
        out.append(DW_LNS_advance_pc)
        out += uleb128(sequence.end - address)
    out += b"\0\x01" + bytes([DW_LNE_end_sequence])
