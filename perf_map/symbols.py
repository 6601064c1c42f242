"""The code symbols a profiler needs, gathered from the engine's compile results.

Both the perf map and the jitdump writer describe the same things: each compiled Wasm
function and each stub, with its absolute address, code, unwind rows and address map.
Gathering them here keeps the two writers to their file formats. Rows and address maps
are passed on untouched, in the offsets the engine recorded them in (`origin` is the
symbol's own start in those offsets), so a perf map pays nothing for them.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field


@dataclass
class CodeSymbol:
    name: str
    address: int  # absolute address of the first instruction
    code: bytes
    origin: int  # the offset of `address` in the offsets `cfi_rows` and `lines` use
    cfi_rows: list  # [(offset, frames.CfaRule)], sorted; AT_CALL holds until the first
    lines: list = field(default_factory=list)  # [(offset, wasm module offset)], sorted

    @property
    def size(self) -> int:
        return len(self.code)


def function_symbols(module, compiled, region) -> list[CodeSymbol]:
    """One symbol per compiled function of `module`, placed at `region.address`."""
    return [CodeSymbol(name=module.func_name(f.index), address=region.address + f.start,
                       code=compiled.code[f.start:f.end], origin=f.start,
                       cfi_rows=f.cfi_rows, lines=f.addr_map)
            for f in compiled.functions]


def stub_symbols(stubs) -> list[CodeSymbol]:
    """One symbol per stub of a store (entry, trap, host call, ...)."""
    base = stubs.region.address
    code = ctypes.string_at(base, stubs.region.size)  # regions are mapped read+execute
    return [CodeSymbol(name=s.name, address=base + s.start, code=code[s.start:s.end],
                       origin=s.start, cfi_rows=s.cfi_rows)
            for s in stubs.symbols]
