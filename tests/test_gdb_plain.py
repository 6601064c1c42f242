"""Real gdb (no plugin, driven through MI) on a Python process running the engine with the
GDB JIT interface: breakpoints by Wasm function name, backtraces through Wasm frames and
the entry stub into the host, lines of the WAT text, and our CFI evaluator agreeing with
gdb's unwinder."""

from __future__ import annotations

import io
import json
import re
import sys
import textwrap
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from gdbmi import GdbSession
from stackstitch.unwind.evaluate import UnwindTable, read_eh_frame

# main -> a -> b -> leaf, with names in the name section.
NESTED_CALLS_WAT = """
(module
  (func $leaf (param i32) (result i32) local.get 0 i32.const 1 i32.add)
  (func $b (param i32) (result i32) local.get 0 call $leaf i32.const 2 i32.mul)
  (func $a (param i32) (result i32) local.get 0 i32.const 3 i32.add call $b)
  (func $main (export "main") (result i32) i32.const 5 call $a))
"""

# Runs in the debuggee: registers the stubs and the module, saves the JIT objects for the
# test to read, then calls main.
ENGINE_SCRIPT = """
import sys
from stackstitch.engine.frontend.loader import load_module
from stackstitch.engine.runtime.store import Store
from stackstitch.unwind.gdbjit import GdbJitRegistrar

module_path, out_dir = sys.argv[1], sys.argv[2]
registrar = GdbJitRegistrar(lambda module: module_path)
store = Store()
store.add_code_observer(registrar)
module = load_module(module_path)
instance = store.instantiate(module, {})
for k, registration in enumerate(registrar.registrations):
    with open(f"{out_dir}/object-{k}.o", "wb") as f:
        f.write(registration.image.raw)
print("result", instance.invoke("main", []))
"""

# Runs in gdb's own Python: at each stop, gdb's view of every frame's registers, plus the
# stack memory around them, appended as one JSON line.
COLLECTOR = """
import json
import gdb

REGISTERS = ("rip", "rsp", "rbp", "rbx", "r12", "r13", "r14", "r15")
# Frame 0 only (callers' are not saved): inside a stack switch, the unwind rule may start
# from one of these, and memory around it.
SCRATCH = ("rax", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11")

def collect(path, depth=8, below=256, above=512):
    frames, memory = [], []
    frame, level = gdb.newest_frame(), 0
    while frame is not None and level < depth:
        names = REGISTERS + (SCRATCH if level == 0 else ())
        regs = {r: int(frame.read_register(r)) & (2**64 - 1) for r in names}
        frames.append({"level": level, "name": frame.name(), "regs": regs})
        for base in set(regs.values()) if level == 0 else {regs["rsp"], regs["rbp"]}:
            memory += readable_pieces(base - below, below + above)
        frame, level = frame.older(), level + 1
    with open(path, "a") as f:
        f.write(json.dumps({"frames": frames, "memory": memory}) + "\\n")

# [address, hex] for the readable parts of [start, start + size): a window can run off the
# end of a stack's mapping, and a host frame's rbp need not be an address at all.
def readable_pieces(start, size, piece=256):
    pieces = []
    for address in range(start, start + size, piece):
        try:
            data = gdb.selected_inferior().read_memory(address, piece).tobytes()
        except (gdb.MemoryError, OverflowError):
            continue
        if pieces and pieces[-1][0] + len(pieces[-1][1]) // 2 == address:
            pieces[-1][1] += data.hex()
        else:
            pieces.append([address, data.hex()])
    return pieces
"""


def engine_session(gdb: str, tmp_path) -> GdbSession:
    """gdb (through MI) on a Python process that runs ENGINE_SCRIPT on NESTED_CALLS_WAT."""
    module = tmp_path / "calls.wat"
    module.write_text(NESTED_CALLS_WAT)
    script = tmp_path / "engine_script.py"
    script.write_text(ENGINE_SCRIPT)
    return GdbSession(gdb, [sys.executable, str(script), str(module), str(tmp_path)])


def backtrace_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.match(r"#\d+ ", line)]


def test_breakpoint_by_name_and_backtrace(require_tool, tmp_path):
    with engine_session(require_tool("gdb"), tmp_path) as gdb:
        gdb.cli("break leaf")
        stop = gdb.run()
        bt = gdb.cli("bt").console
        line = gdb.cli("info line *$pc").console
        frames = gdb.frames()
    assert stop.result["payload"]["frame"]["func"] == "leaf", gdb.output()
    assert stop.result["payload"]["frame"]["args"] == [{"name": "local0", "value": "8"}], stop.result
    lines = backtrace_lines(bt)
    names = [re.search(r"(?:in )?(\S+) \(", line).group(1) for line in lines]
    assert names[:5] == ["leaf", "b", "a", "main", "stackstitch_entry"], bt
    assert [f["func"] for f in frames[:5]] == names[:5]  # what IDEs get through MI
    assert len(lines) > 5  # the host frames: the interpreter below the entry stub
    assert not any("??" in line for line in lines[:5]), bt
    assert "corrupt stack" not in bt and "Backtrace stopped" not in bt, bt

    # Lines are those of the WAT text (the loader gives it DWARF): each function's own.
    wat_lines = {name: n for n, text in enumerate(NESTED_CALLS_WAT.splitlines(), 1)
                 for name in re.findall(r"\(func \$(\w+)", text)}
    match = re.search(r'Line (\d+) of "[^"]*calls\.wat"', line)
    assert match and int(match.group(1)) == wat_lines["leaf"], line
    for frame_line, name in zip(lines[1:4], ["b", "a", "main"]):
        assert f"calls.wat:{wat_lines[name]}" in frame_line, frame_line


def _read_memory(windows):
    def read(address: int, size: int) -> bytes:
        for start, data in windows:
            if start <= address and address + size <= start + len(data):
                return data[address - start:address - start + size]
        raise AssertionError(f"memory at 0x{address:x} was not captured")
    return read


@pytest.fixture
def gdb_stops(require_tool, tmp_path):
    """gdb's frames at the first instruction of leaf, after its push rbp, after its
    mov rbp, rsp, and at its body breakpoint, each with main -> a -> b above it."""
    collector = tmp_path / "collector.py"
    collector.write_text(textwrap.dedent(COLLECTOR))
    stops = tmp_path / "stops.jsonl"
    with engine_session(require_tool("gdb"), tmp_path) as gdb:
        for command in [f"source {collector}", "break b"]:
            gdb.cli(command)
        gdb.run()
        for command in ["delete", "break *leaf", "break *leaf+1", "break *leaf+4", "break leaf"]:
            gdb.cli(command)
        for _ in range(4):
            gdb.run("continue")
            gdb.python(f"collect({str(stops)!r})")
        output = gdb.output()
    assert stops.is_file(), output
    tables = UnwindTable()
    for path in sorted(tmp_path.glob("object-*.o")):
        section = ELFFile(io.BytesIO(path.read_bytes())).get_section_by_name(".eh_frame")
        tables.add(read_eh_frame(section.data()))
    return [json.loads(line) for line in stops.read_text().splitlines()], tables, output


def test_evaluator_agrees_with_gdb_at_every_frame(gdb_stops):
    stops, tables, output = gdb_stops
    assert len(stops) == 4, output
    pcs = set()
    for stop in stops:
        frames = stop["frames"]
        assert [f["name"] for f in frames[:5]] == ["leaf", "b", "a", "main", "stackstitch_entry"], frames
        pcs.add(frames[0]["regs"]["rip"])
        memory = [(start, bytes.fromhex(data)) for start, data in stop["memory"]]
        walked = list(tables.walk(dict(frames[0]["regs"]), _read_memory(memory)))
        assert len(walked) == 6  # the Wasm frames, the entry stub, and its host caller
        for ours, theirs in zip(walked, frames):
            for register in ("rip", "rsp", "rbp"):
                assert ours[register] == theirs["regs"][register], (theirs["level"], register, stop)
    assert len(pcs) == 4  # four different places in leaf's prologue and body


def test_evaluator_imports_in_gdbs_own_python(require_tool, tmp_path):
    """gdb runs its own Python without pyelftools: the evaluator core must not need it."""
    gdb = require_tool("gdb")
    package = tmp_path / "stackstitch"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "unwind").symlink_to(Path(__file__).resolve().parent.parent / "unwind")
    code = (f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
            "from stackstitch.unwind.evaluate import Row, UnwindTable, FrameTable; "
            "t = UnwindTable([FrameTable(16, 32, [Row(16, ('rbp', 16), {'rip': -8, 'rbp': -16})])]); "
            "m = {0x100: (0x200).to_bytes(8, 'little'), 0x108: (0x42).to_bytes(8, 'little')}; "
            "print('caller', t.caller_registers({'rip': 20, 'rsp': 0xf0, 'rbp': 0x100}, lambda a, n: m[a]))")
    with GdbSession(gdb) as session:
        reply = session.python(code)
    assert "caller {'rbp': 512, 'rip': 66, 'rsp': 272}" in reply.console, session.output()
