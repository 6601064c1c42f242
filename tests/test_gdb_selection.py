"""Selecting a suspended continuation in real gdb and reading its frames as any frame's:
`continuation 1 bt full`, `continuation 1 info locals`, then `continuation 1`, `up`,
`info locals`, `print`, `info frame`, `down`, `continuation none`; and `info wasm`. On a
live process (both switching modes), on a core written by `gcore` and opened with
`stackstitch gdb --core`, on a process `stackstitch gdb --attach` attaches to, and on the
core the kernel writes when that process is killed with SIGABRT. Also the errors of
--core and --attach, and plain gdb given a shell shim instead of the interpreter.
(tests/data/gdb_plugin/suspended_locals.wat says what its continuation holds.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import unavailable
from debuggee import kernel_core, spinning
from gdbmi import GdbSession
from test_gdb_plugin import wasm_offsets

DATA = Path(__file__).resolve().parent / "data" / "gdb_plugin"
MODULE = DATA / "suspended_locals.wat"
PLUGIN = Path(__file__).resolve().parent.parent / "gdb_plugin" / "load.py"
LAUNCHER = [sys.executable, "-c",
            "import sys; from stackstitch.gdb_plugin.launcher import main; sys.exit(main(sys.argv[1:]))"]
FAILURES = ("Traceback", "Python Exception", "Error occurred in Python", "internal error")
FRAME = re.compile(r"^#(\d+)\s+(?:0x[0-9a-f]+ in )?(\S+) \((.*?)\)(?: at \S+:(\d+))?")

SESSION = [("bt_full", "continuation 1 bt full"), ("locals", "continuation 1 info locals"),
           ("select", "continuation 1"), ("up", "up"), ("up_locals", "info locals"),
           ("print", "print total + ratio"), ("frame", "info frame"), ("down", "down"),
           ("none", "continuation none"), ("wasm", "info wasm"),
           ("functions", "info wasm functions ^(step|producer)$")]


def line_of(text: str) -> int:
    return next(k for k, line in enumerate(MODULE.read_text().splitlines(), 1) if text in line)


def frames(lines: list[str]) -> list[tuple[str, str]]:
    return [(m.group(2), m.group(3)) for m in map(FRAME.match, lines) if m]


@pytest.fixture
def lines(require_tool, tmp_path) -> dict[str, dict[str, int]]:
    """Where gdb says step and producer are: lines of the WAT text when the process was
    traced as it compiled the module (its DWARF is then made), else Wasm offsets."""
    offsets = wasm_offsets(require_tool("wasm-tools"), tmp_path, MODULE)
    return {"traced": {"step": line_of("(suspend $yield (local.get $half))"),
                       "producer": line_of("(call $step")},
            "untraced": {"step": offsets[("step", "suspend")], "producer": offsets[("producer", "call")]}}


def check_session(found: dict[str, list[str]], spinning_now: bool, where: dict[str, int]):
    output = "\n".join(f"@@{name}\n" + "\n".join(lines) for name, lines in found.items())
    assert not any(failure in output for failure in FAILURES), output
    step_line, producer_line = where["step"], where["producer"]

    bt = found["bt_full"]
    assert re.match(rf"#1 .* in step \(value=42000\) at \S*suspended_locals.wat:{step_line}$", bt[0]), output
    assert bt[1].strip() == "half = 21000", output
    assert re.match(rf"#2 .* in producer \(seed=42\) at \S*suspended_locals.wat:{producer_line}$", bt[2]), output
    assert [line.strip() for line in bt[3:5]] == ["total = 42000", "ratio = 2.5"], output
    assert bt[5].startswith("#3  ── continuation 1, created from producer") and len(bt) == 6, output
    assert found["locals"] == ["half = 21000"], output

    assert found["select"][0] == "[Switching to continuation 1 (suspended, created from producer)]", output
    assert frames(found["select"][1:2]) == [("step", "value=42000")], output
    assert frames(found["up"][:1]) == [("producer", "seed=42")], output
    assert found["up_locals"] == ["total = 42000", "ratio = 2.5"], output
    assert found["print"] == ["$1 = 42002.5"], output
    assert found["frame"][0].startswith("Stack level 2, frame at "), output
    assert frames(found["down"][:1]) == [("step", "value=42000")], output
    # Back to the thread's own frame 0: checkpoint, or where a spinning one was caught.
    assert found["none"][0].startswith("#0 ") and (spinning_now or "checkpoint" in found["none"][0]), output

    wasm = "\n".join(found["wasm"])
    assert re.match(r"Instance suspended_locals \(module \S*suspended_locals.wat, vmctx 0x", found["wasm"][0])
    assert re.search(r"memory heap: base 0x[0-9a-f]+, size 0x10000 \(1 page\), maximum 0x40000 "
                     r"\(4 pages\)", wasm), output
    assert "table callbacks: 2 elements of (ref null func), maximum 10000000" in wasm, output
    assert f"global spin: i32 mut = {int(spinning_now)}" in wasm, output
    assert re.search(r"global kept: \(ref null \d+\) mut = 0x[0-9a-f]+ \(continuation 1\)", wasm), output
    functions = [line.split() for line in found["functions"]]
    assert [f[1] for f in functions] == ["step", "producer"], output
    for first, second in (f[0].split("-") for f in functions):
        assert int(first, 16) < int(second, 16)


def outputs(gdb: GdbSession) -> dict[str, list[str]]:
    return {name: gdb.cli(command).lines for name, command in SESSION}


def launcher(*args: str) -> GdbSession:
    return GdbSession("gdb", command=[*LAUNCHER, *args, "--", "-nx", "--interpreter=mi3"])


@pytest.mark.parametrize("mode", ("native", "libcall"))
def test_live_and_in_a_gcore_core(require_tool, tmp_path, lines, mode):
    require_tool("gdb")
    core = tmp_path / "checkpoint.core"
    with launcher(str(MODULE), "--invoke", "main", f"--switching={mode}") as gdb:
        gdb.cli("break checkpoint")
        assert gdb.run().result["payload"]["frame"]["func"] == "checkpoint", gdb.output()
        check_session(outputs(gdb), False, lines["traced"])
        gdb.cli(f"gcore {core}")
    with launcher("--core", str(core)) as gdb:
        check_session(outputs(gdb), False, lines["traced"])


def test_attached_then_a_kernel_core(require_tool, tmp_path, lines):
    """`stackstitch gdb --attach PID` on the spinning process, started with --debug-info:
    WAT lines, as if traced from the start. Then the core the kernel writes when a process
    started without it is killed with SIGABRT, opened with `stackstitch gdb --core`: Wasm
    offsets. (--no-cache: an object cached by another test would bring its lines.)"""
    require_tool("gdb")
    process = spinning(MODULE, "spin", options=("--debug-info", "--no-cache"))
    try:
        with launcher("--attach", str(process.pid)) as gdb:
            check_session(outputs(gdb), True, lines["traced"])
    finally:
        process.kill()
        process.wait()
    core = kernel_core(MODULE, "spin", tmp_path, options=("--no-cache",))
    with launcher("--core", str(core)) as gdb:
        check_session(outputs(gdb), True, lines["untraced"])


@pytest.fixture(scope="module")
def gcore_core(tmp_path_factory) -> Path:
    """A core of the spinning process, written by gdb's `gcore`."""
    if shutil.which("gdb") is None:
        unavailable("gdb is not installed")
    core = tmp_path_factory.mktemp("cores") / "spin.core"
    process = spinning(MODULE, "spin")
    try:
        subprocess.run(["gdb", "-nx", "--batch", "-p", str(process.pid), "-ex", f"gcore {core}"],
                       capture_output=True, timeout=300)
    finally:
        process.kill()
        process.wait()
    assert core.is_file()
    return core


def launch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*LAUNCHER, *args], capture_output=True, text=True, timeout=300)


def test_core_and_attach_errors_name_the_cause(require_tool, tmp_path, gcore_core):
    require_tool("gdb")
    truncated = tmp_path / "truncated.core"
    truncated.write_bytes(gcore_core.read_bytes()[:gcore_core.stat().st_size // 2])
    moved = tmp_path / "moved.core"  # made by an interpreter that is not here
    executable = os.path.realpath(sys.executable).encode()
    elsewhere = executable[:-1] + (b"X" if executable[-1:] != b"X" else b"Y")
    moved.write_bytes(gcore_core.read_bytes().replace(executable + b"\0", elsewhere + b"\0"))
    sleeper = subprocess.Popen(["sleep", "300"])
    other = tmp_path / "sleep.core"
    try:
        subprocess.run(["gdb", "-nx", "--batch", "-p", str(sleeper.pid), "-ex", f"gcore {other}"],
                       capture_output=True, timeout=300)
        attach_other = launch("--attach", str(sleeper.pid))
    finally:
        sleeper.kill()
        sleeper.wait()
    cases = {
        "missing": (launch("--core", str(tmp_path / "nothing.core")), 1, "no such core file: "),
        "not elf": (launch("--core", str(MODULE)), 1, f"{MODULE} is not a core file ("),
        "truncated": (launch("--core", str(truncated)), 1, f"{truncated} is truncated: "),
        "moved": (launch("--core", str(moved)), 1,
                  f"{moved} was made by {elsewhere.decode()}, which is not on this machine"),
        "other core": (launch("--core", str(other)), 1,
                       f"{other} is not from a `stackstitch run` process: it maps no jit-interface-"),
        "other process": (attach_other, 1, f"process {sleeper.pid} is not a `stackstitch run` process"),
        "no process": (launch("--attach", "999999999"), 1, "no process 999999999"),
        "bad pid": (launch("--attach", "me"), 2, "--attach takes a process id, got 'me'"),
        "two cores": (launch("--core", "a", "b"), 2, "--core takes one CORE and nothing else"),
    }
    for name, (result, status, message) in cases.items():
        assert (result.returncode, result.stderr.count("\n")) == (status, 1), (name, result.stderr)
        assert result.stderr.startswith(f"stackstitch gdb: error: {message}"), (name, result.stderr)


def plugin_message(gdb_path: str, executable: str, core: Path) -> str:
    """What `info continuations` says in plain gdb given EXECUTABLE and CORE."""
    result = subprocess.run([gdb_path, "-nx", "--batch", "-x", str(PLUGIN), "-ex", "info continuations",
                             executable, str(core)], capture_output=True, text=True, timeout=300)
    messages = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("stackstitch:")]
    assert len(messages) == 1, result.stdout + result.stderr
    return messages[0]


def test_plain_gdb_given_a_shell_shim_or_another_executable(require_tool, tmp_path, gcore_core):
    """The README's plain-gdb line with `python3` a shell script (as pyenv's shims are), or
    with the wrong program: the plugin names that, instead of blaming the core."""
    gdb_path = require_tool("gdb")
    shim = tmp_path / "python3"
    shim.write_text(f"#!/bin/sh\nexec {os.path.realpath(sys.executable)} \"$@\"\n")
    shim.chmod(0o755)
    message = plugin_message(gdb_path, str(shim), gcore_core)
    assert message.startswith("stackstitch: gdb has no executable file"), message
    assert "shell shim" in message and "stackstitch gdb --core CORE" in message, message
    other = shutil.which("sleep")
    message = plugin_message(gdb_path, other, gcore_core)
    assert message == (f"stackstitch: gdb was given {other}, but the process ran "
                       f"{os.path.realpath(sys.executable)}: give gdb that file (`stackstitch gdb "
                       "--core CORE` finds it in the core)"), message
