"""Locals a loop keeps in registers, in real gdb and lldb. Inside such a loop a local the
loop writes lives only in its register (its frame slot is written back before calls and
when the loop is left), and the debug info must say so: stopped in the loop, a debugger
that read the slot would show the value of an earlier iteration.

tests/data/debug/hotloop.wat (Wasm-level variables) and tests/data/debug/hotloop.c (its
DWARF translated, zig cc -O2) are stopped in the loop after a few iterations and in the
function the loop calls; every value shown must be the one the program computes for that
iteration: what `fill N` returns, what the C program prints.

The bulk-memory stubs are called with the pins in place (they keep every pin register), so
a debugger stopped in one reads the caller's pinned locals from the registers the stub
left alone: tests/data/debug/bulkloop.wat pins six, three of them in r8-r10, which the
System V ABI lets a callee change and the stubs' CFI says they keep.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import DEBUG_DATA, build_c_programs, require_wasm_tools_for_module
from sourcedebug import gdb_session, lldb_section, lldb_variables, run_lldb, source_line

require_wasm_tools_for_module()

WAT_SOURCE = DEBUG_DATA / "hotloop.wat"
C_SOURCE = DEBUG_DATA / "hotloop.c"
ITERATIONS = 5  # the stops skip this many iterations first


@pytest.fixture(scope="module")
def hotloop_c(tmp_path_factory):
    return build_c_programs(tmp_path_factory.mktemp("hotloop"), C_SOURCE, levels=("O2",))["O2"]


def fill(iterations: int) -> tuple[int, int, float]:
    """What $fill's $i, $sum and $x hold after `iterations` iterations (its results)."""
    run = subprocess.run([sys.executable, "-m", "stackstitch.engine.cli", "run", str(WAT_SOURCE),
                          "--invoke", "fill", str(iterations)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    i, total, x = run.stdout.split()
    return int(i), int(total), float(x)


def iterations_printed(output: str) -> dict[int, dict[str, str]]:
    """k -> {h, w, next}, from hotloop.c's `loop: k=K h=H w=W next=P` lines."""
    return {int(m[1]): {"h": m[2], "w": m[3], "next": m[4]}
            for m in re.finditer(r"^loop: k=(\d+) h=(\d+) w=(\S+) next=(\S+)$", output, re.M)}


def test_gdb_reads_wat_locals_from_their_registers_in_the_loop(require_tool):
    session = gdb_session(require_tool, WAT_SOURCE, "--invoke", "fill", "20")
    try:
        line = source_line(WAT_SOURCE, "an iteration ends")
        session.payload(f"-break-insert -f -i {ITERATIONS} {WAT_SOURCE.name}:{line}")
        stop = session.run().result["payload"]
        assert (stop["frame"]["func"], int(stop["frame"]["line"])) == ("fill", line), stop
        i, total, x = fill(ITERATIONS + 1)
        assert session.evaluate("i") == str(i)
        assert session.evaluate("sum") == str(total)
        assert float(session.evaluate("x")) == x  # an f64 kept in an xmm register
        # The caller of a function the loop calls (at the start of the next iteration, so
        # with the same values): its slots were written back for the call.
        session.payload("-break-delete")
        session.payload("-break-insert -f square")
        stop = session.run("continue").result["payload"]
        assert stop["frame"]["func"] == "square", stop
        assert [session.evaluate(name, frame=1) for name in ("i", "sum")] == [str(i), str(total)]
        assert float(session.evaluate("x", frame=1)) == x
    finally:
        session.close()


def test_gdb_reads_c_variables_from_registers_in_the_loop(require_tool, hotloop_c):
    session = gdb_session(require_tool, hotloop_c)
    try:
        line = source_line(C_SOURCE, "an iteration ends")
        session.payload(f"-break-insert -f -i {ITERATIONS} {C_SOURCE.name}:{line}")
        stop = session.run().result["payload"]
        assert (stop["frame"]["func"], int(stop["frame"]["line"])) == ("main", line), stop
        shown = {name: session.evaluate(name) for name in ("h", "w", "next")}
        session.payload("-break-insert -f mix")
        stop = session.run("continue").result["payload"]  # mix, called in the next iteration
        assert stop["frame"]["func"] == "mix", stop
        in_caller = {name: session.evaluate(name, frame=1) for name in ("w", "next")}
        session.payload("-break-delete")
        session.run("continue")
        printed = iterations_printed(session.program_output)
        this, following = printed[ITERATIONS], printed[ITERATIONS + 1]
        assert shown["h"] == this["h"], (shown, this)  # written after the call: only in its register
        assert float(shown["w"]) == float(this["w"]), (shown, this)  # an f64 in an xmm register
        assert shown["next"].endswith(this["next"]), (shown, this)  # `(struct cell *) 0x...`
        assert float(in_caller["w"]) == float(following["w"]), (in_caller, following)
        assert in_caller["next"].endswith(following["next"]), (in_caller, following)
    finally:
        session.close()


def test_lldb_reads_c_variables_from_registers_in_the_loop(require_tool, hotloop_c):
    line = source_line(C_SOURCE, "an iteration ends")
    output = run_lldb(require_tool, hotloop_c,
                      [f"breakpoint set --file {C_SOURCE.name} --line {line} --ignore-count {ITERATIONS}",
                       "run", "frame variable h w next", "breakpoint delete --force",
                       "breakpoint set --name mix", "continue", "frame select 1", "frame variable w next",
                       "breakpoint delete --force", "continue"])
    printed = iterations_printed(output)
    this, following = printed[ITERATIONS], printed[ITERATIONS + 1]
    shown = lldb_variables(output, "frame variable h w next")
    assert shown["h"] == this["h"] and float(shown["w"]) == float(this["w"]), (shown, this, output)
    assert int(shown["next"], 16) == int(this["next"], 16), (shown, this)
    assert "`mix(" in lldb_section(output, "continue"), output
    in_caller = lldb_variables(output, "frame variable w next")
    assert float(in_caller["w"]) == float(following["w"]), (in_caller, following)
    assert int(in_caller["next"], 16) == int(following["next"], 16), (in_caller, following)


BULK_SOURCE = DEBUG_DATA / "bulkloop.wat"
BULK_STUBS = ("stackstitch_memory_fill", "stackstitch_memory_copy", "stackstitch_memory_grow")


def bulkloop_locals(iteration: int) -> dict[str, str]:
    """bulkloop.wat's locals while iteration `iteration` (from 0) calls the stubs."""
    return {"i": str(iteration), **{name: str(k * (iteration + 1)) for k, name in enumerate("abcde", 1)}}


def test_gdb_reads_pinned_locals_in_the_caller_of_each_bulk_memory_stub(require_tool):
    expected = bulkloop_locals(ITERATIONS)
    session = gdb_session(require_tool, BULK_SOURCE, "--invoke", "spread", "10")
    try:
        session.payload(f"-break-insert -f -i {ITERATIONS} {BULK_STUBS[0]}")
        for k, stub in enumerate(BULK_STUBS):
            if k:
                session.payload("-break-delete")
                session.payload(f"-break-insert -f {stub}")
            stop = session.run("run" if k == 0 else "continue").result["payload"]
            assert stop["frame"]["func"] == stub, stop
            assert session.frames(2)[1]["func"] == "spread"
            assert {name: session.evaluate(name, frame=1) for name in expected} == expected, stub
        session.payload("-stack-select-frame 0")
        session.run("stepi")  # past the first instruction: the stub's other rule
        session.run("stepi")
        assert {name: session.evaluate(name, frame=1) for name in expected} == expected
    finally:
        session.close()


def test_lldb_reads_pinned_locals_in_the_caller_of_each_bulk_memory_stub(require_tool):
    commands = [f"breakpoint set --name {BULK_STUBS[0]} --ignore-count {ITERATIONS}", "run",
                "frame select 1", "frame variable", "register read r8 r9 r10",
                "frame select 0", "thread step-inst", "thread step-inst", "frame select 1", "frame variable"]
    for stub in BULK_STUBS[1:]:
        commands += ["breakpoint delete --force", f"breakpoint set --name {stub}", "continue",
                     "frame select 1", "frame variable"]
    output = run_lldb(require_tool, BULK_SOURCE, commands + ["breakpoint delete --force", "continue"],
                      "--invoke", "spread", "10")
    expected = {"n": "10", **bulkloop_locals(ITERATIONS)}
    for k in range(4):  # fill at its entry and two instructions on, copy, grow
        assert lldb_variables(output, "frame variable", occurrence=k) == expected, (k, output)
    registers = lldb_section(output, "register read r8 r9 r10")
    assert "unavailable" not in registers and registers.count("0x") == 3, output
    assert "150" in output.rsplit("(lldb) continue", 1)[1], output  # spread 10 ran to its end

