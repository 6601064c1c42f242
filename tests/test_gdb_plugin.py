"""The gdb plugin end to end, in real gdb: `stackstitch gdb` stopped in `leaf` two
continuations deep while three continuations are suspended and one is fresh
(tests/data/gdb_plugin/generators.wat), then the same checks on a core file written with
`gcore` at that point, and on a process gdb attaches to. Both switching modes.

Checked: `info continuations` (states, functions, parents, suspension sites), the
suspended continuations' frames from `continuation N bt` (names and source lines, which
must be those of the suspend and call instructions), selecting one with `continuation N`,
`continuation apply all bt`, `bt` with boundary lines instead of `<signal handler
called>`, one-line errors for bad input and corrupt memory, and the launcher's own errors.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackstitch.engine import layout as L
from gdbmi import GdbSession

DATA = Path(__file__).resolve().parent / "data" / "gdb_plugin"
MODULE = DATA / "generators.wat"
PLUGIN = Path(__file__).resolve().parent.parent / "gdb_plugin" / "load.py"
MODES = ("native", "libcall")
SIGNAL = "<signal handler called>"
FAILURES = ("Traceback", "Python Exception", "Error occurred in Python", "internal error")
LAUNCHER = [sys.executable, "-c",
            "import sys; from stackstitch.gdb_plugin.launcher import main; sys.exit(main(sys.argv[1:]))"]

# id -> (state, function it was created from, parent); see the module's comment
EXPECTED_TABLE = {
    "1": ("suspended", "gen", "-"),
    "2": ("suspended", "pair", "-"),
    "3": ("suspended", "sub", "2"),
    "4": ("fresh", "gen", "-"),
    "5": ("running", "outer", "main"),
    "6": ("running", "inner", "5"),
}
ROW = re.compile(r"^(\*?)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(.*?)\s+(?:(0x[0-9a-f]+)-(0x[0-9a-f]+)|-)$")
FRAME = re.compile(r"^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\S+) \(\)(?: at (\S+):(\d+))?")
BOUNDARY = re.compile(r"── continuation (\S+), created from (\S+)")

# What the stopped process shows, for the live session and the core file alike.
SESSION = [("info", "info continuations"), ("bt", "bt 10"), ("c1", "continuation 1 bt"),
           ("c2", "continuation 2 bt"), ("c5", "continuation 5 bt"), ("c6", "continuation 6 bt"),
           ("select", "continuation 2"), ("selected", "bt"), ("none", "continuation none"),
           ("frames", "continuation apply all info frame"),
           ("all", "continuation apply all bt"), ("c4x", "continuation 4 p $_cont_id"),
           ("missing", "continuation 999"), ("letters", "continuation abc"),
           ("apply", "continuation apply some bt")]


def run(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)


def launcher_session(*run_args: str, module: Path = MODULE) -> GdbSession:
    """`stackstitch gdb MODULE RUN_ARGS` driven through MI (the launcher passes the
    interpreter option on to gdb)."""
    return GdbSession("gdb", command=[*LAUNCHER, str(module), *run_args, "--", "-nx",
                                      "--interpreter=mi3"])


def outputs(gdb: GdbSession, session: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Each command's output lines, by name."""
    return {name: gdb.cli(command).lines for name, command in session}


def source_line(text: str) -> int:
    """The line of generators.wat holding `text`: where gdb's line table puts its code."""
    return next(k for k, line in enumerate(MODULE.read_text().splitlines(), 1) if text in line)


def wasm_offsets(wasm_tools: str, tmp_path: Path, module: Path = MODULE) -> dict[tuple[str, str], int]:
    """(function, first instruction word) -> offset, from `wasm-tools print --print-offsets`:
    the reference for the offsets the plugin prints."""
    binary = tmp_path / f"{module.stem}.wasm"
    subprocess.run([wasm_tools, "parse", str(module), "-o", str(binary)], check=True)
    text = run([wasm_tools, "print", "--print-offsets", str(binary)]).stdout
    offsets, function = {}, None
    for line in text.splitlines():
        match = re.match(r"\(;@([0-9a-f]+)\s*;\)\s+(\(func \$(\S+)|\S+)", line)
        if not match:
            continue
        if match.group(3):
            function = match.group(3)
        else:
            offsets.setdefault((function, match.group(2)), int(match.group(1), 16))
    return offsets


def table(lines: list[str]) -> dict[str, tuple]:
    rows = {}
    for line in lines:
        match = ROW.match(line)
        if match and match.group(2).isdigit():
            current, ident, state, function, parent, where, lo, hi = match.groups()
            stack = (int(lo, 16), int(hi, 16)) if lo else (None, None)  # `-`: fresh, no stack yet
            rows[ident] = (state, function, parent, where, bool(current), *stack)
    return rows


def frames(lines: list[str]) -> list[tuple]:
    """(name, wasm offset or None) per frame line, and ("boundary", id) per boundary line."""
    out = []
    for line in lines:
        boundary = BOUNDARY.search(line)
        if boundary and not FRAME.match(line):
            out.append(("boundary", boundary.group(1)))
        elif FRAME.match(line):
            name, _, line_number = FRAME.match(line).group(2, 3, 4)
            out.append((name, int(line_number) if line_number else None))
    return out


def check_session(found: dict[str, list[str]], offsets: dict):
    """Everything SESSION shows, wherever the stopped process came from."""
    output = "\n".join(f"@@{name}\n" + "\n".join(lines) for name, lines in found.items())
    assert not any(failure in output for failure in FAILURES), output

    rows = table(found["info"])
    assert {k: v[:3] for k, v in rows.items()} == EXPECTED_TABLE, output
    assert [k for k, v in rows.items() if v[4]] == ["6"], output  # the running one is marked
    suspend_in = lambda f: offsets[(f, "suspend")]
    assert rows["1"][3].startswith(f"gen_body @ 0x{suspend_in('gen_body'):x} on tag yield"), output
    assert rows["2"][3].startswith(f"sub_body @ 0x{suspend_in('sub_body'):x} on tag"), output
    assert "continuation 3" in rows["2"][3] and rows["4"][3] == "not started", output
    assert rows["5"][3] == f"mid @ 0x{offsets[('mid', 'resume')]:x}", output
    assert all(lo < hi for ident, (*_, lo, hi) in rows.items() if ident != "4"), output
    assert rows["4"][5:] == (None, None), output  # fresh: its stack comes at its first resume

    bt = frames(found["bt"])
    assert [f[0] for f in bt[:8]] == ["leaf", "inner", "boundary", "mid", "outer", "boundary",
                                      "main", "stackstitch_entry"], output
    assert bt[2] == ("boundary", "6") and bt[5] == ("boundary", "5"), output
    assert SIGNAL not in "\n".join(found["bt"]), output
    assert "── continuation 6, created from inner" in "\n".join(found["bt"]), output

    # Suspended frames come from memory alone: names and the lines of the suspend and
    # call instructions, up to the boundary at the base of the continuation's stack.
    gen, sub = source_line("(suspend $yield (i32.const 10))"), source_line("(suspend $yield (i32.const 20))")
    assert frames(found["c1"]) == [("gen_body", gen), ("gen", source_line("(func $gen ")),
                                   ("boundary", "1")], output
    assert frames(found["c2"]) == [("sub_body", sub), ("sub", source_line("(func $sub ")),
                                   ("boundary", "3"), ("pair", source_line("(func $pair ")),
                                   ("boundary", "2")], output
    assert frames(found["c5"]) == [("mid", source_line("(func $mid ")),
                                   ("outer", source_line("(func $outer ")), ("boundary", "5")], output
    assert [f[0] for f in frames(found["c6"])] == ["leaf", "inner", "boundary"], output

    # Selected, a suspended continuation is the thread's chain until `continuation none`.
    assert found["select"][0] == "[Switching to continuation 2 (suspended, created from pair)]", output
    assert frames(found["select"][1:2]) == [("sub_body", sub)], output
    assert found["selected"][0].startswith("#0  ── selected: continuation 2 (suspended); "
                                           "the thread is in leaf"), output
    assert frames(found["selected"][1:]) == frames(found["c2"]), output
    assert frames(found["none"][:1]) == [("leaf", source_line("(loop $forever"))], output

    # Each continuation's own innermost frame, not the selected one each time.
    frame_of = dict(re.findall(r"Continuation (\d+) .*?\n.*?rip = 0x[0-9a-f]+ in (\w+)",
                               "\n".join(found["frames"]), re.S))
    assert {k: v for k, v in frame_of.items() if k != "4"} == {
        "1": "gen_body", "2": "sub_body", "3": "sub_body", "5": "mid", "6": "leaf"}, output

    all_text = "\n".join(found["all"])
    for ident, (state, function, _) in EXPECTED_TABLE.items():
        assert f"Continuation {ident} ({state}, created from {function}):" in all_text, output
    assert "continuation 4 has not started" in all_text, output
    assert frames(found["all"]).count(("boundary", "3")) == 2, output  # in 2's and in 3's own

    assert found["c4x"] == ["$1 = 4"], output
    assert found["missing"] == ["no continuation 999 (see `info continuations`)"], output
    assert len(found["letters"]) == 1 and "invalid continuation id 'abc'" in found["letters"][0], output
    assert found["apply"] == ["usage: continuation apply all [COMMAND]"], output


@pytest.fixture
def offsets(require_tool, tmp_path):
    return wasm_offsets(require_tool("wasm-tools"), tmp_path)


@pytest.mark.parametrize("mode", MODES)
def test_live_session_and_its_core_file(require_tool, tmp_path, offsets, mode):
    gdb_path = require_tool("gdb")
    core = tmp_path / "stopped.core"
    with launcher_session("--invoke", "main", f"--switching={mode}") as gdb:
        gdb.cli("break leaf")
        stop = gdb.run()
        assert stop.result["payload"]["frame"]["func"] == "leaf", gdb.output()
        check_session(outputs(gdb, SESSION), offsets)
        # IDEs list frames through MI, once they ask for frame filters: the boundary
        # lines reach them too.
        gdb.mi("-enable-frame-filters")
        functions = [frame["func"] for frame in gdb.frames()[:8]]
        assert functions[:3] == ["leaf", "inner", "── continuation 6, created from inner"], functions
        assert SIGNAL not in functions, functions
        # Apart from the boundaries, `bt` prints what gdb prints without the plugin (whose
        # decorator is its own, for speed), host frames and their arguments included; gdb
        # 13 spells a library without debug information `at LIB` for any frame filter.
        ours, plain = gdb.cli("bt").lines, gdb.cli("bt -no-filters").lines
        assert len(ours) == len(plain) > 10
        for mine, theirs in zip(ours, plain):
            if SIGNAL in theirs:
                assert BOUNDARY.search(mine), (mine, theirs)
            else:
                assert mine == theirs.replace(" () from /", " () at /"), (mine, theirs)
        # With another frame filter before ours, we decorate what it passes on instead of
        # walking the frames ourselves: the same lines.
        gdb.python("gdb.frame_filters['other'] = type('Other', (), {'name': 'other', "
                   "'priority': 200, 'enabled': True, 'filter': lambda self, frames: frames})()")
        assert gdb.cli("bt").lines == ours
        gdb.cli("disable frame-filter global other")
        gdb.cli(f"gcore {core}")
        # A running continuation's frames are the thread's own: `finish` works there.
        gdb.cli("continuation 5")
        finished = gdb.run("finish")
        assert finished.result["payload"]["frame"]["func"] == "outer", gdb.output()

    assert core.is_file()
    python = os.path.realpath(sys.executable)
    with GdbSession(gdb_path, gdb_args=["-x", str(PLUGIN), python, str(core)]) as gdb:
        check_session(outputs(gdb, SESSION), offsets)


def test_attached_process(require_tool, offsets):
    gdb_path = require_tool("gdb")
    spinning = subprocess.Popen([sys.executable, "-m", "stackstitch.engine.cli", "run", str(MODULE),
                                 "--invoke", "spin"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        session = [("info", "info continuations"), ("bt", "bt 10"), ("c2", "continuation 2 bt")]
        for _ in range(60):  # until it spins in leaf (compiling comes first)
            time.sleep(0.5)
            with GdbSession(gdb_path, gdb_args=["-x", str(PLUGIN), "-p", str(spinning.pid)]) as gdb:
                found = outputs(gdb, session)
            if "leaf" in "\n".join(found["bt"]):
                break
        output = str(found)
        assert not any(failure in output for failure in FAILURES), output
        assert {k: v[:3] for k, v in table(found["info"]).items()} == EXPECTED_TABLE, output
        assert [f[0] for f in frames(found["bt"])[:3]] == ["leaf", "inner", "boundary"], output
        assert SIGNAL not in output, output
        assert [f[0] for f in frames(found["c2"])] == ["sub_body", "sub", "boundary", "pair",
                                                       "boundary"], output
    finally:
        spinning.kill()
        spinning.wait()


# Runs in gdb's own Python: garbage into some continuation records, found through the
# stack ranges `info continuations` prints (a record sits at the top of its stack).
CORRUPTER = f"""
import gdb

records = {{}}
for row in gdb.execute("info continuations", to_string=True).splitlines()[1:]:
    words = row.replace("*", " ").split()
    if words[-1] != "-":  # a fresh one has no stack yet
        records[words[0]] = int(words[-1].split("-")[1], 16) - {L.CR_SIZE}
gdb.execute(f"set {{{{long}}}}{{records['1'] + {L.CR_FP}}} = 0x1234")      # 1's saved fp
gdb.execute(f"set {{{{long}}}}{{records['2'] + {L.CR_TOP}}} = 0xdead0000")  # 2's innermost record
gdb.execute(f"set {{{{long}}}}{{records['5'] + {L.CR_FUNC}}} = 8")           # 5's function reference
"""


def test_corrupt_records_give_one_line_notes(require_tool, tmp_path):
    """Garbage in continuation records (written by the test, through gdb) gives a note or
    a one-line error, never a traceback; the other continuations still list."""
    require_tool("gdb")
    corrupter = tmp_path / "corrupt.py"
    corrupter.write_text(CORRUPTER)
    session = [("c1", "continuation 1 bt"), ("c2", "continuation 2"), ("info", "info continuations"),
               ("bt", "bt 10")]
    with launcher_session("--invoke", "main") as gdb:
        gdb.cli("break leaf")
        gdb.run()
        gdb.cli(f"source {corrupter}")
        found = outputs(gdb, session)
    output = str(found)
    assert not any(failure in output for failure in FAILURES), output
    assert found["c1"] == ["continuation 1: cannot show its frames: frame pointer 0x1234 is on "
                           "no known stack"], output
    assert len(found["c2"]) == 1 and found["c2"][0].startswith("stackstitch: "), output
    rows = table(found["info"])
    assert rows["2"][3].startswith("<unknown>") and rows["5"][1] == "<unknown>", output
    assert rows["1"][:3] == EXPECTED_TABLE["1"], output
    assert "── continuation 5, created from <unknown>" in "\n".join(found["bt"]), output


def test_without_a_process(require_tool):
    with GdbSession(require_tool("gdb"), gdb_args=["-x", str(PLUGIN)]) as gdb:
        found = outputs(gdb, [("info", "info continuations"), ("c", "continuation 1"),
                              ("usage", "continuation")])
    assert found["info"] == ["stackstitch: no process or core file is being debugged"], found
    assert found["c"] == found["info"], found
    assert found["usage"] == ["usage: continuation ID [COMMAND] | continuation apply all [COMMAND] "
                              "| continuation none"]


@pytest.mark.parametrize("args, status, message", [
    ([], 2, "missing MODULE"),
    (["no-such-module.wat"], 1, "no such module file: no-such-module.wat"),
    ([str(MODULE), "--switching=fast"], 2, "argument --switching: invalid choice"),
])
def test_launcher_errors(args, status, message):
    result = run([*LAUNCHER, *args])
    assert result.returncode == status, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert result.stderr.startswith("stackstitch gdb: error: "), result.stderr


def test_launcher_without_gdb(tmp_path):
    result = run([*LAUNCHER, str(MODULE), "--invoke", "main"], env={**os.environ, "PATH": str(tmp_path)})
    assert result.returncode == 1
    assert result.stderr == "stackstitch gdb: error: gdb is not installed (no `gdb` on PATH)\n"


def test_stackstitch_gdb_is_a_cli_command(require_tool):
    """`stackstitch gdb` dispatches to gdb_plugin/launcher.py (as `perf` does to perf_map/cli.py)."""
    result = run([require_tool("stackstitch"), "gdb", "--help"])
    assert result.returncode == 0 and "info continuations" in result.stdout, result.stderr


def test_bt_from_host_code_names_the_host_call_stub(require_tool):
    """gdb shows the signal-marked host-call stub as `<signal handler called>`; the plugin
    keeps its name, and the continuation's start stub still becomes a boundary line."""
    require_tool("gdb")
    with launcher_session("--invoke", "main", module=DATA.parent / "gdb" / "host_call.wat") as gdb:
        gdb.cli("break leaf")
        gdb.run()
        gdb.cli("break PyObject_CallNoArgs")
        gdb.run("continue")
        output = gdb.cli("bt").console
    frames = [line for line in output.splitlines() if re.match(r"#\d+ ", line)]
    names = [BOUNDARY.sub("BOUNDARY", re.match(r"#\d+\s+(?:0x[0-9a-f]+ in )?(.*?) \(", line).group(1))
             for line in frames]
    assert names[:7] == ["PyObject_CallNoArgs", "stackstitch_host_call", "leaf", "inner",
                         "BOUNDARY", "main", "stackstitch_entry"], output
    assert "── continuation 1, created from inner" in output
    assert SIGNAL not in output and not any(failure in output for failure in FAILURES), output
