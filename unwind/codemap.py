"""Where Wasm code went: native address ranges of Wasm code offsets, per compiled function.

The compiler records, per function, an address map [(native offset, Wasm module offset)]:
the native code from one entry to the next was emitted for that one Wasm instruction. DWARF
in a Wasm module speaks of code-section offsets; a Wasm range [lo, hi) becomes the set of
native pieces emitted for instructions in it, often several native ranges. The first piece
of every function is its native prologue, before which no frame slot is meaningful.

Inside some loops a local lives only in a register (the compiler's pin ranges): its frame
slot is stale there, and debug info must name the register instead (`pin_pieces`).

The code of a `loop`, `else` or block `end` runs only on the way into the label it binds
at its end (a loop's register loads, an arm's merge moves): branches land after it.
"""

from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass, field

from .wasmcode import scan_function

# Generated code keeps rbp frames (engine/DESIGN.md): in a function's body, CFA = rbp + 16.
CFA_FROM_RBP = 16
LOOP, ELSE, END = 0x03, 0x05, 0x0B


@dataclass
class FunctionCode:
    index: int  # in the module's function index space
    name: str
    start: int  # absolute native range
    end: int
    wasm_start: int  # code-section offsets: the function's entry (size field) .. end
    wasm_end: int
    first_instruction: int  # code-section offset
    pieces: list  # [(native start, native end, code offset)], native order
    body_start: int  # absolute address after the native prologue
    cfi_rows: list  # [(absolute address, frames.CfaRule)]
    param_types: list  # Wasm value types ("i32", ...)
    local_types: list  # non-parameter locals
    label_pieces: frozenset = frozenset()  # indices of pieces that end at a branch target
    # local index -> [(start, end, register name)] absolute, by start: where the local lives
    # only in that register (its frame slot may be stale); `pins_by_local`
    pins: dict = field(default_factory=dict)

    @functools.cached_property
    def frame_ranges(self) -> list[tuple[int, int]]:
        """[(start, end)] absolute, where rbp holds this function's frame: where the CFA
        rule is rbp + 16."""
        ranges: list[tuple[int, int]] = []
        rows = self.cfi_rows + [(self.end, None)]
        for (at, rule), (following, _) in zip(rows, rows[1:]):
            if rule is not None and rule.register == "rbp" and rule.offset == CFA_FROM_RBP and at < following:
                ranges.append((max(at, self.start), min(following, self.end)))
        return merge_ranges(ranges)

    @functools.cached_property
    def by_offset(self) -> list:
        """Pieces as (code offset, native start, native end), sorted."""
        return sorted((w, s, e) for s, e, w in self.pieces)

    @functools.cached_property
    def offsets(self) -> list:
        return [w for w, _, _ in self.by_offset]

    def pieces_between(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """Native ranges of the pieces emitted for code offsets in [lo, hi)."""
        first, last = bisect.bisect_left(self.offsets, lo), bisect.bisect_left(self.offsets, hi)
        return [(s, e) for _, s, e in self.by_offset[first:last]]

    @property
    def all_local_types(self) -> list:
        return self.param_types + self.local_types

    def pin_pieces(self, lo: int, hi: int, locals_read) -> list[tuple[int, int, dict[int, str]]]:
        """The native range [lo, hi) cut where any of `locals_read` moves between its slot
        and a register: [(start, end, {local: register})] in order, naming the locals that
        are in registers over that piece (an empty dict: all of them in their slots)."""
        changes = []  # (address, local, its register from there on, or None: its slot)
        for local in locals_read:
            ranges = self.pins.get(local, ())
            for start, end, register in ranges[bisect.bisect_right(ranges, lo, key=_range_end):]:
                if start >= hi:
                    break
                changes += [(max(start, lo), local, register), (min(end, hi), local, None)]
        if not changes:
            return [(lo, hi, {})]
        changes.sort(key=lambda change: (change[0], change[2] is not None))  # a range's end first
        pieces: list[tuple[int, int, dict[int, str]]] = []
        registers: dict[int, str] = {}
        at = lo
        for address, local, register in changes + [(hi, None, None)]:
            if address > at:
                if pieces and pieces[-1][2] == registers:
                    pieces[-1] = (pieces[-1][0], address, pieces[-1][2])
                else:
                    pieces.append((at, address, dict(registers)))
                at = address
            if register is not None:
                registers[local] = register
            elif local is not None:
                registers.pop(local, None)
        return pieces


def _range_end(pin_range: tuple) -> int:
    return pin_range[1]


def pins_by_local(pin_ranges, base: int) -> dict[int, list[tuple[int, int, str]]]:
    """The compiler's pin ranges (blob offsets, by local and start) as absolute
    [(start, end, register name)] lists by local."""
    pins: dict[int, list[tuple[int, int, str]]] = {}
    for start, end, local, register in pin_ranges:
        pins.setdefault(local, []).append((base + start, base + end, register))
    return pins


class CodeMap:
    """The native code of one compiled module, at its final address."""

    def __init__(self, module, compiled, base: int, code_start: int):
        self.data = module.data
        self.code_start = code_start
        self._writes: dict[int, object] = {}
        self.functions: list[FunctionCode] = []
        first = module.num_imported_funcs
        for f in sorted(compiled.functions, key=lambda f: f.start):
            body = module.code[f.index - first]
            ftype = module.func_type(f.index)
            end = base + f.end
            offsets = [(base + native, wasm - code_start) for native, wasm in f.addr_map]
            pieces = [(native, offsets[k + 1][0] if k + 1 < len(offsets) else end, wasm)
                      for k, (native, wasm) in enumerate(offsets)]
            pieces = [p for p in pieces if p[0] < p[1]]
            body_start = pieces[1][0] if len(pieces) > 1 else end
            label_pieces = frozenset(k for k, (_, _, wasm) in enumerate(pieces)
                                     if module.data[wasm + code_start] in (LOOP, ELSE, END)
                                     and wasm + code_start != body.code_end - 1)
            self.functions.append(FunctionCode(
                f.index, module.func_name(f.index), base + f.start, end,
                0, body.code_end - code_start, body.code_start - code_start, pieces, body_start,
                [(base + at, rule) for at, rule in f.cfi_rows],
                [value_type_name(t) for t in ftype.params], [value_type_name(t) for t in body.locals],
                label_pieces, pins_by_local(f.pin_ranges, base)))
        self.functions.sort(key=lambda fc: fc.wasm_end)
        for k in range(1, len(self.functions)):  # entries are contiguous in the code section
            self.functions[k].wasm_start = self.functions[k - 1].wasm_end
        self._wasm_ends = [fc.wasm_end for fc in self.functions]
        self.start = min((fc.start for fc in self.functions), default=base)
        self.end = max((fc.end for fc in self.functions), default=base)

    def local_writes(self, function: FunctionCode):
        """Where the function writes its locals (`wasmcode.LocalWrites`), or None."""
        if function.index not in self._writes:
            self._writes[function.index] = scan_function(
                self.data, function.first_instruction + self.code_start, function.wasm_end + self.code_start,
                self.code_start)
        return self._writes[function.index]

    def function_at(self, offset: int) -> FunctionCode | None:
        """The function whose code-section entry holds `offset`."""
        k = bisect.bisect_right(self._wasm_ends, offset)
        return self.functions[k] if k < len(self.functions) else None

    def functions_in(self, lo: int, hi: int) -> list[FunctionCode]:
        k = bisect.bisect_right(self._wasm_ends, lo)
        out = []
        while k < len(self.functions) and self.functions[k].wasm_start < hi:
            out.append(self.functions[k])
            k += 1
        return out

    def native_ranges(self, lo: int, hi: int, body_only: bool = False) -> list[tuple[int, int]]:
        """Absolute native ranges of the code emitted for Wasm offsets in [lo, hi), merged
        and sorted; with `body_only`, only where the frame's slots can be read."""
        ranges = []
        for fc in self.functions_in(lo, hi):
            pieces = sorted(fc.pieces_between(lo, hi))
            if body_only:
                pieces = _intersect(pieces, [(max(s, fc.body_start), e) for s, e in fc.frame_ranges])
            ranges += pieces
        return merge_ranges(ranges)


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(r for r in ranges if r[0] < r[1]):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Intersection of two sorted lists of disjoint ranges."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        s, e = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def value_type_name(valtype) -> str:
    """"i32", "i64", "f32", "f64", "v128", or "ref" for every reference type."""
    return valtype if isinstance(valtype, str) else "ref"

