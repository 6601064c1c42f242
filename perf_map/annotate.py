"""`stackstitch perf annotate FUNC`: a JIT function's machine code with its source positions
and the samples taken at each instruction.

The code and its positions come from the run's jitdump (CODE_LOAD and DEBUG_INFO records:
`file:line` of the module's own DWARF, or the module file with its Wasm offsets as lines
when it has none, as gdb and `perf report --sort srcline` show them); the samples' pcs from
`perf script`. Disassembly is capstone's.
"""

from __future__ import annotations

import bisect
import os
import re
from collections import Counter
from dataclasses import dataclass

from .jitdump import CodeLoad, DebugInfo, read_jitdump

SOURCE_WIDTH = 20  # the source column: file:line

# `perf script -G -F pid,ip,sym` lines: pid, absolute ip, symbol.
SCRIPT_FIELDS = "pid,ip,sym"
_SAMPLE = re.compile(r"^\s*(\d+)\s+([0-9a-f]+)\s+(\S+)")


class AnnotateError(Exception):
    """The function or its code cannot be found (message is one line)."""


@dataclass
class SampledCode:
    load: CodeLoad
    positions: list[tuple[int, str, int]]  # (address, file, line), sorted


def sample_pcs(script_text: str) -> tuple[Counter, Counter]:
    """({pid: samples}, {pc: samples}) from `perf script -G -F pid,ip,sym` output."""
    pids: Counter = Counter()
    pcs: Counter = Counter()
    for line in script_text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            pids[int(match.group(1))] += 1
            pcs[int(match.group(2), 16)] += 1
    return pids, pcs


def find_code(directory: str, pid: int, function: str) -> list[SampledCode]:
    """Every CODE_LOAD named `function` in the jitdump of process `pid`."""
    path = os.path.join(directory, f"jit-{pid}.dump")
    if not os.path.isfile(path):
        raise AnnotateError(f"no jitdump of process {pid} in {directory}")
    records = read_jitdump(path).records
    maps = {r.code_addr: sorted((e.address, os.path.basename(e.filename), e.line) for e in r.entries)
            for r in records if isinstance(r, DebugInfo)}
    loads = [r for r in records if isinstance(r, CodeLoad)]
    found = [SampledCode(r, maps.get(r.code_addr, [])) for r in loads if r.name == function]
    if not found:
        names = ", ".join(sorted({r.name for r in loads if not r.name.startswith("stackstitch_")})[:12])
        raise AnnotateError(f"no JIT function named {function!r} (functions: {names})")
    return found


def render(code: SampledCode, pcs: Counter, all_samples: int) -> str:
    """The listing: samples and share per instruction, the source position where it
    changes, the offset in the function and the instruction."""
    from capstone import CS_ARCH_X86, CS_MODE_64, Cs
    load = code.load
    end = load.code_addr + len(load.code)
    in_function = sum(n for pc, n in pcs.items() if load.code_addr <= pc < end)
    share = f"{100 * in_function / all_samples:.1f}%" if all_samples else "n/a"
    lines = [f"{load.name}: {len(load.code)} bytes at 0x{load.code_addr:x}, "
             f"{in_function:,} samples ({share} of all)",
             f"{'samples':>8} {'share':>6}  {'source':>{SOURCE_WIDTH}}  {'offset':>7}  instruction"]
    addresses = [address for address, _, _ in code.positions]
    shown = None
    for insn in Cs(CS_ARCH_X86, CS_MODE_64).disasm(load.code, load.code_addr):
        k = bisect.bisect_right(addresses, insn.address) - 1
        position = f"{code.positions[k][1]}:{code.positions[k][2]}" if k >= 0 else None
        source = position if position is not None and position != shown else ""
        shown = position
        n = pcs.get(insn.address, 0)
        lines.append(f"{n or '':>8} {f'{100 * n / in_function:.1f}%' if n else '':>6}  "
                     f"{source:>{SOURCE_WIDTH}}  +0x{insn.address - load.code_addr:04x}  "
                     f"{insn.mnemonic} {insn.op_str}".rstrip())
    return "\n".join(lines) + "\n"
