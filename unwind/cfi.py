"""CFI writer: frame-state rows -> `.eh_frame` and `.eh_frame_hdr` bytes.

Input rows are `engine.frames.CfaRule`s, generalised so the continuation start stub can be
described too: a rule's `register` may be a `dwarf.Expression` (the CFA is its value,
DW_CFA_def_cfa_expression) and a saved register's offset may be an `Expression` (the
address it was saved at, DW_CFA_expression), or SAME_VALUE (DW_CFA_same_value). "rip" in
`saved` overrides the return-address rule, which is otherwise CFA-8. A description marked
`signal_frame` gets a CIE with the `S` augmentation, so gdb does not insist that its
caller's CFA lie above it.

Addresses are absolute 8-byte values (DW_EH_PE_absptr): the JIT object holding this data
and the code it describes can be more than 2 GiB apart.
"""

from __future__ import annotations

import struct

from stackstitch.engine.compiler.frames import SAME_VALUE
from stackstitch.engine.records import record

from .dwarf import RETURN_ADDRESS, REGISTER_NUMBERS, Expression, as_expression, sleb128, uleb128

CODE_ALIGNMENT = 1
DATA_ALIGNMENT = -8

DW_EH_PE_absptr = 0x00
DW_EH_PE_udata4 = 0x03
DW_EH_PE_udata8 = 0x04

DW_CFA_advance_loc = 0x40
DW_CFA_offset = 0x80
DW_CFA_restore = 0xC0
DW_CFA_nop = 0x00
DW_CFA_advance_loc1 = 0x02
DW_CFA_advance_loc2 = 0x03
DW_CFA_advance_loc4 = 0x04
DW_CFA_restore_extended = 0x06
DW_CFA_same_value = 0x08
DW_CFA_def_cfa = 0x0C
DW_CFA_def_cfa_register = 0x0D
DW_CFA_def_cfa_offset = 0x0E
DW_CFA_def_cfa_expression = 0x0F
DW_CFA_expression = 0x10
DW_CFA_offset_extended_sf = 0x11

# The state every CIE starts from: just after a call, CFA = rsp+8, return address at CFA-8.
_INITIAL_CFA = ("rsp", 8)
_INITIAL_SAVED = {RETURN_ADDRESS: -8}


@record
class FrameDescription:
    """The unwind rows of one code range [start, end): one FDE."""
    start: int  # absolute addresses
    end: int
    rows: list  # [(absolute address, CfaRule)], sorted
    signal_frame: bool = False


class CfiError(ValueError):
    """A row cannot be expressed (unknown register, unaligned save slot, unsorted rows)."""


def _cfa_of(rule) -> Expression | tuple[str, int]:
    register = as_expression(rule.register)
    if isinstance(register, Expression):
        return register
    if rule.register not in REGISTER_NUMBERS:
        raise CfiError(f"unknown CFA register {rule.register!r}")
    return (rule.register, rule.offset)


def _saved_of(rule) -> dict[int, int | Expression]:
    saved = dict(_INITIAL_SAVED)
    for name, where in rule.saved:
        if name not in REGISTER_NUMBERS:
            raise CfiError(f"unknown saved register {name!r}")
        saved[REGISTER_NUMBERS[name]] = as_expression(where)
    return saved


def _advance(delta: int) -> bytes:
    if delta < 0x40:
        return bytes([DW_CFA_advance_loc | delta])
    if delta < 0x100:
        return bytes([DW_CFA_advance_loc1, delta])
    if delta < 0x10000:
        return bytes([DW_CFA_advance_loc2]) + struct.pack("<H", delta)
    return bytes([DW_CFA_advance_loc4]) + struct.pack("<I", delta)


def _define_cfa(old, new) -> bytes:
    if isinstance(new, Expression):
        return bytes([DW_CFA_def_cfa_expression]) + uleb128(len(new.code)) + new.code
    register, offset = new
    if offset < 0:
        raise CfiError(f"negative CFA offset {offset}")
    number = REGISTER_NUMBERS[register]
    if isinstance(old, Expression) or (old[0] != register and old[1] != offset):
        return bytes([DW_CFA_def_cfa]) + uleb128(number) + uleb128(offset)
    if old[0] != register:
        return bytes([DW_CFA_def_cfa_register]) + uleb128(number)
    return bytes([DW_CFA_def_cfa_offset]) + uleb128(offset)


def _save_register(number: int, where: int | Expression | str) -> bytes:
    if where == SAME_VALUE:
        return bytes([DW_CFA_same_value]) + uleb128(number)
    if isinstance(where, Expression):
        return bytes([DW_CFA_expression]) + uleb128(number) + uleb128(len(where.code)) + where.code
    if where % DATA_ALIGNMENT:
        raise CfiError(f"save slot CFA{where:+d} is not a multiple of {-DATA_ALIGNMENT}")
    factored = where // DATA_ALIGNMENT
    if factored >= 0 and number < 64:
        return bytes([DW_CFA_offset | number]) + uleb128(factored)
    return bytes([DW_CFA_offset_extended_sf]) + uleb128(number) + sleb128(factored)


def _restore_register(number: int) -> bytes:
    if number < 64:
        return bytes([DW_CFA_restore | number])
    return bytes([DW_CFA_restore_extended]) + uleb128(number)


def cfa_program(description: FrameDescription) -> bytes:
    """The FDE instructions: one advance per change of address, then only what changed."""
    out = bytearray()
    location = previous = description.start
    current = None  # the CIE's initial state
    for address, rule in description.rows:
        if not previous <= address < description.end:
            raise CfiError(f"row at 0x{address:x} is outside [0x{description.start:x}, "
                           f"0x{description.end:x}) or before the previous row")
        previous = address
        if rule == current:
            continue
        change = _transition(current, rule)
        current = rule
        if not change:
            continue
        if address > location:
            out += _advance(address - location)
            location = address
        out += change
    return bytes(out)


# The instructions from one rule to another: the same few transitions recur in every
# function (prologue, epilogue, switch sequences), so each is encoded once.
_TRANSITIONS: dict = {}


def _transition(old, new) -> bytes:
    change = _TRANSITIONS.get((old, new))
    if change is None:
        cfa, saved = (_INITIAL_CFA, _INITIAL_SAVED) if old is None else (_cfa_of(old), _saved_of(old))
        new_cfa, new_saved = _cfa_of(new), _saved_of(new)
        out = bytearray()
        if new_cfa != cfa:
            out += _define_cfa(cfa, new_cfa)
        for number in sorted(set(saved) | set(new_saved)):
            if number not in new_saved:
                out += _restore_register(number)
            elif saved.get(number) != new_saved[number]:
                out += _save_register(number, new_saved[number])
        change = _TRANSITIONS[(old, new)] = bytes(out)
    return change


def _padded(entry: bytearray) -> bytes:
    """Pad with DW_CFA_nop so the entry (length field included) is 8-byte aligned."""
    entry += bytes([DW_CFA_nop]) * (-(len(entry) + 4) % 8)
    return struct.pack("<I", len(entry)) + bytes(entry)


def _cie(signal_frame: bool) -> bytes:
    body = bytearray(struct.pack("<I", 0))  # CIE id 0 in .eh_frame
    body.append(1)  # version
    body += b"zRS\0" if signal_frame else b"zR\0"
    body += uleb128(CODE_ALIGNMENT) + sleb128(DATA_ALIGNMENT) + bytes([RETURN_ADDRESS])
    body += uleb128(1) + bytes([DW_EH_PE_absptr])  # augmentation data: FDE pointer encoding
    body += bytes([DW_CFA_def_cfa]) + uleb128(REGISTER_NUMBERS[_INITIAL_CFA[0]]) + uleb128(_INITIAL_CFA[1])
    body += _save_register(RETURN_ADDRESS, _INITIAL_SAVED[RETURN_ADDRESS])
    return _padded(body)


@record
class EhFrame:
    """The .eh_frame and .eh_frame_hdr of an object, and where each FDE went."""

    eh_frame: bytes
    eh_frame_hdr: bytes
    fde_offsets: list[int]  # offset of each description's FDE in eh_frame, input order


def build_eh_frame(descriptions: list[FrameDescription], eh_frame_address: int = 0) -> EhFrame:
    """`.eh_frame` (CIEs, one FDE per description, zero terminator) and its
    `.eh_frame_hdr`; `eh_frame_address` only enters the header's absolute pointers."""
    out = bytearray()
    cie_offsets: dict[bool, int] = {}
    fde_offsets = []
    for d in descriptions:
        if d.signal_frame not in cie_offsets:
            cie_offsets[d.signal_frame] = len(out)
            out += _cie(d.signal_frame)
        fde_at = len(out)
        body = bytearray(struct.pack("<I", fde_at + 4 - cie_offsets[d.signal_frame]))
        body += struct.pack("<QQ", d.start, d.end - d.start)
        body += uleb128(0)  # no augmentation data
        body += cfa_program(d)
        out += _padded(body)
        fde_offsets.append(fde_at)
    out += struct.pack("<I", 0)
    return EhFrame(bytes(out), _eh_frame_hdr(descriptions, fde_offsets, eh_frame_address),
                   fde_offsets)


def _eh_frame_hdr(descriptions, fde_offsets, eh_frame_address: int) -> bytes:
    """Version 1 header with a sorted (initial location, FDE address) search table, all
    absolute 8-byte values."""
    table = sorted((d.start, eh_frame_address + at) for d, at in zip(descriptions, fde_offsets))
    out = bytearray([1, DW_EH_PE_udata8, DW_EH_PE_udata4, DW_EH_PE_udata8])
    out += struct.pack("<QI", eh_frame_address, len(table))
    for start, fde in table:
        out += struct.pack("<QQ", start, fde)
    return bytes(out)
