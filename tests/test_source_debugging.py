"""Source-level debugging in real gdb (through its machine interface) and lldb: the
module's own DWARF translated into its JIT object.

tests/data/debug/list.c is built with the ziglang wheel at -O0 and -O2. It prints every
variable in scope as NAME=VALUE, spelled as gdb prints it, before each call to
checkpoint(); at every stop there, each value a debugger shows in the frames above must be
the printed one, or optimized out, never another. At -O0 all of them must be shown, and
pointers must dereference as in native C (`*n`, `n->next->v`, `ptype n`).
tests/data/debug/locals.wat checks WAT: breakpoints by line, `list`, and its locals
named from the name section.
"""

from __future__ import annotations

import re
from pathlib import Path

from conftest import DEBUG_DATA, DEBUG_C_SOURCE as C_SOURCE
from sourcedebug import (check_frames, gdb_session, lldb_section, lldb_variables, printed_values, run_lldb,
                         source_line)

WAT_SOURCE = DEBUG_DATA / "locals.wat"


def test_gdb_shows_c_source_frames_variables_and_pointers_at_O0(require_tool, c_programs):
    session = gdb_session(require_tool, c_programs["O0"])
    try:
        session.payload("-break-insert -f leaf")
        return_line = source_line(C_SOURCE, "leaf returns")
        session.payload(f"-break-insert -f {C_SOURCE.name}:{return_line}")

        stop = session.run().result["payload"]
        assert stop["frame"]["func"] == "leaf" and stop["frame"]["file"].endswith("list.c"), stop
        frames = [(f["func"], f.get("file", ""), int(f.get("line", 0))) for f in session.frames(6)[:3]]
        assert [(name, Path(file).name) for name, file, _ in frames] == [
            ("leaf", "list.c"), ("mid", "list.c"), ("main", "list.c")], frames
        assert frames[0][2] == source_line(C_SOURCE, "int sum = 0;")  # after the prologue
        assert frames[1][2] == source_line(C_SOURCE, "return leaf(head->next")
        assert frames[2][2] == source_line(C_SOURCE, "mid(head, 2)")
        arguments = session.payload("-stack-list-arguments 1 0 2")["stack-args"]
        assert [a["value"] for a in arguments[0]["args"]][1] == "42"  # leaf's k
        assert [a["name"] for a in arguments[1]["args"]] == ["head", "a"]

        stop = session.run("continue").result["payload"]
        assert int(stop["frame"]["line"]) == return_line, stop
        printed = printed_values(session.program_output)
        for frame in (0, 1, 2):
            function = session.frames(6)[frame]["func"]
            for variable in session.variables(frame):
                assert variable["value"] == printed[function, variable["name"]], (function, variable)
        assert session.evaluate("*n") == printed["leaf", "*n"]
        assert session.evaluate("n->next->v") == printed["leaf", "n->next->v"]
        assert session.evaluate("counter") == printed["leaf", "counter"]
        assert session.evaluate("head->next->next->v", frame=1) == "33"
        assert session.evaluate("arr[3]", frame=1) == "40"
        assert session.evaluate("pt.w", frame=1) == "2.5"
        assert session.evaluate("*third", frame=1) == "40"  # an int in linear memory
        assert session.evaluate("third[1] + 1", frame=1) == "51"
        assert session.evaluate("label", frame=1) == printed["mid", "label"]  # with the string
        assert session.evaluate("label[1]", frame=1) == "105 'i'"
        session.payload("-stack-select-frame 0")
        ptype = session.cli("ptype n").console
        assert re.search(r"type = struct node \{\s+int v;\s+struct node \*next : 32;\s+\} \*", ptype), ptype
        # A function's returned value is not in rax: gdb must not make one up.
        stop = session.run("finish").result["payload"]
        assert stop["reason"] == "function-finished" and stop["frame"]["func"] == "mid", stop
        assert "return-value" not in stop, stop
    finally:
        session.close()


def test_gdb_never_shows_a_wrong_value_at_O2(require_tool, c_programs):
    """-O2 inlines leaf into mid, reuses Wasm locals, splits structs into pieces."""
    session = gdb_session(require_tool, c_programs["O2"])
    try:
        session.payload("-break-insert -f checkpoint")
        checked = 0
        stop = session.run().result["payload"]
        for _ in range(3):  # in main, mid and leaf
            assert stop["frame"]["func"] == "checkpoint", stop
            checked += check_frames(session, printed_values(session.program_output), C_SOURCE, require_all=False)
            stop = session.run("continue").result["payload"]
        assert checked >= 10, checked  # most values are there: the check cannot pass vacuously
        assert stop.get("reason") == "exited-normally", stop
    finally:
        session.close()


def test_gdb_breaks_on_wat_lines_and_shows_named_locals(require_tool):
    session = gdb_session(require_tool, WAT_SOURCE, "--invoke", "main")
    try:
        line = source_line(WAT_SOURCE, "(local.get $acc))")
        session.payload(f"-break-insert -f {WAT_SOURCE.name}:{line}")
        stop = session.run().result["payload"]
        assert (stop["frame"]["func"], int(stop["frame"]["line"])) == ("leaf", line), stop
        frames = [(f["func"], int(f["line"])) for f in session.frames(6)[:2]]
        assert frames[1] == ("mid", source_line(WAT_SOURCE, "(call $leaf"))
        variables = {v["name"]: v["value"] for v in session.variables(0)}
        assert variables == {"n": "42", "scale": "1000", "acc": "42000", "ratio": "2.5", "local4": "-3"}
        assert {v["name"]: v["value"] for v in session.variables(1)} == {"x": "41", "y": "42"}
        assert session.evaluate("acc / scale") == "42"
        listing = session.cli(f"list {line},{line}").console
        assert "(local.get $acc))" in listing, listing
        assert session.payload("-data-evaluate-expression sizeof(acc)")["value"] == "8"
    finally:
        session.close()


def test_lldb_shows_c_source_frames_and_variables(require_tool, c_programs):
    line = source_line(C_SOURCE, "leaf returns")
    output = run_lldb(require_tool, c_programs["O0"],
                      [f"breakpoint set --file list.c --line {line}", "run", "bt 3", "frame variable",
                       "frame select 1", "frame variable", "process kill"])
    printed = printed_values(output)
    backtrace = lldb_section(output, "bt 3")
    frames = re.findall(r"frame #\d+: 0x[0-9a-f]+ JIT\(0x[0-9a-f]+\)`(\w+)\((.*?)\) at list\.c:(\d+)", backtrace)
    assert [(name, int(at)) for name, _, at in frames] == [
        ("leaf", line), ("mid", source_line(C_SOURCE, "return leaf(head->next"))], output
    assert frames[0][1] == "n=0x0000000001010030, k=42" and "0x1010030" == printed["leaf", "n"], output
    leaf = lldb_variables(output, "frame variable")
    assert leaf == {"n": "0x0000000001010030", "k": "42", "sum": printed["leaf", "sum"]}, output
    mid = output.split("(lldb) frame select 1", 1)[1]
    assert re.search(r"\(int\[5\]\) arr = \(\[0\] = 10, \[1\] = 20, \[2\] = 30, \[3\] = 40, \[4\] = 50\)", mid), mid
    assert "(point) pt = (x = 2, y = 7, w = 2.5)" in mid, mid


def test_lldb_shows_wat_lines_and_named_locals(require_tool):
    line = source_line(WAT_SOURCE, "(local.get $acc))")
    output = run_lldb(require_tool, WAT_SOURCE,
                      [f"breakpoint set --file locals.wat --line {line}", "run", "bt 2", "frame variable",
                       "process kill"], "--invoke", "main")
    assert re.search(rf"`leaf\(n=42, scale=1000\) at locals\.wat:{line}:", output), output
    assert lldb_variables(output, "frame variable") == {
        "n": "42", "scale": "1000", "acc": "42000", "ratio": "2.5", "local4": "-3"}, output
