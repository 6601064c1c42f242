"""What the source-level debugging tests share: starting gdb and lldb on the engine, and
comparing the variables a debugger shows with what the C test programs print.

The C programs print every variable in scope as `function: NAME=VALUE ...`, spelled as gdb
prints it, before they stop where the tests look; a debugger must show each one with that
value, or optimized out, never another.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from gdbmi import GdbSession

NOT_SHOWN = ("<optimized out>", "<synthetic pointer>")
PAIR = re.compile(r'([\w>*-]+)=(\{[^}]*\}|\S+(?: "[^"]*")?)')
LLDB_PYTHON = "/usr/lib/llvm-14/lib/python3.11/dist-packages"  # lldb 14 needs its Python module


def source_line(path: Path, marker: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if marker in line)


def engine_command(module: Path, *args: str, options: tuple[str, ...] = ()) -> list[str]:
    """`stackstitch run OPTIONS MODULE ARGS...`."""
    return [sys.executable, "-m", "stackstitch.engine.cli", "run", *options, str(module), *args]


def gdb_session(require_tool, module: Path, *args: str, options: tuple[str, ...] = (),
                plugin: bool = True) -> GdbSession:
    """gdb as `stackstitch gdb` starts it (with the plugin and pending breakpoints), or as
    plain `gdb --args` with pending breakpoints only."""
    from stackstitch.gdb_plugin.launcher import plugin_loader
    gdb_args = ["-x", str(plugin_loader())] if plugin else []
    return GdbSession(require_tool("gdb"), engine_command(module, *args, options=options), gdb_args)


def printed_values(output: str) -> dict[tuple[str, str], str]:
    """(function, name) -> value, from the program's `function: NAME=VALUE ...` lines; a
    later line wins."""
    values = {}
    for line in output.splitlines():
        function, _, rest = line.partition(": ")
        for name, value in PAIR.findall(rest):
            values[function, name] = value
    return values


def elements(value: str) -> list[str]:
    """The parts of a composite value as gdb prints it ({a, b} or {x = a, y = b})."""
    if not value.startswith("{"):
        return [value]
    return [part.split(" = ", 1)[-1] for part in value[1:-1].split(", ")]


def check_frames(session: GdbSession, printed: dict, source: Path, require_all: bool, depth: int = 6) -> int:
    """Every variable of the frames of `source` above the innermost one (of the `depth`
    innermost) has its printed value or is optimized out (with `require_all`, none may be).
    The number of values checked."""
    checked = 0
    for frame in session.frames(depth)[1:]:
        if not frame.get("file", "").endswith(source.name):
            continue
        function = frame["func"]
        for variable in session.variables(int(frame["level"])):
            expected = printed.get((function, variable["name"]))
            assert expected is not None, f"{function}: {variable} was not printed"
            for shown, wanted in zip(elements(variable["value"]), elements(expected), strict=True):
                if shown in NOT_SHOWN and not require_all:
                    continue
                assert shown == wanted, f"{function}: {variable['name']} = {variable['value']}, printed {expected}"
                checked += 1
    return checked


def run_lldb(require_tool, module: Path, commands: list[str], *args: str, options: tuple[str, ...] = ()) -> str:
    """lldb in batch mode on the engine, with the JIT loader on; everything it printed."""
    lldb = require_tool("lldb")
    command = [lldb, "--batch", "-o", "settings set plugin.jit-loader.gdb.enable on"]
    for line in commands:
        command += ["-o", line]
    result = subprocess.run(command + ["--", *engine_command(module, *args, options=options)],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": LLDB_PYTHON})
    return result.stdout + result.stderr


def lldb_section(output: str, command: str) -> str:
    """What lldb printed for `command` (its first occurrence)."""
    return output.split(f"(lldb) {command}", 1)[1].split("(lldb) ", 1)[0]


def lldb_variables(output: str, after: str, occurrence: int = 0) -> dict[str, str]:
    """The `frame variable` lines printed for the command `after` (its `occurrence`-th
    time): name -> value."""
    section = output.split(f"(lldb) {after}")[occurrence + 1].split("(lldb) ", 1)[0]
    return {m[1]: m[2] for m in re.finditer(r"^\(.*?\) (\S+) = (.*)$", section, re.M)}
