"""`stackstitch gdb MODULE [--invoke NAME] [ARG...] [-- GDB_ARGS...]`: gdb on
`stackstitch run MODULE ...` with the continuation-aware plugin loaded.

Everything before the first `--` is what `stackstitch run` gets (options such as
--switching included); everything after it goes to gdb, before `--args` (for example
`--batch -ex 'break leaf' -ex run -ex bt`). Breakpoints on JIT functions stay pending
until the engine registers their code. Errors are one line; the exit status is gdb's.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

from stackstitch.engine.options import parse_run_arguments

EXIT_ERROR, EXIT_USAGE = 1, 2

USAGE = """usage: stackstitch gdb MODULE [--invoke NAME] [RUN OPTIONS] [ARG...] [-- GDB_ARGS...]

Start gdb on `stackstitch run MODULE ...` with the stackstitch plugin loaded:
  info continuations               list continuations (state, function, parent, where, stack)
  continuation ID [COMMAND]        run COMMAND (default: bt) against that continuation
  continuation apply all COMMAND   the same for every continuation
  bt                               shows a boundary line at every continuation switch

RUN OPTIONS are those of `stackstitch run` (--switching, --stack-size, ...). GDB_ARGS pass
through to gdb, e.g. -- --batch -ex 'break leaf' -ex run -ex bt
To attach to a running `stackstitch run` or open a core file, load the plugin by hand:
  gdb -x PLUGIN -p PID        gdb -x PLUGIN PYTHON CORE
where PLUGIN is printed by `stackstitch gdb --plugin-path`."""


def main(argv: list[str]) -> int:
    """Entry point of `stackstitch gdb` (argv without the `gdb` word); the exit status."""
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if argv[:1] == ["--plugin-path"]:
        print(plugin_loader())
        return 0
    if not argv or argv[0] == "--":
        return fail("missing MODULE (see `stackstitch gdb --help`)", EXIT_USAGE)
    split = argv.index("--") if "--" in argv else len(argv)
    run_args, gdb_args = argv[:split], argv[split + 1:]
    try:
        module = Path(parse_run_arguments(run_args).module)
    except ValueError as e:
        return fail(str(e), EXIT_USAGE)
    if not module.is_file():
        return fail(f"no such module file: {module}", EXIT_ERROR)
    gdb = shutil.which("gdb")
    if gdb is None:
        return fail("gdb is not installed (no `gdb` on PATH)", EXIT_ERROR)
    return run_gdb(gdb_command(gdb, run_args, gdb_args))


def fail(message: str, status: int) -> int:
    print(f"stackstitch gdb: error: {message}", file=sys.stderr)
    return status


def plugin_loader() -> Path:
    """The plugin's `load.py`, wherever the package is installed (or checked out)."""
    spec = importlib.util.find_spec("stackstitch.gdb_plugin")
    return Path(spec.submodule_search_locations[0]) / "load.py"


def gdb_command(gdb: str, run_args: list[str], gdb_args: list[str]) -> list[str]:
    return [gdb, "-q", "-ex", "set breakpoint pending on", "-x", str(plugin_loader()),
            *gdb_args, "--args", sys.executable, "-m", "stackstitch.engine.cli", "run", *run_args]


def run_gdb(command: list[str]) -> int:
    """gdb's exit status. Ctrl-C reaches gdb too (same terminal), which handles it; here it
    must not end the wait."""
    process = subprocess.Popen(command)
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue
