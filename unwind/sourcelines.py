"""Line tables: a compile unit's Wasm line program -> native line sequences.

Each native piece of a function (the code emitted for one Wasm instruction, `codemap`) gets
the row of the Wasm instruction: the last Wasm row at or before its offset. A function's
native prologue gets a row of its own, and the first piece after it always starts a row
marked `prologue_end`, unless the producer marked a later one: debuggers put function
breakpoints there, where the frame's slots hold their values. In that case the first piece
continues the prologue's row if it has the same line: gdb's `step` into a function stops
where its first row ends, and must not stop before the producer's prologue has set the
frame base.

The row of a piece that ends at a branch target (a loop's start, an `else`, a block's
`end`: `codemap`) starts at that target, so that a breakpoint on the line is hit however
the code gets there (every iteration of a loop, not only the first); the piece's own code
joins the row before.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass

from elftools.common.exceptions import DWARFError

from .codemap import CodeMap, FunctionCode
from .dwarfout import LineRow, LineSequence
from .wasmdwarf import PARSE_ERRORS, comp_dir, from_wasm_tools, read_wasm_dwarf, text


@dataclass
class WasmSequence:
    start: int  # code offsets
    end: int
    addresses: list  # row addresses, sorted
    states: list  # pyelftools line states, in the same order


@dataclass
class PrologueEnd:
    """Where a function's prologue ends (the producer's mark, else our native one)."""
    native: int  # absolute address
    wasm: int  # code offset


@dataclass
class WasmLineTable:
    directories: list  # DWARF 4 include directories (index 1 on)
    files: list  # DWARF 4 files (index 1 on): (name, directory index)
    file_shift: int  # add to a Wasm file index (DWARF 5 counts from 0) for ours
    sequences: list

    def file_path(self, number: int, comp_dir: str = "") -> str | None:
        """Our file `number` (1 on) as a path: joined to its directory, then to the unit's
        compilation directory while it is still relative."""
        if not 0 < number <= len(self.files):
            return None
        name, directory = self.files[number - 1]
        if not os.path.isabs(name) and 0 < directory <= len(self.directories):
            name = os.path.join(self.directories[directory - 1], name)
        if not os.path.isabs(name) and comp_dir:
            name = os.path.join(comp_dir, name)
        return name


def read_line_table(dwarf, cu, bias: int) -> WasmLineTable | None:
    """The unit's line table, its addresses moved by `bias`; None if it has none."""
    try:
        program = dwarf.line_program_for_CU(cu)
        if program is None:
            return None
        entries = program.get_entries()
    except (DWARFError, KeyError, ValueError, IndexError):
        return None
    header = program.header
    if header.version >= 5:
        directories = [text(d.DW_LNCT_path) for d in header.directories[1:]]
        files = [(text(f.DW_LNCT_path), f.DW_LNCT_directory_index) for f in header.file_names]
        shift = 1
    else:
        directories = [text(d) for d in header.include_directory]
        files = [(text(f.name), f.dir_index) for f in header.file_entry]
        shift = 0
    sequences, addresses, states = [], [], []
    for entry in entries:
        state = entry.state
        if state is None:
            continue
        if state.end_sequence:
            if addresses:
                sequences.append(WasmSequence(addresses[0], state.address + bias, addresses, states))
            addresses, states = [], []
        else:
            addresses.append(state.address + bias)
            states.append(state)
    return WasmLineTable(directories, files, shift, sequences)


def native_sequence(function: FunctionCode, sequence: WasmSequence,
                    file_shift: int) -> tuple[LineSequence, PrologueEnd] | None:
    """The function's native rows, and where its prologue ends; None if the sequence has
    no row for any of its pieces."""
    rows: list[LineRow] = []
    last = furthest = None
    prologue_end = None
    for k, (start, end, wasm) in enumerate(function.pieces):
        i = bisect.bisect_right(sequence.addresses, wasm) - 1
        if i < 0 or wasm >= sequence.end:
            continue
        if i == last and k != 1:
            continue
        state = sequence.states[i]
        if k > 1 and k in function.label_pieces:
            start = end
        carried = False
        if rows and rows[-1].address == start:  # a label piece's row, at the next piece's start
            carried = rows.pop().prologue_end
        # The producer's mark counts on the first body code that reaches its row (not on
        # the native prologue, nor on out-of-line code placed after the body).
        marked = k >= 1 and state.prologue_end and prologue_end is None and (furthest is None or i > furthest)
        if marked:
            prologue_end = PrologueEnd(start, sequence.addresses[i])
        rows.append(LineRow(start, state.file + file_shift, state.line, state.column, bool(state.is_stmt),
                            bool(marked or carried)))
        last = i
        furthest = i if furthest is None else max(furthest, i)
    if not rows:
        return None
    if rows[0].address != function.start:
        first = rows[0]
        rows.insert(0, LineRow(function.start, first.file, first.line, first.column))
    if prologue_end is None:
        prologue_end = body_start(function)
        at = next((k for k, r in enumerate(rows) if r.address == function.body_start), None)
        if at is not None:
            rows[at] = rows[at]._replace(is_stmt=True, prologue_end=True)
    elif len(rows) > 2 and rows[1].address == function.body_start and rows[1].line == rows[0].line \
            and rows[1].file == rows[0].file and rows[1].address < prologue_end.native:
        del rows[1]  # gdb's `step` into the function stops at the end of its first row
    return LineSequence(rows, function.end), prologue_end


def native_source_lines(module, compiled, code_address: int) -> dict[int, list[tuple[int, str, int]]]:
    """The module's own DWARF lines in native terms, for a profiler: a function's native
    start -> [(address, source file, line)], sorted, one row per change of file or line.
    Empty if the module has no DWARF, or DWARF that cannot be read."""
    try:
        wasm = read_wasm_dwarf(module)
        if wasm is None:
            return {}
        code = CodeMap(module, compiled, code_address, wasm.code_start)
        out: dict[int, list[tuple[int, str, int]]] = {}
        for cu in wasm.info.iter_CUs():
            top = cu.get_top_DIE()
            table = read_line_table(wasm.info, cu, wasm.count_size if from_wasm_tools(top) else 0)
            if table is None:
                continue
            directory = comp_dir(top)
            for sequence in table.sequences:
                for function in code.functions_in(sequence.start, sequence.end):
                    if function.start in out or not sequence.start <= function.first_instruction < sequence.end:
                        continue
                    found = native_sequence(function, sequence, table.file_shift)
                    if found is None:
                        continue
                    rows: list[tuple[int, str, int]] = []
                    for row in found[0].rows:
                        path = table.file_path(row.file, directory)
                        if path is not None and row.line and (not rows or rows[-1][1:] != (path, row.line)):
                            rows.append((row.address, path, row.line))
                    if rows:
                        out[function.start] = rows
        return out
    except PARSE_ERRORS:
        return {}


def body_start(function: FunctionCode) -> PrologueEnd:
    """The end of the native prologue: the first piece of Wasm instruction code."""
    if len(function.pieces) > 1:
        return PrologueEnd(function.pieces[1][0], function.pieces[1][2])
    return PrologueEnd(function.body_start, function.first_instruction)
