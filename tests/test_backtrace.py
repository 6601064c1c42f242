"""Stitched trap reports (`stackstitch.backtrace`): frames across continuations compared
with the Wasmtime 49 CLI, the text and JSON reports, every kind of fatal end, suspended
continuations, and walks over corrupt frame chains.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stackstitch.backtrace import (EXHAUSTION, HOST_ERROR, UNCAUGHT_EXCEPTION, capture,
                                   UNHANDLED_SUSPENSION, Backtrace, Walker, print_text,
                                   render_json, render_text)
from stackstitch.backtrace.report import collapse
from stackstitch.engine.frontend.loader import load_bytes, load_module
from stackstitch.engine.runtime.store import Store, Trap, WasmException
from stackstitch.engine.frontend.types import FuncType

TRAPS = Path(__file__).resolve().parent / "data" / "traps"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(params=["native", "libcall"])
def store(request):
    return Store(switching=request.param, trap_observers=[capture])


def fail_in(store, path_or_text, export="main", args=(), imports=None) -> Backtrace:
    """Run `export` and return the backtrace of the trap it must end in."""
    module = (load_module(path_or_text) if isinstance(path_or_text, Path)
              else load_bytes(path_or_text.encode(), "test.wat"))
    instance = store.instantiate(module, imports or {})
    with pytest.raises((Trap, WasmException)) as caught:
        instance.invoke(export, list(args))
    return caught.value.backtrace


# ---- the same frames as Wasmtime ----------------------------------------------------------

WASMTIME_FRAME = re.compile(r"^\s*\d+:\s+(?:0x([0-9a-f]+) - )?\S*!(\S+)\s*$")


def wasmtime_frames(wasmtime: str, path: Path) -> list[tuple[str, int | None]]:
    """(function name, offset) per frame of the backtrace Wasmtime prints for `main`
    (offset None where it prints none)."""
    proc = subprocess.run(
        [wasmtime, "run", "-W", "stack-switching=y,function-references=y,exceptions=y",
         "-D", "max-backtrace=1000000", "--invoke", "main", str(path)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "RUST_BACKTRACE": "0"})
    assert proc.returncode != 0, proc.stdout
    frames = []
    for line in proc.stderr.splitlines():
        match = WASMTIME_FRAME.match(line)
        if match:
            frames.append((match.group(2), int(match.group(1), 16) if match.group(1) else None))
    assert frames, proc.stderr
    return frames


PROGRAMS = ["div_by_zero", "oob_load", "unreachable", "unhandled_tag", "one_shot", "exhaustion"]


@pytest.mark.parametrize("program", PROGRAMS)
def test_frames_match_wasmtime(program, store, require_tool):
    """Frame for frame, (func_name, wasm_offset) equal Wasmtime's, with one documented
    difference: stack exhaustion. Wasmtime checks the stack limit before the function's
    first instruction and prints no offset for that frame (we name the function's first
    instruction), and the recursion depth differs with the stack sizes and frame layouts
    of the two engines; the recursion frames and the frames below them must still agree."""
    wasmtime = require_tool("wasmtime")
    expected = wasmtime_frames(wasmtime, TRAPS / f"{program}.wat")
    actual = [(f.func_name, f.wasm_offset) for f in fail_in(store, TRAPS / f"{program}.wat").frames]
    if program != "exhaustion":
        assert actual == expected
        return
    assert expected[0] == ("recurse", None) and actual[0][0] == "recurse"
    assert actual[-2:] == expected[-2:] == [("body", 0x40), ("main", 0x4a)]
    assert set(actual[1:-2]) == set(expected[1:-2]) == {("recurse", 0x36)}
    assert len(actual) > 1000


# ---- reports ------------------------------------------------------------------------------

def test_stacks_of_two_continuations(store):
    trace = fail_in(store, TRAPS / "div_by_zero.wat")
    assert [f.stack_id for f in trace.frames] == [2, 2, 1, 0]
    document = json.loads(render_json(trace))
    assert document["trap"] == "integer divide by zero"
    assert set(document["frames"][0]) == {"func_index", "func_name", "wasm_offset", "pc", "stack_id", "file",
                                          "line", "column", "inlined"}
    # WAT read from a file gets DWARF for its lines: frames have positions in it
    assert [(f["file"], f["line"], f["inlined"]) for f in document["frames"]] == [
        (str(TRAPS / "div_by_zero.wat"), line, False) for line in (6, 8, 10, 12)]
    assert [{k: s[k] for k in ("id", "kind", "func_name", "resumed_at")} for s in document["stacks"]] == [
        {"id": 2, "kind": "continuation", "func_name": "inner",
         "resumed_at": {"func_name": "outer", "wasm_offset": 0x47}},
        {"id": 1, "kind": "continuation", "func_name": "outer",
         "resumed_at": {"func_name": "main", "wasm_offset": 0x51}},
        {"id": 0, "kind": "main", "func_name": "main", "resumed_at": None},
    ]


def test_text_report_has_a_boundary_line_per_switch(store):
    text = render_text(fail_in(store, TRAPS / "div_by_zero.wat")).splitlines()
    assert text[0] == "wasm backtrace, innermost frame first:"
    assert [line.split()[1] for line in text if line.lstrip().startswith("#")] == \
        ["leaf", "inner", "outer", "main"]
    assert text[1].endswith(f"(function 0)  at {TRAPS / 'div_by_zero.wat'}:6:6"), text[1]
    boundaries = [line for line in text if line.startswith("──")]
    assert boundaries == [
        "── continuation 2, created from inner, resumed at outer @ 0x47; handlers: none",
        "── continuation 1, created from outer, resumed at main @ 0x51; handlers: none",
        "── main stack, entered from the host at main",
    ]
    assert text.index(boundaries[0]) == 3 and text.index(boundaries[1]) == 5
    assert text[-1] == "trap: integer divide by zero"


def test_deep_recursion_collapses_to_a_few_lines():
    recursion = """(module
      (func $down (param i32)
        (if (local.get 0)
          (then (call $down (i32.sub (local.get 0) (i32.const 1))))
          (else unreachable)))
      (func (export "main") (call $down (i32.const 100000))))"""
    trace = fail_in(Store(stack_size=64 << 20, trap_observers=[capture]), recursion)
    assert len(trace.frames) == 100_002 and trace.note is None
    text = render_text(trace).splitlines()
    assert len(text) <= 7, text
    assert any("repeated 99,999 more times" in line for line in text)


def test_mutual_recursion_collapses_as_a_block():
    keys = ["leaf"] + ["even", "odd"] * 50 + ["main"]
    assert collapse(keys) == [(0, 1, 1), (1, 2, 50), (101, 1, 1)]
    assert collapse(["a", "a"]) == [(0, 1, 1), (1, 1, 1)]  # too short to be worth a line


def test_colors_only_when_asked():
    trace = fail_in(Store(trap_observers=[capture]), TRAPS / "div_by_zero.wat")
    plain, styled = io.StringIO(), io.StringIO()
    print_text(trace, plain)  # not a terminal: plain
    print_text(trace, styled, color=True)
    assert "\x1b[" not in plain.getvalue() and "\x1b[" in styled.getvalue()
    assert re.sub(r"\x1b\[[0-9;]*m", "", styled.getvalue()) == plain.getvalue()


# ---- other fatal ends ---------------------------------------------------------------------

def test_unhandled_suspension_names_its_tag(store):
    trace = fail_in(store, TRAPS / "unhandled_tag.wat")
    assert (trace.kind, trace.message, trace.tag) == (UNHANDLED_SUSPENSION, "unhandled tag", "other")
    assert trace.stacks[0].handlers == ["yield"]  # installed by outer's resume, not matching
    assert render_text(trace).splitlines()[-1] == "unhandled suspension: unhandled tag: other"


def test_uncaught_exception_names_its_tag(store):
    trace = fail_in(store, """(module
      (type $ft (func)) (type $ct (cont $ft))
      (tag $boom (export "boom") (param i32))
      (func $thrower (throw $boom (i32.const 7)))
      (func $body (call $thrower))
      (func (export "main") (resume $ct (cont.new $ct (ref.func $body))))
      (elem declare func $body))""")
    assert trace.kind == UNCAUGHT_EXCEPTION and trace.tag == "boom"
    assert [f.func_name for f in trace.frames] == ["thrower", "body", "main"]  # its export name
    assert [s.kind for s in trace.stacks] == ["continuation", "main"]


def test_host_function_error_shows_the_wasm_callers(store):
    def fail(x):
        raise ValueError(f"bad value {x}")

    imports = {("env", "fail"): store.host_function(FuncType(("i32",), ()), fail, "fail")}
    trace = fail_in(store, """(module
      (type $ft (func)) (type $ct (cont $ft))
      (import "env" "fail" (func $fail (param i32)))
      (func $body (call $fail (i32.const 3)))
      (func $main (export "main") (resume $ct (cont.new $ct (ref.func $body))))
      (elem declare func $body))""", imports=imports)
    assert trace.kind == HOST_ERROR and "bad value 3" in trace.message
    assert [(f.func_name, f.stack_id) for f in trace.frames] == [("body", 1), ("main", 0)]


def test_exhaustion_inside_a_continuation(store):
    trace = fail_in(store, TRAPS / "exhaustion.wat")
    assert trace.kind == EXHAUSTION and trace.note is None
    assert [s.kind for s in trace.stacks] == ["continuation", "main"]
    assert render_text(trace).splitlines()[-1] == "stack exhaustion: call stack exhausted"


# ---- suspended continuations --------------------------------------------------------------

SUSPENDED = """(module
  (type $ft (func)) (type $ct (cont $ft))
  (tag $yield)
  (func $wait (suspend $yield))
  (func $inner (call $wait))
  (func $outer (call $helper))
  (func $helper (resume $ct (cont.new $ct (ref.func $inner))))
  (func (export "main") (result (ref null $ct))
    (block $h (result (ref $ct))
      (resume $ct (on $yield $h) (cont.new $ct (ref.func $outer)))
      (return (ref.null $ct))))
  (func (export "fresh") (result (ref null $ct)) (cont.new $ct (ref.func $outer)))
  (elem declare func $inner $outer))"""


def test_walk_of_a_suspended_continuation(store):
    """The suspended segment holds two stacks: inner (where it suspended) and outer, which
    resumed inner. The walk stops at outer's own first frame."""
    instance = store.instantiate(load_bytes(SUSPENDED.encode(), "suspended.wat"), {})
    [cont] = instance.invoke("main", [])
    trace = Walker(store).suspended(cont)
    assert trace.note is None
    assert [f.func_name for f in trace.frames] == ["wait", "inner", "helper", "outer"]
    assert [(s.func_name, s.resumed_at.func_name if s.resumed_at else None) for s in trace.stacks] == \
        [("inner", "helper"), ("outer", None)]
    assert "not followed further" in render_text(trace).splitlines()[-1]
    [fresh] = instance.invoke("fresh", [])
    assert Walker(store).suspended(fresh).note == "the continuation has not started yet"
    assert "not a continuation" in Walker(store).suspended(0x1000).note


# ---- corrupt chains -----------------------------------------------------------------------

def test_corrupt_chains_end_with_a_note():
    """Frames written by hand into the (idle) main stack: every bad link stops the walk
    with a note, and the frames before it are kept."""
    store = Store()
    instance = store.instantiate(load_bytes(b'(module (func (export "f") nop))', "f.wat"), {})
    pc = instance.exports["f"].record[0] + 4  # inside f: a return address into Wasm code
    top = store.stack_lo + store.stack_size - 4096
    words = (ctypes.c_uint64 * 64).from_address(top)

    def walk(*links):
        for k, (caller_fp, caller_pc) in enumerate(links):
            words[8 * k], words[8 * k + 1] = caller_fp, caller_pc
        return Walker(store).walk(pc, top)

    down = walk((top - 64, pc))
    assert len(down.frames) == 1 and "does not go up" in down.note
    assert "does not go up" in walk((top, pc)).note  # a frame that is its own caller
    assert "outside its stack" in walk((top + 64, pc), ((1 << 47) - 4096, pc)).note
    assert "not in Wasm code" in walk((top + 64, 0x1234)).note
    assert "no known stack" in Walker(store).walk(pc, 0x1000).note
    assert len(walk((top + 64, pc), (top + 128, store.stubs.entry_return_address)).frames) == 2
    assert "base frame" in walk((top + 64, store.stubs.start_return_address)).note


# ---- the command line ---------------------------------------------------------------------

def stackstitch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stackstitch.engine.cli", *args],
                          capture_output=True, text=True, timeout=120, cwd=REPO)


def test_cli_reports(tmp_path):
    path = str(TRAPS / "div_by_zero.wat")
    text = stackstitch("run", path, "--invoke", "main", "--no-color")
    assert text.returncode == 134 and "\x1b[" not in text.stderr and "Traceback" not in text.stderr
    assert text.stderr.splitlines()[-1] == "trap: integer divide by zero"
    report = stackstitch("run", path, "--invoke", "main", "--trap-format=json")
    assert report.returncode == 134
    document = json.loads(report.stderr)
    assert document["trap"] == "integer divide by zero"
    assert isinstance(document["frames"], list) and isinstance(document["stacks"], list)


# ---- source positions, as Wasmtime gives them ----------------------------------------------

WASMTIME_SYMBOL = re.compile(r"^\s*(?:\d+:\s+0x[0-9a-f]+ )?- (?:\S*!)?(\S+)\s*$")
WASMTIME_POSITION = re.compile(r"^\s+at (\S+):(\d+):(\d+)\s*$")


def wasmtime_positions(stderr: str) -> list[tuple[str, tuple | None]]:
    """(function name, (file, line, column) or None) per function of Wasmtime's backtrace
    with WASMTIME_BACKTRACE_DETAILS=1, inlined ones expanded, innermost first."""
    symbols = []
    for line in stderr.splitlines():
        if (match := WASMTIME_SYMBOL.match(line)) is not None:
            symbols.append((match[1], None))
        elif (match := WASMTIME_POSITION.match(line)) is not None and symbols:
            symbols[-1] = (symbols[-1][0], (match[1], int(match[2]), int(match[3])))
    return symbols


@pytest.mark.parametrize("level", ["O0", "O2"])
def test_c_fiber_trap_positions_match_wasmtime(require_tool, fiber_programs, level):
    """The C fiber program traps in value_of three continuations deep (inlined into walk at
    -O2): every frame Wasmtime gives a position has ours (its preloaded WAT gets none there:
    Wasmtime makes no DWARF for WAT), inlined frames expanded the same way."""
    from conftest import FIBER_PRIMITIVES
    program = [str(fiber_programs[level]), "corrupt"]
    preload = ["--preload", f"env={FIBER_PRIMITIVES}"]
    wasmtime = subprocess.run(
        [require_tool("wasmtime"), "run", "-W", "stack-switching=y,function-references=y,exceptions=y",
         *preload, *program],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "RUST_BACKTRACE": "0", "WASMTIME_BACKTRACE_DETAILS": "1"})
    expected = wasmtime_positions(wasmtime.stderr)
    ours = stackstitch("run", "--trap-format=json", *preload, *program)
    assert ours.returncode == 134, ours.stderr
    frames = json.loads(ours.stderr.splitlines()[-1])["frames"]
    assert len(frames) == len(expected) == 13, (frames, wasmtime.stderr)
    for frame, (name, position) in zip(frames, expected):
        if position is not None:
            assert (frame["file"], frame["line"], frame["column"]) == position, (frame, name)
        elif frame["func_name"] in ("fiber_start", "fiber_resume"):
            assert frame["file"] == str(FIBER_PRIMITIVES), frame
    assert [f["func_name"] for f in frames if f["inlined"]] == (["value_of"] if level == "O2" else [])
    assert frames[0]["func_name"] == "value_of" and frames[0]["file"].endswith("fibers.c")
    text = stackstitch("run", "--no-color", *preload, *program).stderr
    inlined = re.search(r"value_of +@ 0x[0-9a-f]+  \(function \d+, inlined\)  at \S+/fibers\.c:\d+:\d+\n", text)
    assert (inlined is not None) == (level == "O2"), text


def test_no_dwarf_reader_for_modules_without_dwarf():
    """A trap in a module without DWARF is reported without loading the DWARF reader."""
    code = f"""if True:
        import sys
        from stackstitch.backtrace import capture
        from stackstitch.engine.frontend.loader import load_bytes
        from stackstitch.engine.runtime.store import Store, Trap
        store = Store(trap_observers=[capture])
        instance = store.instantiate(load_bytes(open({str(TRAPS / 'div_by_zero.wat')!r}, 'rb').read(), "t.wat"), {{}})
        try:
            instance.invoke("main", [])
        except Trap as trap:
            assert trap.backtrace.frames[0].file is None
        print(sorted(name for name in sys.modules if name.startswith("elftools")))"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


# ---- out-of-bounds accesses name their address, as Wasmtime does ---------------------------

FAULTS_WAT = """(module
  (memory $m 1) (memory $big 2)
  (func (export "load") (param i32) (result i32) local.get 0 i32.load offset=3)
  (func (export "store16") (param i32) local.get 0 i32.const 7 i32.store16 $big offset=0x100)
  (func (export "constant") (result i64) i32.const 0x1fffd i64.load)
  (func (export "byte") (param i32) (result i32) local.get 0 i32.load8_u))"""

FAULT = re.compile(r"memory fault at wasm address 0x[0-9a-f]+ in linear memory of size 0x[0-9a-f]+")


@pytest.mark.parametrize("export,args", [("load", [65534]), ("load", [2147483647]),
                                         ("store16", [0x1FFFF]), ("constant", []), ("byte", [65536])])
def test_out_of_bounds_fault_line_matches_wasmtime(require_tool, tmp_path, export, args):
    module = tmp_path / "faults.wat"
    module.write_text(FAULTS_WAT)
    wasmtime = subprocess.run(
        [require_tool("wasmtime"), "run", "-W", "multi-memory=y", "--invoke", export, str(module),
         *map(str, args)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "RUST_BACKTRACE": "0"})
    ours = subprocess.run([sys.executable, "-m", "stackstitch.engine.cli", "run", str(module),
                           "--invoke", export, *map(str, args), "--trap-format=json"],
                          capture_output=True, text=True, timeout=120)
    assert ours.returncode == 134, ours.stderr
    report = json.loads(ours.stderr)
    assert report["trap"] == "out of bounds memory access"
    assert FAULT.findall(wasmtime.stderr) == [report["detail"]], wasmtime.stderr
