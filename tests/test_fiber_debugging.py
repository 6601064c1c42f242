"""Source-level debugging across continuations: tests/data/debug/fibers.c, whose fibers
switch through the stack-switching primitives of fiber.wat (preloaded as `env`), stopped
three continuations deep, in gdb (with the plugin, and plain) and lldb, at -O0 and -O2;
and tests/data/debug/fibers.zig, the same primitives under a Zig program, in gdb.

Every frame must show its function, file:line and arguments, in resume-chain order; every
value shown must be the one the program printed (at -O2: or optimized out).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DEBUG_DATA, FIBER_C_SOURCE as C_SOURCE, FIBER_PRIMITIVES, unavailable
from sourcedebug import (check_frames, elements, gdb_session, lldb_section, lldb_variables, printed_values,
                         run_lldb, source_line)
from stackstitch.lldb_plugin.launcher import plugin_loader

PRELOAD = ("--preload", f"env={FIBER_PRIMITIVES}")
ZIG_SOURCE = DEBUG_DATA / "fibers.zig"
DEPTH = 16  # checkpoint, walk ... main, __main_void, _start: what the tests read of a backtrace


def resume_line(function: str) -> int:
    return source_line(C_SOURCE, f"{function} resumes")


def wat_line(marker: str) -> int:
    return source_line(FIBER_PRIMITIVES, marker)


# Innermost first, as `bt` lists them stopped in checkpoint() during walk's first value:
# (function, file, line, arguments), None for the boundary pseudo-frame at each switch.
def expected_chain(arguments: dict[str, str]) -> list:
    start, resume = wat_line("(call_indirect $functions"), wat_line("(resume $fiber")
    chain = [("checkpoint", C_SOURCE.name, source_line(C_SOURCE, "checkpoints += 1"), ""),
             ("walk", C_SOURCE.name, source_line(C_SOURCE, "three fibers deep"), arguments["walk"])]
    for fiber, (resumer, line) in enumerate((("scale", resume_line("scale")), ("total", resume_line("total")),
                                             ("__main_argc_argv", resume_line("main")))):
        chain += [("fiber_start", FIBER_PRIMITIVES.name, start, f"body={arguments['body'][fiber]}, arg="),
                  None,
                  ("fiber_resume", FIBER_PRIMITIVES.name, resume, f"fiber={fiber}"),
                  (resumer, C_SOURCE.name, line, arguments[resumer])]
    return chain


def mi_chain(session) -> list:
    """The innermost frames as (function, file name, line, arguments), None for a signal or
    boundary frame."""
    frames = session.frames(DEPTH)
    arguments = session.payload(f"-stack-list-arguments 1 0 {DEPTH - 1}")["stack-args"]
    chain = []
    for frame, args in zip(frames, arguments, strict=True):
        if "file" not in frame:
            chain.append(None if frame.get("func") in ("<signal handler called>", None) or "──" in frame.get(
                "func", "") else (frame.get("func"), None, None, None))
            continue
        shown = ", ".join(f"{a['name']}={a['value']}" for a in args["args"])
        chain.append((frame["func"], frame["file"].rsplit("/", 1)[-1], int(frame["line"]), shown))
    return chain


def matches(chain: list, expected: list) -> bool:
    """`chain` starts with `expected`; an expected argument string ending in `=` only
    checks the names up to there (WAT's i32 `arg` shows a pointer as a number)."""
    for shown, wanted in zip(chain, expected):
        if wanted is None or shown is None:
            if shown != wanted:
                return False
        elif shown[:3] != wanted[:3] or not (shown[3] == wanted[3] or wanted[3].endswith("=")
                                             and shown[3].startswith(wanted[3])):
            return False
    return len(chain) >= len(expected)


@pytest.mark.parametrize("plugin", [True, False], ids=["stackstitch-gdb", "plain-gdb"])
def test_gdb_three_fibers_deep_at_O0(require_tool, fiber_programs, plugin):
    session = gdb_session(require_tool, fiber_programs["O0"], options=PRELOAD, plugin=plugin)
    try:
        session.payload("-break-insert -f checkpoint")
        stop = session.run().result["payload"]
        assert stop["frame"]["func"] == "checkpoint", stop
        printed = printed_values(session.program_output)
        chain = mi_chain(session)
        expected = expected_chain({
            "walk": f"arg={printed['walk', 'arg']}", "scale": f"arg={printed['scale', 'arg']}",
            "total": f"arg={printed['total', 'arg']}",
            "__main_argc_argv": f"argc={printed['main', 'argc']}, argv={printed['main', 'argv']}",
            "body": ["5", "6", "7"]})
        assert matches(chain, expected), "\n".join(map(str, chain))
        assert all(frame is None or frame[1] is not None for frame in chain[:len(expected)]), chain

        # Every local of every C frame, as printed (main prints under its own name). Plain gdb
        # prints a `char *` in linear memory as an address only, the plugin with the string.
        printed.update({("__main_argc_argv", name): value for (function, name), value in list(printed.items())
                        if function == "main"})
        if not plugin:
            printed = {key: re.sub(r' "[^"]*"', "", value) for key, value in printed.items()}
        assert check_frames(session, printed, C_SOURCE, require_all=True, depth=DEPTH) >= 20
        assert session.evaluate("*n", frame=1) == printed["walk", "*n"]
        assert session.evaluate("n->next->v", frame=1) == "22"
        assert session.evaluate("list->next->next->v", frame=1) == "33"
        assert session.evaluate("st->factor", frame=5) == "10"  # scale's stage: walk's
        assert session.evaluate("*st", frame=9) == printed["main", "scaler"]
        if plugin:  # a bit-field of type `const char *` prints as the string through the plugin
            assert session.evaluate("walker.name", frame=13) == printed["main", "walker"].split(", ")[0][8:]
    finally:
        session.close()


def test_gdb_never_shows_a_wrong_value_at_O2(require_tool, fiber_programs):
    """At every stop in checkpoint() (walk three fibers deep) and on every resume line,
    each value of every C frame is the printed one or optimized out."""
    session = gdb_session(require_tool, fiber_programs["O2"], options=PRELOAD)
    try:
        session.payload("-break-insert -f checkpoint")
        for function in ("scale", "total", "main"):
            session.payload(f"-break-insert -f {C_SOURCE.name}:{resume_line(function)}")
        checked, hits = 0, set()
        stop = session.run().result["payload"]
        while stop.get("reason") == "breakpoint-hit":
            hits.add(stop["bkptno"])
            printed = printed_values(session.program_output)
            printed.update({("__main_argc_argv", name): value for (function, name), value in list(printed.items())
                            if function == "main"})
            checked += check_frames(session, printed, C_SOURCE, require_all=False, depth=DEPTH)
            stop = session.run("continue").result["payload"]
        assert stop.get("reason") == "exited-normally", stop
        assert hits == {"1", "2", "3", "4"}, hits  # the optimizer may leave a line fewer times
        assert checked >= 60, checked  # most values are there: the check cannot pass vacuously
    finally:
        session.close()


def test_lldb_three_fibers_deep(require_tool, fiber_programs):
    output = run_lldb(require_tool, fiber_programs["O0"],
                      ["breakpoint set --name checkpoint", "run", f"bt {DEPTH}", "frame select 1", "frame variable",
                       "frame select 5", "frame variable", "frame select 13", "frame variable", "process kill"],
                      options=PRELOAD)
    printed = printed_values(output)
    backtrace = lldb_section(output, f"bt {DEPTH}")
    frames = re.findall(r"frame #\d+: 0x[0-9a-f]+ JIT\(0x[0-9a-f]+\)`(\w+)(?:\((.*?)\))?(?: at (\S+?):(\d+)| \+ \d+)",
                        backtrace)
    names = [name for name, *_ in frames]
    start = ["fiber_start", "stackstitch_continuation_start", "fiber_resume"]
    assert names[:14] == ["checkpoint", "walk", *start, "scale", *start, "total", *start, "__main_argc_argv"], output
    for name, arguments, file, line in frames[:14]:
        if name != "stackstitch_continuation_start":
            assert file in (C_SOURCE.name, FIBER_PRIMITIVES.name) and int(line) > 0, (name, output)
            assert arguments or name == "checkpoint", (name, output)
    assert frames[1][1:] == (f"arg=0x{int(printed['walk', 'arg'], 16):016x}", C_SOURCE.name,
                             str(source_line(C_SOURCE, "three fibers deep"))), frames[1]
    assert frames[5][3] == str(resume_line("scale")) and frames[13][3] == str(resume_line("main")), frames
    hex16 = {name: f"0x{int(printed['walk', name], 16):016x}" for name in ("arg", "list", "n")}
    assert lldb_variables(output, "frame variable", 0) == {**hex16, "count": printed["walk", "count"],
                                                           "v": printed["walk", "v"]}, output
    assert lldb_variables(output, "frame variable", 1) == {
        "arg": f"0x{int(printed['scale', 'arg'], 16):016x}", "st": f"0x{int(printed['scale', 'st'], 16):016x}",
        "value": printed["scale", "value"]}, output
    main = lldb_variables(output, "frame variable", 2)
    assert main["summer"] == printed["main", "summer"] and main["sum"] == printed["main", "sum"], output


def lldb_fields(output: str, command: str) -> dict[str, int]:
    """The `name = value` lines lldb printed for `command`, values as integers."""
    lines = re.findall(r"^\s*(\w+) = (\S+)$", lldb_section(output, command), re.M)
    return {name: int(value, 0) for name, value in lines}


def test_lldb_prints_through_wasm_pointers(require_tool, fiber_programs):
    """With the plugin, lldb's `p` follows C pointers into linear memory, as gdb does
    through DW_AT_data_location (which lldb 14 ignores)."""
    output = run_lldb(require_tool, fiber_programs["O0"],
                      [f"command script import {plugin_loader()}", "breakpoint set --name checkpoint", "run",
                       "frame select 1", "p *n", "p n->next->v", "p list->next->next->v", "p (*n).next",
                       "p count + 1", "frame select 5", "p st->factor", "frame select 9", "p *st",
                       "frame select 1", "p n[100000000]"],
                      options=PRELOAD)
    printed = printed_values(output)
    walk_n = dict(zip(("v", "next"), (int(part, 0) for part in elements(printed["walk", "*n"]))))
    assert lldb_fields(output, "p *n") == walk_n, output
    assert "(int) n->next->v = 22" in lldb_section(output, "p n->next->v"), output
    assert "(int) list->next->next->v = 33" in lldb_section(output, "p list->next->next->v"), output
    assert int(lldb_section(output, "p (*n).next").split(" = ")[1], 0) == walk_n["next"], output
    assert f"(int) $0 = {int(printed['walk', 'count']) + 1}" in lldb_section(output, "p count + 1"), output
    assert "(int) st->factor = 10" in lldb_section(output, "p st->factor"), output
    scaler = dict(zip(("name", "source", "factor"), (int(part.split()[0], 0)
                                                      for part in elements(printed["main", "scaler"]))))
    assert dict(re.findall(r"(\w+) = (\w+)", lldb_section(output, "p *st"))) == {
        name: f"0x{value:016x}" if name == "name" else str(value) for name, value in scaler.items()}, output
    assert re.search(r"error: n\[100000000\]: Wasm address 0x[0-9a-f]+ is outside linear memory",
                     lldb_section(output, "p n[100000000]")), output


@pytest.fixture(scope="module")
def zig_fibers(tmp_path_factory) -> Path:
    """tests/data/debug/fibers.zig, built by the ziglang wheel's own Zig compiler."""
    if importlib.util.find_spec("ziglang") is None:
        unavailable("the ziglang wheel is not installed")
    out = tmp_path_factory.mktemp("zig")
    module = out / "fibers.wasm"
    build = subprocess.run([sys.executable, "-m", "ziglang", "build-exe", str(ZIG_SOURCE), "-target", "wasm32-wasi",
                            "-O", "Debug", "--import-table", f"-femit-bin={module}"],
                           cwd=out, capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    return module


def test_gdb_debugs_a_zig_fiber_program(require_tool, zig_fibers):
    """A Zig program at source level: its frames across the continuation boundary, its
    variables as it printed them, pointers followed, and `next` over its suspend."""
    yield_line = source_line(ZIG_SOURCE, "// walk yields")
    session = gdb_session(require_tool, zig_fibers, options=PRELOAD)
    try:
        session.payload(f"-break-insert -f {ZIG_SOURCE.name}:{yield_line}")
        stop = session.run().result["payload"]
        assert stop["frame"]["func"] == "fibers.walk", stop
        expected = [("fibers.walk", ZIG_SOURCE.name, yield_line, "arg="),
                    ("fiber_start", FIBER_PRIMITIVES.name, wat_line("(call_indirect $functions"), "body="), None,
                    ("fiber_resume", FIBER_PRIMITIVES.name, wat_line("(resume $fiber"), "fiber=0"),
                    ("fibers.main", ZIG_SOURCE.name, source_line(ZIG_SOURCE, "// main resumes walk"), "")]
        chain = mi_chain(session)
        assert matches(chain, expected), "\n".join(map(str, chain))
        printed = printed_values(session.program_output)
        assert session.evaluate("count") == printed["walk", "count"] == "1"
        assert session.evaluate("node->v") == printed["walk", "v"] == "11"
        assert session.evaluate("list->next->next->v") == "33"
        assert re.fullmatch(r"\{v = 11, next = 0x[0-9a-f]+\}", session.evaluate("*node"))

        # next over the suspend: main goes on, prints, resumes walk, which stops on its loop
        stop = session.run("next").result["payload"]
        assert (stop["frame"]["func"], int(stop["frame"]["line"])) == (
            "fibers.walk", source_line(ZIG_SOURCE, "while (n) |node|")), stop
        assert printed_values(session.program_output)["main", "sum"] == "11"
    finally:
        session.close()
