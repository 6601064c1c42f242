"""Frame-pointer chains as perf walks them, at every instruction of every stack-switching
sequence and stub, in both switching modes.

gdb (through MI) steps `stackstitch run` one instruction at a time through
data/profiling/sequences.wat: resume of fresh and suspended continuations, cont.bind's
merge, suspend through a handler search that passes a handler, switch to a fresh and to a
suspended continuation, continuation return, resume_throw, a host call from a
continuation and a trap. At each instruction it records two chains:

- the frame-pointer chain, as the kernel records it for `perf record --call-graph=fp`:
  the pc, then the return address at [rbp+8], following the saved rbp at [rbp];
- gdb's own unwind (our CFI, which the other gdb tests check), down to the entry stub
  and its host caller: the exact chain.

They must be the same. The only exceptions are frame-pointer blind spots, which no
frame-pointer code avoids because pc and rbp cannot change in one instruction: the first
instruction of a function or stub (and the `mov rbp, rsp` after its `push rbp`), a
`ret`, and the jump that ends a switch. There the walk must lack exactly the caller of
frame 0 (one frame, like any function's prologue), and nothing else.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from stackstitch.engine.compiler.stubs import NATIVE_SWITCH_STUBS
from stackstitch.engine.frontend.loader import load_module
from stackstitch.engine.runtime.store import Store
from gdbmi import GdbSession

MODULE = Path(__file__).resolve().parent / "data" / "profiling" / "sequences.wat"
ENTRY = "stackstitch_entry"
STEP_LIMIT = 4000

# Runs in gdb's own Python.
STEPPER = """
import json
import gdb

MASK = 2**64 - 1

def words(address, count):
    data = gdb.selected_inferior().read_memory(address, 8 * count).tobytes()
    return [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data), 8)]

def frame_pointer_chain(pc, fp, depth):
    '''What perf's kernel walker records: pc, then [fp+8] while following [fp].'''
    chain = [pc]
    while len(chain) < depth:
        try:
            fp, return_address = words(fp, 2)
        except (gdb.MemoryError, OverflowError, ValueError):
            break
        chain.append(return_address)
    return chain

def unwound_chain(entry, ours):
    '''gdb's frames (pc, name), down to the entry stub and its caller (or to the first
    host frame); None if it never leaves our code.'''
    chain, frame = [], gdb.newest_frame()
    while frame is not None and len(chain) < 64:
        chain.append((frame.pc(), frame.name()))
        if frame.name() == entry:
            older = frame.older()
            return chain + ([(older.pc(), older.name())] if older is not None else [])
        if frame.name() not in ours:
            return chain
        frame = frame.older()
    return None

def step_all(path, ours, entry, limit):
    '''From the entry stub, record every instruction until it returns; host code
    called on the way runs to its return.'''
    arch = gdb.newest_frame().architecture()
    with open(path, "w") as out:
        for _ in range(limit):
            while gdb.newest_frame().name() not in ours:
                gdb.execute("finish", to_string=True)
            frame = gdb.newest_frame()
            pc = frame.pc()
            asm = arch.disassemble(pc)[0]["asm"]
            unwound = unwound_chain(entry, ours)
            depth = len(unwound) + 1 if unwound else 8
            walked = frame_pointer_chain(pc, int(frame.read_register("rbp")) & MASK, depth)
            record = {"pc": pc, "function": frame.name(), "asm": asm, "unwound": unwound,
                      "walked": walked}
            if unwound is None or walked[:len(unwound)] != [p for p, _ in unwound]:
                record["symbol"] = gdb.execute(f"info symbol {pc:#x}", to_string=True)
            out.write(json.dumps(record) + "\\n")
            if frame.name() == entry and asm.startswith("ret"):
                return
            gdb.execute("stepi", to_string=True)
"""


def symbol_offset(info_symbol: str) -> int:
    """The offset in `info symbol` output: `name + 4 in section ...` (0 without a `+`)."""
    words = info_symbol.split()
    return int(words[2]) if len(words) > 2 and words[1] == "+" else 0


def blind_spot(step: dict) -> bool:
    """An instruction where pc and rbp disagree in any frame-pointer code."""
    return symbol_offset(step["symbol"]) in (0, 1) or step["asm"].removeprefix("repz ").split()[0] in ("ret", "jmp")


def names_of_code(module_path: Path) -> set[str]:
    module = load_module(str(module_path))
    stubs = {symbol.name for symbol in Store().stubs.symbols}
    return stubs | {module.func_name(i) for i in range(module.num_imported_funcs, module.num_imported_funcs + len(module.funcs))}


def step_through(require_tool, tmp_path: Path, mode: str) -> list[dict]:
    stepper = tmp_path / "stepper.py"
    stepper.write_text(textwrap.dedent(STEPPER))
    steps_path = tmp_path / "steps.jsonl"
    ours = sorted(names_of_code(MODULE))
    command = [sys.executable, require_tool("stackstitch"), "run", str(MODULE),
               f"--switching={mode}", "--invoke", "main"]
    with GdbSession(require_tool("gdb"), command) as gdb:
        gdb.cli(f"source {stepper}")
        gdb.cli(f"break {ENTRY}")
        gdb.run()
        gdb.python(f"step_all({str(steps_path)!r}, {ours!r}, {ENTRY!r}, {STEP_LIMIT})", timeout=600)
        output = gdb.output()
    assert steps_path.is_file(), output
    return [json.loads(line) for line in steps_path.read_text().splitlines()]


@pytest.mark.parametrize("mode", ("native", "libcall"))
def test_frame_pointer_chain_at_every_instruction(require_tool, tmp_path, mode):
    steps = step_through(require_tool, tmp_path, mode)
    assert 100 < len(steps) < STEP_LIMIT, len(steps)
    blind = Counter()
    for k, step in enumerate(steps):
        unwound = step["unwound"]
        context = f"step {k} at 0x{step['pc']:x} in {step['function']} ({step['asm']}): {step}"
        assert unwound is not None, "gdb's unwind does not end: " + context
        # Down to the entry stub; only the trap stub, once it has moved to the entry's
        # frame to leave through it, has the entry's caller as its own.
        names = [name for _, name in unwound]
        assert ENTRY in names or step["function"] == "stackstitch_trap", context
        assert all(name is not None for name in names[:-1]), context  # the last: host
        exact = [pc for pc, _ in unwound]
        if step["walked"][:len(exact)] == exact:
            continue
        assert blind_spot(step), "the frame-pointer chain differs from gdb's: " + context
        assert step["walked"][:len(exact) - 1] == exact[:1] + exact[2:], \
            "more than one frame lost: " + context
        blind[step["function"]] += 1

    stepped = Counter(step["function"] for step in steps)
    switch_stubs = (NATIVE_SWITCH_STUBS if mode == "native" else ("stackstitch_libcall_switch",))
    for stub in (*switch_stubs, "stackstitch_continuation_start", "stackstitch_handler_search",
                 "stackstitch_bind_merge", "stackstitch_host_call", "stackstitch_trap"):
        assert stepped[stub], (stub, stepped)
    for name in ("gen", "middle", "generators", "task_a", "task_b", "tasks", "catcher", "throwing",
                 "crash", "fp_main"):
        assert stepped[name], (name, stepped)
    exact_share = 100 * (len(steps) - sum(blind.values())) / len(steps)
    print(f"{mode}: {len(steps)} instructions, {exact_share:.1f}% exact, "
          f"blind spots (one caller frame missing): {dict(blind)}")
