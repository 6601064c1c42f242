"""`.eh_frame` + `.eh_frame_hdr` for one function, laid out the way `perf inject` maps them.

perf's jitdump UNWINDING_INFO record carries, per function, an `.eh_frame` followed by its
`.eh_frame_hdr`. `perf inject --jit` puts them right after the function's code (at the
next 8-byte boundary) in the ELF it synthesizes, at addresses that differ from the
process's, so every pointer here is relative (pc-relative FDE addresses, a data-relative
search table). The call frame instructions come from `unwind.cfi`; only this framing
differs from the absolute-address CFI the JIT objects for gdb carry.
"""

from __future__ import annotations

import functools
import struct

from stackstitch.unwind.cfi import FrameDescription, cfa_program
from stackstitch.unwind.dwarf import REGISTER_NUMBERS, RETURN_ADDRESS, sleb128, uleb128

DATA_ALIGNMENT = -8
DW_CFA_def_cfa, DW_CFA_offset = 0x0C, 0x80
DW_EH_PE_udata4, DW_EH_PE_sdata4 = 0x03, 0x0B
DW_EH_PE_pcrel, DW_EH_PE_datarel = 0x10, 0x30
PCREL_SDATA4 = DW_EH_PE_pcrel | DW_EH_PE_sdata4


def _entry(body: bytes) -> bytes:
    """A length-prefixed CIE/FDE, padded with DW_CFA_nop to a multiple of 8 bytes."""
    body += b"\0" * (-(len(body) + 4) % 8)
    return struct.pack("<I", len(body)) + body


@functools.cache
def _cie(signal_frame: bool) -> bytes:
    """At a call: CFA = rsp+8, return address at CFA-8 (the state unwind.cfi starts from)."""
    return _entry(struct.pack("<IB", 0, 1) + (b"zRS\0" if signal_frame else b"zR\0")
                  + uleb128(1) + sleb128(DATA_ALIGNMENT) + uleb128(RETURN_ADDRESS)
                  + uleb128(1) + bytes([PCREL_SDATA4])
                  + bytes([DW_CFA_def_cfa]) + uleb128(REGISTER_NUMBERS["rsp"]) + uleb128(8)
                  + bytes([DW_CFA_offset | RETURN_ADDRESS]) + uleb128(1))


def unwind_info(start: int, end: int, rows: list, signal_frame: bool = False) -> tuple[bytes, int]:
    """(`.eh_frame` + `.eh_frame_hdr`, size of the header) for the code [start, end) with
    unwind `rows` [(offset, CfaRule)] in the same offsets; raises cfi.CfiError for rows CFI
    cannot express."""
    code_size = end - start
    description = FrameDescription(start, end, [r for r in rows if r[0] < end], signal_frame)
    eh_frame_at = (code_size + 7) & ~7  # from here on, offsets from the code's start
    cie = _cie(signal_frame)
    fde_at = eh_frame_at + len(cie)
    pc_begin_field = fde_at + 8
    fde = _entry(struct.pack("<Iii", fde_at + 4 - eh_frame_at, -pc_begin_field, code_size)
                 + uleb128(0) + cfa_program(description))
    eh_frame = cie + fde + struct.pack("<I", 0)  # zero terminator
    hdr_at = eh_frame_at + len(eh_frame)
    hdr = bytes([1, PCREL_SDATA4, DW_EH_PE_udata4, DW_EH_PE_datarel | DW_EH_PE_sdata4])
    hdr += struct.pack("<iIii", eh_frame_at - (hdr_at + 4), 1, -hdr_at, fde_at - hdr_at)
    return eh_frame + hdr, len(hdr)
