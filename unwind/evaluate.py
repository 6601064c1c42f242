"""CFI evaluator: given a frame's registers, compute its caller's.

The core (rows -> caller registers, and a walker over many frames) needs only the standard
library, so the gdb plugin can use it inside gdb's Python. Rows come either straight from
the engine's `CfaRule`s (`rows_from_descriptions`) or from `.eh_frame` bytes parsed with
pyelftools (`read_eh_frame`, which imports pyelftools only when called).
"""

from __future__ import annotations

import bisect
import io
from dataclasses import dataclass, field
from typing import Callable, Iterator

from .dwarf import REGISTER_NAMES, Expression, as_expression, evaluate

# Registers the System V ABI preserves across calls: unless a rule says where a callee
# saved one, the caller's value is the callee's.
CALLEE_SAVED = ("rbx", "rbp", "r12", "r13", "r14", "r15")
# A saved register's rule for one the callee kept (DW_CFA_same_value): the engine's
# `frames.SAME_VALUE`, spelled out because this module imports nothing of the engine.
SAME_VALUE = "same value"

ReadMemory = Callable[[int, int], bytes]


@dataclass(frozen=True)
class Row:
    """The unwind rule from `address` up to the next row."""
    address: int
    cfa: tuple[str, int] | Expression  # register + offset, or an expression whose value is the CFA
    # register name -> CFA offset | address Expression | SAME_VALUE
    saved: dict = field(default_factory=dict)


@dataclass
class FrameTable:
    """The rows of one FDE, covering [start, end)."""
    start: int
    end: int
    rows: list[Row]
    signal_frame: bool = False

    def row_at(self, pc: int) -> Row | None:
        k = bisect.bisect_right([r.address for r in self.rows], pc) - 1
        return self.rows[k] if k >= 0 else None


class UnwindError(Exception):
    """The rules at a pc cannot be evaluated with the registers and memory at hand."""


def caller_registers(row: Row, regs: dict[str, int], read_memory: ReadMemory) -> dict[str, int]:
    """The caller's rip, rsp (= the CFA) and callee-saved registers, and those the rules say
    the callee left alone, from the callee's `regs`."""
    try:
        if isinstance(row.cfa, Expression):
            cfa = evaluate(row.cfa, regs, read_memory)
        else:
            cfa = regs[row.cfa[0]] + row.cfa[1]
        caller = {name: regs[name] for name in CALLEE_SAVED if name in regs}
        for name, where in row.saved.items():
            if where == SAME_VALUE:
                if name in regs:
                    caller[name] = regs[name]
                continue
            if isinstance(where, Expression):
                address = evaluate(where, regs, read_memory, push=[cfa])
            else:
                address = cfa + where
            caller[name] = int.from_bytes(read_memory(address, 8), "little")
    except KeyError as e:
        raise UnwindError(f"the rule at 0x{row.address:x} needs register {e.args[0]}") from None
    caller["rsp"] = cfa
    if "rip" not in caller:
        raise UnwindError(f"no return-address rule at 0x{row.address:x}")
    return caller


class UnwindTable:
    """Every FDE of one or more objects, searchable by pc."""

    def __init__(self, frames: list[FrameTable] = ()):
        self.frames: list[FrameTable] = []
        self._starts: list[int] = []
        self.add(frames)

    def add(self, frames: list[FrameTable]) -> None:
        self.frames = sorted(self.frames + list(frames), key=lambda f: f.start)
        self._starts = [f.start for f in self.frames]

    def find(self, pc: int) -> FrameTable | None:
        k = bisect.bisect_right(self._starts, pc) - 1
        if k >= 0 and pc < self.frames[k].end:
            return self.frames[k]
        return None

    def caller_registers(self, regs: dict[str, int], read_memory: ReadMemory,
                         pc_is_return_address: bool = False) -> dict[str, int] | None:
        """The caller's registers, or None if `regs["rip"]` is not in any FDE. A return
        address is looked up at pc-1: the call may be the last instruction of its FDE."""
        frame, row = self._lookup(regs["rip"], pc_is_return_address)
        return caller_registers(row, regs, read_memory) if row else None

    def walk(self, regs: dict[str, int], read_memory: ReadMemory, limit: int = 1000) -> Iterator[dict[str, int]]:
        """The registers of each frame, innermost first, while the pc lies in a known FDE
        (the last frame yielded is the first one outside, e.g. the host caller)."""
        exact_pc = True  # frame 0, or the caller of a signal frame, did not stop at a call
        for _ in range(limit):
            yield regs
            frame, row = self._lookup(regs["rip"], not exact_pc)
            if row is None:
                return
            regs = caller_registers(row, regs, read_memory)
            exact_pc = frame.signal_frame

    def _lookup(self, pc: int, pc_is_return_address: bool) -> tuple[FrameTable | None, Row | None]:
        frame = self.find(pc - 1 if pc_is_return_address else pc)
        if frame is None:
            return None, None
        return frame, frame.row_at(pc - 1 if pc_is_return_address else pc)


# ---- sources of rows ------------------------------------------------------------------------

def _row_from_rule(address: int, rule) -> Row:
    """A `CfaRule` (as `cfi` accepts it) as a Row; the return address defaults to CFA-8."""
    register = as_expression(rule.register)
    cfa = register if isinstance(register, Expression) else (register, rule.offset)
    return Row(address, cfa, {"rip": -8} | {name: as_expression(where) for name, where in rule.saved})


def rows_from_descriptions(descriptions) -> list[FrameTable]:
    """`cfi.FrameDescription`s (engine rows) as FrameTables, without going through bytes.
    Until its first row, a description holds the state just after a call, as in the CIE."""
    tables = []
    for d in descriptions:
        rows = [_row_from_rule(a, r) for a, r in d.rows]
        if not rows or rows[0].address > d.start:
            rows.insert(0, Row(d.start, ("rsp", 8), {"rip": -8}))
        tables.append(FrameTable(d.start, d.end, rows, d.signal_frame))
    return tables


def read_eh_frame(data: bytes, address: int = 0) -> list[FrameTable]:
    """Parse `.eh_frame` bytes (loaded at `address`) with pyelftools into FrameTables."""
    from elftools.dwarf.callframe import FDE, CallFrameInfo, RegisterRule
    from elftools.dwarf.structs import DWARFStructs

    structs = DWARFStructs(little_endian=True, dwarf_format=32, address_size=8)
    info = CallFrameInfo(io.BytesIO(data), len(data), address, structs, for_eh_frame=True)
    frames = []
    for entry in info.get_entries():
        if not isinstance(entry, FDE):
            continue
        start = entry.header["initial_location"]
        augmentation = entry.cie.header["augmentation"] or b""
        rows = []
        for line in entry.get_decoded().table:
            rule = line["cfa"]
            if rule.expr is not None:
                cfa = Expression(bytes(rule.expr))
            else:
                cfa = (REGISTER_NAMES[rule.reg], rule.offset)
            saved = {}
            for number, register_rule in line.items():
                if not isinstance(number, int) or number not in REGISTER_NAMES:
                    continue
                if register_rule.type == RegisterRule.OFFSET:
                    saved[REGISTER_NAMES[number]] = register_rule.arg
                elif register_rule.type == RegisterRule.EXPRESSION:
                    saved[REGISTER_NAMES[number]] = Expression(bytes(register_rule.arg))
                elif register_rule.type == RegisterRule.SAME_VALUE:
                    saved[REGISTER_NAMES[number]] = SAME_VALUE
                elif register_rule.type != RegisterRule.UNDEFINED:
                    raise UnwindError(f"unsupported register rule {register_rule.type} at 0x{line['pc']:x}")
            rows.append(Row(line["pc"], cfa, saved))
        frames.append(FrameTable(start, start + entry.header["address_range"], rows,
                                 signal_frame=b"S" in augmentation))
    return frames

