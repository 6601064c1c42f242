"""The lldb plugin (`stackstitch lldb`) against the gdb plugin: on the same program stopped
at the same place, and on the very process gdb stopped (a core gdb writes there), lldb's
`continuation list` and `continuation bt ID` give the same continuations and the same
frames (functions, source lines, boundaries) as gdb's `info continuations` and
`continuation ID bt`. Then what lldb can and cannot select, and one-line errors.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from gdbmi import GdbSession

MODULE = Path(__file__).resolve().parent / "data" / "gdb_plugin" / "generators.wat"
IDS = ("1", "2", "3", "4", "5", "6")
CLI = [sys.executable, "-m", "stackstitch.engine.cli"]
FRAME = re.compile(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(.*?\)(?: at (\S+):(\d+))?")
BOUNDARY = re.compile(r"── continuation (\S+), created from (\S+)")
FAILURES = ("Traceback", "internal error")
# What lldb prints when its JIT loader finds a breakpoint a new place, whenever code is
# registered (with a cold code cache, during a later command): no command's output.
LOCATION_ADDED = re.compile(r"^\d+ locations? added to breakpoint \d+$")


def frames(lines: list[str]) -> list[tuple]:
    """(function, file, line) per frame and ("boundary", id, function) per boundary line."""
    out = []
    for line in lines:
        boundary, frame = BOUNDARY.search(line), FRAME.match(line)
        if boundary:
            out.append(("boundary", *boundary.groups()))
        elif frame:
            name, file, number = frame.groups()
            out.append((name, Path(file).name if file else None, number))
    return out


def rows(lines: list[str]) -> list[list[str]]:
    """The table's rows without the stack column (addresses differ between runs)."""
    return [line.split()[:-1] for line in lines if line.strip()]


def lldb(*args: str, commands: list[str]) -> dict[str, list[str]]:
    """`stackstitch lldb ARGS -- --batch -o COMMAND...`: each command's output lines."""
    argv = [*CLI, "lldb", *args, "--", "--batch"]
    for command in commands:
        argv += ["-o", command]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert not any(failure in output for failure in FAILURES), output
    found, current = {}, None
    for line in result.stdout.splitlines():
        if line.startswith("(lldb) "):
            current = line[len("(lldb) "):]
            found[current] = []
        elif current is not None and not LOCATION_ADDED.match(line):
            found[current].append(line)
    for error in re.findall(r"^error: .*$", result.stderr, re.M):  # errors go to stderr
        found.setdefault("errors", []).append(error)
    return found


def gdb_view(gdb: GdbSession) -> dict[str, list]:
    found = {"table": rows(gdb.cli("info continuations").lines)}
    for ident in IDS:
        found[ident] = frames(gdb.cli(f"continuation {ident} bt").lines)
    return found


def lldb_view(found: dict[str, list[str]]) -> dict[str, list]:
    view = {"table": rows(found["continuation list"])}
    for ident in IDS:
        view[ident] = frames(found[f"continuation bt {ident}"])
    return view


def test_same_continuations_and_frames_as_gdb(require_tool, tmp_path):
    require_tool("gdb")
    require_tool("lldb")
    core = tmp_path / "leaf.core"
    with GdbSession("gdb", command=[*CLI, "gdb", str(MODULE), "--invoke", "main", "--", "-nx",
                                    "--interpreter=mi3"]) as gdb:
        gdb.cli("break leaf")
        gdb.run()
        in_gdb = gdb_view(gdb)
        gdb.cli(f"gcore {core}")
    commands = ["continuation list", *(f"continuation bt {ident}" for ident in IDS)]
    live = lldb(str(MODULE), "--invoke", "main",
                commands=["breakpoint set -n leaf", "run", *commands, "process kill"])
    in_core = lldb("--core", str(core), commands=commands)

    assert len(in_gdb["table"]) == 7 and in_gdb["1"][0] == ("gen_body", "generators.wat", "17"), in_gdb
    assert in_gdb["2"][2] == ("boundary", "3", "sub") and in_gdb["4"] == [], in_gdb
    assert lldb_view(live) == in_gdb, (live, in_gdb)
    assert lldb_view(in_core) == in_gdb, (in_core, in_gdb)


def test_what_lldb_selects_and_its_errors(require_tool):
    require_tool("lldb")
    found = lldb(str(MODULE), "--invoke", "main", commands=[
        "breakpoint set -n leaf", "run", "continuation select 5", "frame info",
        "continuation apply all frame info", "continuation bt", "continuation select 1",
        "process kill"])
    selected = found["continuation select 5"]
    assert selected[0] == "[Switching to continuation 5 (running, created from outer)]", found
    assert re.match(r"frame #3: .*`mid at generators.wat:31", selected[1]), found
    assert re.match(r"frame #3: .*`mid at ", found["frame info"][0]), found
    applied = "\n".join(found["continuation apply all frame info"])
    assert "Continuation 1 (suspended, created from gen):\ncontinuation 1 is suspended: only bt" in applied
    assert re.search(r"Continuation 6 \(running, created from inner\):\nframe #0: .*`leaf at ", applied)
    stitched = frames(found["continuation bt"])
    assert [f[0] if f[0] != "boundary" else f[1] for f in stitched[:7]] == [
        "leaf", "inner", "6", "mid", "outer", "5", "main"], stitched
    assert found["errors"] == ["error: stackstitch: continuation 1 is suspended: lldb cannot select a "
                               "frame that is not on the thread's chain (`continuation bt 1` lists its "
                               "frames)"], found


@pytest.mark.parametrize("commands, message", [
    (["continuation"], "error: stackstitch: usage: continuation list | continuation bt [ID] | "
                       "continuation select ID | continuation apply all [COMMAND]"),
    (["continuation bt 99"], "error: stackstitch: no continuation 99 (see `continuation list`)"),
])
def test_command_errors_are_one_line(require_tool, commands, message):
    require_tool("lldb")
    found = lldb(str(MODULE), "--invoke", "main", commands=["breakpoint set -n leaf", "run", *commands,
                                                           "process kill"])
    assert found["errors"] == [message], found


def test_without_a_process(require_tool):
    require_tool("lldb")
    plugin = subprocess.run([*CLI, "lldb", "--plugin-path"], capture_output=True, text=True).stdout.strip()
    from stackstitch.lldb_plugin.launcher import lldb_python_path

    python_path = lldb_python_path(require_tool("lldb"))
    result = subprocess.run([require_tool("lldb"), "--batch", "-o", f"command script import {plugin}",
                             "-o", "continuation list"], capture_output=True, text=True, timeout=300,
                            env={"PYTHONPATH": python_path, "PATH": "/usr/bin:/bin"})
    assert "error: stackstitch: no process or core file is being debugged" in result.stderr, result


@pytest.mark.parametrize("args, status, message", [
    ([], 2, "missing MODULE (see `stackstitch lldb --help`)"),
    (["no-such-module.wat"], 1, "no such module file: no-such-module.wat"),
    (["--core", "no-such.core"], 1, "no such core file: no-such.core"),
])
def test_launcher_errors(args, status, message):
    result = subprocess.run([*CLI, "lldb", *args], capture_output=True, text=True, timeout=300)
    assert (result.returncode, result.stderr) == (status, f"stackstitch lldb: error: {message}\n")
