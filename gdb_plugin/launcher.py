"""`stackstitch gdb`: gdb with the continuation-aware plugin loaded, on `stackstitch run
MODULE ...`, on a core file (`--core`), or attached to a running process (`--attach`).

Everything before the first `--` is what `stackstitch run` gets (options such as
--switching included); everything after it goes to gdb, before `--args` (for example
`--batch -ex 'break leaf' -ex run -ex bt`). Breakpoints on JIT functions stay pending
until the engine registers their code, and gdb stops at a Wasm trap (`catch wasm-trap`)
unless --no-catch-trap is given. Errors are one line; the exit status is gdb's.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

from stackstitch.engine.options import parse_run_arguments

from .corefile import CoreError, check_process, core_executable

EXIT_ERROR, EXIT_USAGE = 1, 2

USAGE = """usage: stackstitch gdb [--no-catch-trap] MODULE [--invoke NAME] [RUN OPTIONS] [ARG...] [-- GDB_ARGS...]
       stackstitch gdb --core CORE [-- GDB_ARGS...]
       stackstitch gdb --attach PID [--no-catch-trap] [-- GDB_ARGS...]
       stackstitch gdb --plugin-path

Start gdb on `stackstitch run MODULE ...`, on a core file it left, or attached to it, with
the stackstitch plugin loaded:
  info continuations               list continuations (state, function, parent, where, stack)
  continuation ID                  select a continuation's innermost frame (suspended too)
  continuation ID COMMAND          run COMMAND there (bt lists that continuation's frames)
  continuation apply all COMMAND   the same for every continuation
  bt                               shows a boundary line at every continuation switch
  catch wasm-trap|suspend [TAG]|resume [ID]|cont-new|switch
                                   stop at a trap or a continuation event
  info wasm [functions [REGEX]]    instances, memories, tables, globals; functions
gdb stops at a Wasm trap with its stack intact, as at a signal (--no-catch-trap: not).

RUN OPTIONS are those of `stackstitch run` (--switching, --stack-size, ...). GDB_ARGS pass
through to gdb, e.g. -- --batch -ex 'break leaf' -ex run -ex bt
--core finds the Python interpreter that wrote CORE in the core itself. By hand:
  gdb -x PLUGIN -p PID        gdb -x PLUGIN PYTHON CORE
where PLUGIN is printed by `stackstitch gdb --plugin-path` and PYTHON is the interpreter
itself (`python3 -c 'import sys; print(sys.executable)'`), not a shell shim."""


def main(argv: list[str]) -> int:
    """Entry point of `stackstitch gdb` (argv without the `gdb` word); the exit status."""
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if argv[:1] == ["--plugin-path"]:
        print(plugin_loader())
        return 0
    split = argv.index("--") if "--" in argv else len(argv)
    own_args, gdb_args = argv[:split], argv[split + 1:]
    catch_traps = "--no-catch-trap" not in own_args
    own_args = [arg for arg in own_args if arg != "--no-catch-trap"]
    gdb = shutil.which("gdb")
    try:
        if own_args[:1] in (["--core"], ["--attach"]):
            command = target_command(own_args, gdb_args, catch_traps)
        else:
            command = run_command(own_args, gdb_args, catch_traps)
    except UsageError as e:
        return fail(f"{e} (see `stackstitch gdb --help`)", EXIT_USAGE)
    except (ValueError, CoreError) as e:
        return fail(str(e), EXIT_ERROR)
    if gdb is None:
        return fail("gdb is not installed (no `gdb` on PATH)", EXIT_ERROR)
    return run_gdb([gdb, *command])


class UsageError(Exception):
    """The command line is wrong (exit status 2)."""


def run_command(run_args: list[str], gdb_args: list[str], catch_traps: bool) -> list[str]:
    """gdb's arguments for `stackstitch run RUN_ARGS` under it."""
    return [*plugin_args(catch_traps), *gdb_args, "--args", *debuggee(run_args)]


def debuggee(run_args: list[str]) -> list[str]:
    """The command line of `stackstitch run RUN_ARGS`, checked before a debugger starts:
    UsageError for wrong arguments, ValueError for a module file that is not there."""
    if not run_args:
        raise UsageError("missing MODULE")
    try:
        module = Path(parse_run_arguments(run_args).module)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if not module.is_file():
        raise ValueError(f"no such module file: {module}")
    return [sys.executable, "-m", "stackstitch.engine.cli", "run", *run_args]


def target_command(own_args: list[str], gdb_args: list[str], catch_traps: bool) -> list[str]:
    """gdb's arguments for `--core CORE` or `--attach PID`."""
    option = own_args[0]
    if len(own_args) != 2:
        raise UsageError(f"{option} takes one {'CORE' if option == '--core' else 'PID'} "
                         "and nothing else before `--`")
    if option == "--core":
        core = Path(own_args[1])
        return [*plugin_args(False), *gdb_args, str(core_executable(core)), str(core)]
    if not own_args[1].isdigit():
        raise UsageError(f"--attach takes a process id, got {own_args[1]!r}")
    check_process(int(own_args[1]))
    return [*plugin_args(catch_traps), *gdb_args, "-p", own_args[1]]


def plugin_args(catch_traps: bool) -> list[str]:
    catch = ["-ex", "catch wasm-trap"] if catch_traps else []
    return ["-q", "-ex", "set breakpoint pending on", "-x", str(plugin_loader()), *catch]


def fail(message: str, status: int) -> int:
    print(f"stackstitch gdb: error: {message}", file=sys.stderr)
    return status


def plugin_loader() -> Path:
    """The plugin's `load.py`, wherever the package is installed (or checked out)."""
    spec = importlib.util.find_spec("stackstitch.gdb_plugin")
    return Path(spec.submodule_search_locations[0]) / "load.py"


def run_gdb(command: list[str], environment: dict | None = None) -> int:
    """The debugger's exit status. Ctrl-C reaches it too (same terminal), which handles it;
    here it must not end the wait."""
    process = subprocess.Popen(command, env=environment)
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue
