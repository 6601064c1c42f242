"""Real gdb (no plugin, driven through MI) on `stackstitch run` across continuation boundaries: backtraces
through nested resumes and after a switch, `stepi` through resume, switch and suspend with
a correct backtrace at every instruction, and our CFI evaluator agreeing with gdb's
unwinder at every call site, start stub included. Both switching modes.

gdb shows each continuation's start stub as `<signal handler called>`: its CIE carries the
`S` augmentation (engine/compiler/stubs.py, start_stub_rule), which is what lets gdb accept a
resumer whose stack lies below the continuation's."""

from __future__ import annotations

import io
import itertools
import json
import re
import sys
import textwrap
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from stackstitch.unwind.evaluate import UnwindTable, read_eh_frame
from gdbmi import GdbSession
from test_gdb_plain import COLLECTOR, _read_memory, backtrace_lines

DATA = Path(__file__).resolve().parent / "data" / "gdb"
MODES = ("native", "libcall")
SIGNAL = "<signal handler called>"
ENTRY = "stackstitch_entry"
START_STUB = "stackstitch_continuation_start"
# Stubs that Wasm code calls in the middle of a switching instruction.
HELPER_STUBS = ("stackstitch_handler_search", "stackstitch_libcall_switch", "stackstitch_bind_merge",
                "stackstitch_resume", "stackstitch_suspend", "stackstitch_switch")
UNWIND_FAILURES = ("corrupt stack", "previous frame inner to this frame", "Backtrace stopped")

# nested.wat at leaf: every Wasm frame in resume-chain order, a start stub at each boundary.
NESTED_BACKTRACE = ["leaf", "inner", SIGNAL, "f2", "f1", "outer", SIGNAL, "main", ENTRY]
NESTED_WASM_FRAMES = [name for name in NESTED_BACKTRACE if name not in (SIGNAL, ENTRY)]

# Runs in gdb's own Python: `stepi` until frame 0 is `until`, saving each step's backtrace.
STEPPER = """
import json
import gdb

# Frame names innermost first, as gdb's unwinder has them (the stubs marked as signal
# frames, which `bt` prints as `<signal handler called>`, keep their names here).
def chain(frame, limit=20):
    names = []
    while frame is not None and len(names) < limit:
        names.append(frame.name() or "??")
        frame = frame.older()
    return names

def step_through(path, until, limit):
    with open(path, "w") as out:
        for _ in range(limit):
            gdb.execute("stepi", to_string=True)
            frame = gdb.newest_frame()
            out.write(json.dumps({"pc": frame.pc(), "function": frame.name(), "chain": chain(frame),
                                  "bt": gdb.execute("bt 20", to_string=True)}) + "\\n")
            if frame.name() == until:
                return
"""

# Runs in gdb's own Python, after COLLECTOR: breakpoints at every call site of some
# functions and at every instruction of others, then gdb's frames at each stop, and the JIT
# objects as registered in the debuggee (read through __jit_debug_descriptor).
CALL_SITE_COLLECTOR = """
import re

INSTRUCTION = re.compile(r"^(?:=>)?\\s+0x([0-9a-f]+) <\\+\\d+>:\\s+(\\S+)", re.M)

def break_at_call_sites(functions, every_instruction):
    '''Each function's entry, its calls and their return addresses; every instruction of
    the others.'''
    addresses = set()
    for name in functions + every_instruction:
        listing = gdb.execute(f"disassemble {name}", to_string=True)
        instructions = [(int(a, 16), op) for a, op in INSTRUCTION.findall(listing)]
        addresses.add(instructions[0][0])
        for (address, op), following in zip(instructions, instructions[1:] + [None]):
            if name in every_instruction:
                addresses.add(address)
            elif op == "call":
                addresses.add(address)
                if following:
                    addresses.add(following[0])
    for address in sorted(addresses):
        gdb.execute(f"break *{address:#x}", to_string=True)

def save_jit_objects(out_dir):
    inferior = gdb.selected_inferior()
    word = lambda address: int.from_bytes(inferior.read_memory(address, 8).tobytes(), "little")
    entry = word(int(gdb.parse_and_eval("(unsigned long) &__jit_debug_descriptor")) + 16)
    while entry:
        image, size = word(entry + 16), word(entry + 24)
        with open(f"{out_dir}/object-{image:x}.o", "wb") as f:
            f.write(inferior.read_memory(image, size).tobytes())
        entry = word(entry)

def collect_at_every_stop(out_dir, limit):
    save_jit_objects(out_dir)
    for _ in range(limit):
        gdb.execute("continue", to_string=True)
        if not gdb.selected_inferior().pid:
            return
        collect(f"{out_dir}/stops.jsonl", depth=16, below=512, above=1024)
"""


def stackstitch_command(require_tool, module: str, mode: str) -> list[str]:
    stackstitch = require_tool("stackstitch")
    return [sys.executable, stackstitch, "run", str(DATA / module), f"--switching={mode}",
            "--invoke", "main"]


def run_gdb(require_tool, module: str, mode: str, commands: list[str]) -> str:
    """gdb's output (through MI) for `commands` on `stackstitch run MODULE --invoke main`."""
    with GdbSession(require_tool("gdb"), stackstitch_command(require_tool, module, mode)) as gdb:
        for command in commands:
            if command in ("run", "continue"):
                gdb.run(command)
            elif command.startswith("python "):
                gdb.python(command[len("python "):], timeout=600)
            else:
                gdb.cli(command, timeout=600)
        return gdb.output()


def frame_name(line: str) -> str:
    """The function of one `bt` line: a name, `??`, or SIGNAL for a start stub."""
    if SIGNAL in line:
        return SIGNAL
    return re.match(r"#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(", line).group(1)


def frames_down_to_entry(names: list[str], context: str) -> list[str]:
    """The frame names up to and including the entry stub, which must be there, with no
    `??` before it."""
    assert ENTRY in names, context
    wasm_part = names[:names.index(ENTRY) + 1]
    assert "??" not in wasm_part, context
    return wasm_part


@pytest.mark.parametrize("mode", MODES)
def test_backtrace_across_two_boundaries(require_tool, mode):
    output = run_gdb(require_tool, "nested.wat", mode, ["break leaf", "run", "bt"])
    assert re.search(r"Breakpoint 1, .*leaf \(\)", output), output
    lines = backtrace_lines(output)
    assert frames_down_to_entry([frame_name(line) for line in lines], output) == NESTED_BACKTRACE, output
    assert "libffi" in lines[len(NESTED_BACKTRACE)], output  # then the host: ctypes' call
    assert not any(failure in output for failure in UNWIND_FAILURES), output


@pytest.mark.parametrize("mode", MODES)
def test_backtrace_after_switch_shows_the_new_continuation(require_tool, mode):
    output = run_gdb(require_tool, "switch.wat", mode, ["break leaf", "run", "bt"])
    lines = backtrace_lines(output)
    assert frames_down_to_entry([frame_name(line) for line in lines], output) == ["leaf", "task_b", SIGNAL, "scheduler", ENTRY], output
    assert "libffi" in lines[5], output
    assert not any("task_a" in line for line in lines), output  # suspended, off the chain
    assert not any(failure in output for failure in UNWIND_FAILURES), output


# host_call.wat stopped where the host-call stub calls into Python: the host code runs on
# the main stack, above the continuation's frames, and gdb still follows the whole chain.
# The stub's CIE is signal-marked too (that is what lets gdb go on), so it shows as one.
HOST_CALL_BACKTRACE = ["PyObject_CallNoArgs", SIGNAL, "leaf", "inner", SIGNAL, "main", ENTRY]


@pytest.mark.parametrize("mode", MODES)
def test_backtrace_from_host_code_called_in_a_continuation(require_tool, mode):
    output = run_gdb(require_tool, "host_call.wat", mode,
                     ["break leaf", "run", "break PyObject_CallNoArgs", "continue", "bt", "kill"])
    lines = backtrace_lines(output)
    assert frames_down_to_entry([frame_name(line) for line in lines], output) == HOST_CALL_BACKTRACE, output
    assert not any(failure in output for failure in UNWIND_FAILURES), output


# stepping.wat: drive resumes task_a, task_a switches to task_b, task_b suspends to drive.
# Frame 0 -> the whole expected chain; a helper stub at frame 0 adds itself on top.
STEPPING_CHAINS = {
    "main": ["main", ENTRY],
    "drive": ["drive", "main", ENTRY],
    SIGNAL: [SIGNAL, "drive", "main", ENTRY],
    "task_a": ["task_a", SIGNAL, "drive", "main", ENTRY],
    "task_b": ["task_b", SIGNAL, "drive", "main", ENTRY],  # in task_a's place after the switch
}


@pytest.mark.parametrize("mode", MODES)
def test_stepi_through_resume_switch_and_suspend(require_tool, tmp_path, mode):
    stepper = tmp_path / "stepper.py"
    stepper.write_text(textwrap.dedent(STEPPER))
    steps_path = tmp_path / "steps.jsonl"
    output = run_gdb(require_tool, "stepping.wat", mode,
                     [f"source {stepper}", "break drive", "run",
                      f"python step_through({str(steps_path)!r}, 'main', 2000)"])
    assert steps_path.is_file(), output
    steps = [json.loads(line) for line in steps_path.read_text().splitlines()]
    assert steps and steps[-1]["function"] == "main", output  # drive returned

    for k, step in enumerate(steps):
        context = f"step {k} at 0x{step['pc']:x} in {step['function']}:\n{step['bt']}"
        assert not any(failure in step["bt"] for failure in UNWIND_FAILURES), context
        names = [SIGNAL if name == START_STUB else name for name in step["chain"]]
        chain = frames_down_to_entry(names, context)
        helpers = list(itertools.takewhile(lambda name: name in HELPER_STUBS, chain))
        rest = chain[len(helpers):]
        assert len(helpers) <= 1 and rest == STEPPING_CHAINS.get(rest[0]), context
        assert step["function"] in STEPPING_CHAINS or step["function"] in HELPER_STUBS + (START_STUB,), context

    # The whole sequence was stepped: the resume into task_a through its start stub, the
    # switch to task_b through the handler search and task_b's start stub, and task_b's
    # suspension back to drive.
    functions = [step["function"] for step in steps]
    wasm_order = [name for name, _ in itertools.groupby(f for f in functions if f in STEPPING_CHAINS)]
    assert wasm_order == ["drive", "task_a", "task_b", "drive", "main"], wasm_order
    assert START_STUB in functions and "stackstitch_handler_search" in functions
    if mode == "libcall":
        assert "stackstitch_libcall_switch" in functions
    counts = {name: functions.count(name) for name in dict.fromkeys(functions)}
    print(f"{mode}: {len(steps)} instructions stepped: {counts}")


@pytest.mark.parametrize("mode", MODES)
def test_evaluator_agrees_with_gdb_at_every_call_site(require_tool, tmp_path, mode):
    """Stops at every call site of nested.wat's functions (entry, each call, each return
    address) and at every instruction of the start stub (and of the libcall switch routine):
    at each, our walk from frame 0 gives gdb's pc, rsp and rbp for every frame, through
    both start stub frames down to the host caller of the entry stub."""
    collector = tmp_path / "collector.py"
    collector.write_text(textwrap.dedent(COLLECTOR) + textwrap.dedent(CALL_SITE_COLLECTOR))
    functions = ["leaf", "inner", "f2", "f1", "outer"]  # `main` would name Python's too
    every_instruction = [START_STUB, "stackstitch_libcall_switch"]
    output = run_gdb(require_tool, "nested.wat", mode,
                     [f"source {collector}", f"break {ENTRY}", "run", "delete",
                      f"python break_at_call_sites({functions!r}, {every_instruction!r})",
                      f"python collect_at_every_stop({str(tmp_path)!r}, 1000)"])
    stops_path = tmp_path / "stops.jsonl"
    assert stops_path.is_file(), output
    tables = UnwindTable()
    for path in sorted(tmp_path.glob("object-*.o")):
        section = ELFFile(io.BytesIO(path.read_bytes())).get_section_by_name(".eh_frame")
        tables.add(read_eh_frame(section.data()))

    stops = [json.loads(line) for line in stops_path.read_text().splitlines()]
    seen = set()
    for stop in stops:
        frames = stop["frames"]
        names = [f["name"] for f in frames]
        memory = [(start, bytes.fromhex(data)) for start, data in stop["memory"]]
        walked = list(tables.walk(dict(frames[0]["regs"]), _read_memory(memory)))
        assert ENTRY in names and len(walked) == names.index(ENTRY) + 2, names  # + its host caller
        for ours, theirs in zip(walked, frames):
            for register in ("rip", "rsp", "rbp"):
                assert ours[register] == theirs["regs"][register], (theirs["level"], register, names)
        seen.add(names[0])
    expected = set(functions) | {START_STUB} | ({"stackstitch_libcall_switch"} if mode == "libcall" else set())
    assert seen == expected, seen
    print(f"{mode}: {len(stops)} stops compared")
