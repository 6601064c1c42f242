"""Where a function's Wasm code writes its locals, and where its loops are.

Producers' DWARF can claim a variable stays in a Wasm local after the local was reused for
another value (LLVM at -O2 does, for inlined code). A location "in local N" is therefore
trusted only up to the first write of N inside its range, and not in a loop that
contains such a write (a back edge brings the clobbered value round again).

The scan decodes instructions only as far as needed to step over them; code using an
instruction it does not know (SIMD, GC, stack switching) returns None, and locations in
that function are then not trusted at all.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from .dwarf import read_uleb128

LOCAL_SET, LOCAL_TEE = 0x21, 0x22
BLOCK, LOOP, IF, TRY, TRY_TABLE, END = 0x02, 0x03, 0x04, 0x06, 0x1F, 0x0B

_NO_IMMEDIATE = {0x00, 0x01, 0x05, 0x0A, 0x0B, 0x0F, 0x19, 0x1A, 0x1B, 0xD1, 0xD3, 0xD5}
_ONE_INDEX = {0x07, 0x08, 0x09, 0x0C, 0x0D, 0x10, 0x12, 0x14, 0x15, 0x18, 0x20, 0x21, 0x22, 0x23,
              0x24, 0x25, 0x26, 0x3F, 0x40, 0xD2, 0xD4, 0xD6}
_TWO_INDICES = {0x11, 0x13}
_MISC_IMMEDIATES = {0: 0, 1: 0, 2: 0, 3: 0, 4: 0, 5: 0, 6: 0, 7: 0, 8: 2, 9: 1, 10: 2, 11: 1, 12: 2,
                    13: 1, 14: 2, 15: 1, 16: 1, 17: 1}
_MEMARG_OPS = range(0x28, 0x3F)
_NUMERIC_OPS = range(0x45, 0xC5)


@dataclass
class LocalWrites:
    writes: dict  # local index -> sorted code offsets of local.set / local.tee
    loops: list  # (start, end) code offsets of each loop

    def trusted(self, locals_read: set[int], lo: int, hi: int) -> tuple[int, int] | None:
        """The part of [lo, hi) where none of `locals_read` has been overwritten."""
        first_write = hi
        for local in locals_read:
            offsets = self.writes.get(local, ())
            k = bisect.bisect_left(offsets, lo)
            if k < len(offsets) and offsets[k] < first_write:
                first_write = offsets[k]
        cut = first_write
        if first_write < hi:
            for start, end in self.loops:
                if start < first_write < end:
                    cut = min(cut, start)
        return (lo, cut) if lo < cut else None


def scan_function(code: bytes, start: int, end: int, code_start: int) -> LocalWrites | None:
    """Scan module bytes [start, end) (a function's instructions); offsets in the result
    are code-section offsets (module offset - `code_start`). None: unknown instruction."""
    writes: dict[int, list[int]] = {}
    loops: list[tuple[int, int]] = []
    open_blocks: list[tuple[int, int]] = []  # (opcode, offset)
    pos = start
    try:
        while pos < end:
            at = pos
            op = code[pos]
            pos += 1
            if op in (LOCAL_SET, LOCAL_TEE):
                local, pos = read_uleb128(code, pos)
                writes.setdefault(local, []).append(at - code_start)
            elif op in (BLOCK, LOOP, IF, TRY):
                pos = _skip_blocktype(code, pos)
                open_blocks.append((op, at))
            elif op == TRY_TABLE:
                pos = _skip_blocktype(code, pos)
                count, pos = read_uleb128(code, pos)
                for _ in range(count):
                    kind = code[pos]
                    pos += 1
                    if kind in (0, 1):
                        pos = _skip_leb(code, pos)
                    pos = _skip_leb(code, pos)
                open_blocks.append((op, at))
            elif op == END:
                if open_blocks:
                    kind, opened = open_blocks.pop()
                    if kind == LOOP:
                        loops.append((opened - code_start, at - code_start))
            elif op in _NO_IMMEDIATE or op in _NUMERIC_OPS:
                pass
            elif op in _ONE_INDEX:
                pos = _skip_leb(code, pos)
            elif op in _TWO_INDICES:
                pos = _skip_leb(code, _skip_leb(code, pos))
            elif op in _MEMARG_OPS:
                align, pos = read_uleb128(code, pos)
                if align & 0x40:  # a memory index follows (multiple memories)
                    pos = _skip_leb(code, pos)
                pos = _skip_leb(code, pos)
            elif op in (0x41, 0x42):
                pos = _skip_leb(code, pos)
            elif op == 0x43:
                pos += 4
            elif op == 0x44:
                pos += 8
            elif op == 0x0E:  # br_table
                count, pos = read_uleb128(code, pos)
                for _ in range(count + 1):
                    pos = _skip_leb(code, pos)
            elif op == 0x1C:  # select with types
                count, pos = read_uleb128(code, pos)
                for _ in range(count):
                    pos = _skip_valtype(code, pos)
            elif op == 0xD0:  # ref.null
                pos = _skip_leb(code, pos)
            elif op == 0xFC:
                sub, pos = read_uleb128(code, pos)
                if sub not in _MISC_IMMEDIATES:
                    return None
                for _ in range(_MISC_IMMEDIATES[sub]):
                    pos = _skip_leb(code, pos)
            else:
                return None
    except IndexError:
        return None
    for offsets in writes.values():
        offsets.sort()
    return LocalWrites(writes, loops)


def _skip_leb(code: bytes, pos: int) -> int:
    while code[pos] & 0x80:
        pos += 1
    return pos + 1


def _skip_valtype(code: bytes, pos: int) -> int:
    if code[pos] in (0x63, 0x64):  # (ref null? heaptype)
        return _skip_leb(code, pos + 1)
    return pos + 1


def _skip_blocktype(code: bytes, pos: int) -> int:
    """Empty (0x40), a value type (one byte below 0x80, or a reference type with a heap
    type), or a type index (a non-negative s33)."""
    if code[pos] in (0x63, 0x64) or 0x40 <= code[pos] < 0x80:
        return _skip_valtype(code, pos)
    return _skip_leb(code, pos)
