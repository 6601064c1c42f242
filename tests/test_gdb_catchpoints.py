"""The gdb plugin's catchpoints in real gdb, both switching modes: `catch cont-new`,
`catch resume [ID]`, `catch suspend [TAG]` and `catch switch` stop at every event of
tests/data/gdb_plugin/events.wat in order, naming the continuation; `stackstitch gdb`
stops at a trap three continuations deep with the whole stitched stack selectable (and
does not with --no-catch-trap); trap messages match the report's. Catchpoints are gdb
breakpoints only: the generated code under gdb with all of them set is the code a plain
process compiles (their cost: benchmarks/catchpoint_cost.py).
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import pytest

from gdbmi import GdbSession

DATA = Path(__file__).resolve().parent / "data"
EVENTS = DATA / "gdb_plugin" / "events.wat"
THREE_DEEP = DATA / "traps" / "three_deep.wat"
MODES = ("native", "libcall")
LAUNCHER = [sys.executable, "-c",
            "import sys; from stackstitch.gdb_plugin.launcher import main; sys.exit(main(sys.argv[1:]))"]
FAILURES = ("Traceback", "Python Exception", "Error occurred in Python", "internal error")
REPORT = re.compile(r"^Catchpoint (\d+) \(([^)]+)\): (.*)$")
FRAME = re.compile(r"^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\S+) \(")
BOUNDARY = re.compile(r"── continuation (\d+), created from (\S+)")
EXITED_134 = "exited with code 0206"  # gdb prints the status in octal

# What each stop of events.wat says, in order, with the frame it selects.
ALL_EVENTS = [
    ("cont-new", "continuation 1 (created from producer) is made by cont.new", "main"),
    ("resume", "continuation 1 (created from producer) is resumed (fresh: it starts)", "main"),
    ("suspend", "continuation 1 (created from producer) suspends on tag yield", "producer"),
    ("resume", "continuation 1 (created from producer) is resumed (suspended, producer @ ", "main"),
    ("suspend", "continuation 1 (created from producer) suspends on tag other", "producer"),
    ("resume", "continuation 1 (created from producer) is resumed (suspended, producer @ ", "main"),
    ("cont-new", "continuation 2 (created from task_a) is made by cont.new", "main"),
    ("resume", "continuation 2 (created from task_a) is resumed (fresh: it starts)", "main"),
    ("cont-new", "continuation 3 (created from task_b) is made by cont.new", "task_a"),
    ("switch", "continuation 2 (created from task_a) switches to continuation 3 (created from "
               "task_b) on tag hop", "task_a"),
]


def launcher_session(module: Path, *options: str) -> GdbSession:
    return GdbSession("gdb", command=[*LAUNCHER, *options, str(module), "--invoke", "main", "--",
                                      "-nx", "--interpreter=mi3"])


def stop(gdb: GdbSession, command: str) -> str:
    """What gdb printed for an execution command, the plugin's report of the stop included
    (printed once gdb has stopped: it comes with the next command's answer)."""
    return gdb.run(command).console + gdb.cli("echo").console


def reports(text: str) -> list[tuple[str, str, str | None]]:
    """(kind, message, function of the selected frame) of each catchpoint stop in `text`."""
    lines = text.splitlines()
    found = []
    for k, line in enumerate(lines):
        match = REPORT.match(line)
        if match:
            frame = FRAME.match(lines[k + 1]) if k + 1 < len(lines) else None
            found.append((match.group(2), match.group(3), frame.group(2) if frame else None))
    return found


def matches(found: list, expected: list) -> bool:
    return len(found) == len(expected) and all(
        kind == want_kind and message.startswith(want_message) and function == want_function
        for (kind, message, function), (want_kind, want_message, want_function) in zip(found, expected))


@pytest.mark.parametrize("mode", MODES)
def test_every_event_stops_naming_its_continuation(require_tool, mode):
    require_tool("gdb")
    with launcher_session(EVENTS, "--no-catch-trap", f"--switching={mode}") as gdb:
        for kind in ("cont-new", "resume", "suspend", "switch"):
            gdb.cli(f"catch {kind}")
        text, during = stop(gdb, "run"), {}
        for kind, _, _ in ALL_EVENTS:  # stopped at this one: look, then on to the next
            if kind in ("suspend", "switch") and kind not in during:
                during[kind] = gdb.cli("info continuations").console + gdb.cli("bt 4").console
            text += stop(gdb, "continue")
        listed = gdb.cli("info wasm catchpoints").console
    output = gdb.output()
    assert not any(failure in output for failure in FAILURES), output
    assert matches(reports(text), ALL_EVENTS), reports(text)
    assert "exited normally" in text, text
    # At the suspend: continuation 1 still runs, the stop is at its suspend instruction.
    assert re.search(r"^\*\s+1\s+running\s+producer\s+main", during["suspend"], re.M), during
    assert [m.group(1) for m in map(BOUNDARY.search, during["suspend"].splitlines()) if m] == ["1"]
    # At the switch: the handler-search stub called from task_a's switch, on 2's stack.
    assert re.search(r"#1 .* in task_a .*\n#2\s+── continuation 2, created from task_a", during["switch"])
    hits = {line.split()[1]: line.split()[-2] for line in listed.splitlines()[1:]}
    assert hits == {"cont-new": "3", "resume": "4", "suspend": "2", "switch": "1"}, listed


@pytest.mark.parametrize("mode", MODES)
def test_catchpoints_for_one_tag_and_one_continuation(require_tool, mode):
    require_tool("gdb")
    with launcher_session(EVENTS, "--no-catch-trap", f"--switching={mode}") as gdb:
        assert gdb.cli("catch suspend other").lines == ["Catchpoint 1 (suspend) for other"]
        assert gdb.cli("catch resume 2").lines == ["Catchpoint 2 (resume) for 2"]
        text = stop(gdb, "run") + stop(gdb, "continue")
        gdb.cli("delete wasm-catchpoints 2")
        deleted = gdb.cli("info wasm catchpoints").lines
        text += stop(gdb, "continue")
        errors = [gdb.cli(command).lines for command in ("catch resume 1 2", "delete wasm-catchpoints 9",
                                                        "catch switch now")]
    assert matches(reports(text), [
        ("suspend", "continuation 1 (created from producer) suspends on tag other", "producer"),
        ("resume", "continuation 2 (created from task_a) is resumed (fresh: it starts)", "main"),
    ]), text
    assert "exited normally" in text, text
    assert [line.split()[:3] for line in deleted[1:]] == [["1", "suspend", "other"]], deleted
    assert errors == [["usage: catch resume [ID]"],
                      ["no Wasm catchpoint 9 (see `info wasm catchpoints`)"],
                      ["usage: catch switch"]]


@pytest.mark.parametrize("mode", MODES)
def test_trap_three_continuations_deep(require_tool, mode):
    """`stackstitch gdb` stops at the trap as gdb stops at a signal: the message, the
    trapping frame selected, every frame of every stack selectable; continuing ends the
    program with the trap's exit status."""
    require_tool("gdb")
    with launcher_session(THREE_DEEP, f"--switching={mode}") as gdb:
        text = stop(gdb, "run")
        found = {name: gdb.cli(command).console for name, command in (
            ("bt", "bt 12"), ("info", "info continuations"), ("divisor", "print divisor"),
            ("select", "continuation 1"), ("frame", "info frame"), ("up", "frame 4"))}
        text += stop(gdb, "continue")
    output = gdb.output()
    assert not any(failure in output for failure in FAILURES), output
    assert reports(text)[0] == ("wasm trap", "integer divide by zero (in continuation 3, created from "
                                             "level3)", "leaf"), text
    assert EXITED_134 in text, text
    bt = [(m.group(2) if m else None) for m in map(FRAME.match, found["bt"].splitlines())]
    assert bt[:10] == ["stackstitch_trap", "leaf", "level3", None, "level2", None, "level1", None,
                       "main", "stackstitch_entry"], found["bt"]
    assert [m.group(1) for m in map(BOUNDARY.search, found["bt"].splitlines()) if m] == ["3", "2", "1"]
    assert len(re.findall(r"^\*?\s+\d\s+running ", found["info"], re.M)) == 3, found["info"]
    assert found["divisor"].strip() == "$1 = 0", found
    assert found["select"].splitlines()[0] == "[Switching to continuation 1 (running, created from level1)]"
    assert "in level1 " in found["select"] and "Stack level 6," in found["frame"], found
    assert "in level2 " in found["up"], found


def test_no_catch_trap(require_tool):
    require_tool("gdb")
    with launcher_session(THREE_DEEP, "--no-catch-trap") as gdb:
        text = stop(gdb, "run")
    assert EXITED_134 in text and not reports(text), text


@pytest.mark.parametrize("module, message", [
    ("oob_load.wat", "out of bounds memory access (memory fault at wasm address 0x11170 in "
                     "linear memory of size 0x10000) (in continuation 1, created from body)"),
    ("unhandled_tag.wat", "unhandled suspension: unhandled tag: other (in continuation 2, created "
                          "from inner)"),
])
def test_trap_messages_are_the_reports(require_tool, module, message):
    require_tool("gdb")
    with launcher_session(DATA / "traps" / module) as gdb:
        text = stop(gdb, "run")
    assert reports(text)[0][:2] == ("wasm trap", message), text


CODE_OF_THE_MODULE = ("python from stackstitch.gdb_plugin import inferior; "
                      "module = inferior.process_view().stores[0].modules[0]; "
                      "print('code', inferior.read(module.code, module.code_size).hex())")


def test_catchpoints_leave_the_generated_code_alone(require_tool):
    """The module's code, read at a stop with every catchpoint planted (gdb shows memory
    without its own breakpoints), is the code a process without gdb compiles."""
    from stackstitch.engine.frontend.loader import load_module
    from stackstitch.engine.runtime.store import Store

    require_tool("gdb")
    instance = Store().instantiate(load_module(str(EVENTS)), {}, name="events")
    expected = hashlib.sha256(instance.compiled.code).hexdigest()
    with launcher_session(EVENTS) as gdb:
        for kind in ("cont-new", "resume", "suspend", "switch"):
            gdb.cli(f"catch {kind}")
        stop(gdb, "run")
        stop(gdb, "continue")  # the first resume: every site is planted by now
        code = gdb.cli(CODE_OF_THE_MODULE).console.split()[-1]
        places = gdb.cli("info wasm catchpoints").lines
    assert hashlib.sha256(bytes.fromhex(code)).hexdigest() == expected
    counts = {line.split()[1]: int(line.split()[-1]) for line in places[1:]}
    assert counts == {"wasm": 1, "cont-new": 3, "resume": 4, "suspend": 1, "switch": 1}, places
