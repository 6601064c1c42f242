"""Where a function's Wasm code writes its locals, and where its loops are.

Producers' DWARF can claim a variable stays in a Wasm local after the local was reused for
another value (LLVM at -O2 does, for inlined code). A location "in local N" is therefore
trusted only up to the first write of N inside its range, and not in a loop that
contains such a write (a back edge brings the clobbered value round again).

Code using an instruction the engine does not run (SIMD, GC objects) gives None, and
locations in that function are then not trusted at all.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from stackstitch.engine.frontend.instructions import BodyReader, UnknownInstruction

BLOCK_OPENERS = {"block", "loop", "if", "try_table"}


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
    """Scan module bytes [start, end) (a function's instructions, read with the engine's
    one instruction reader); offsets in the result are code-section offsets (module offset
    - `code_start`). None: an instruction the engine does not know."""
    writes: dict[int, list[int]] = {}
    loops: list[tuple[int, int]] = []
    open_blocks: list[tuple[str, int]] = []  # (opcode name, offset)
    reader = BodyReader(code, start)
    try:
        while reader.pos < end:
            at, op, immediates = reader.instruction()
            if op.name in ("local.set", "local.tee"):
                writes.setdefault(immediates[0], []).append(at - code_start)
            elif op.name in BLOCK_OPENERS:
                open_blocks.append((op.name, at))
            elif op.name == "end" and open_blocks:
                kind, opened = open_blocks.pop()
                if kind == "loop":
                    loops.append((opened - code_start, at - code_start))
    except (UnknownInstruction, IndexError):
        return None
    for offsets in writes.values():
        offsets.sort()
    return LocalWrites(writes, loops)
