"""`stackstitch lldb`: lldb with the continuation plugin loaded and its GDB JIT loader on, on
`stackstitch run MODULE ...` or on a core file (`--core`).

Everything before the first `--` is what `stackstitch run` gets; everything after it goes
to lldb (for example `--batch -o 'breakpoint set -n leaf' -o run -o 'continuation list'`).
lldb runs its own Python (Debian's lldb-14 finds its `lldb` module only on a PYTHONPATH
this sets); the program under it gets the caller's PYTHONPATH back. Errors are one line;
the exit status is lldb's.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from stackstitch.gdb_plugin.corefile import CoreError, core_executable
from stackstitch.gdb_plugin.launcher import UsageError, debuggee, run_gdb

EXIT_ERROR, EXIT_USAGE = 1, 2

USAGE = """usage: stackstitch lldb MODULE [--invoke NAME] [RUN OPTIONS] [ARG...] [-- LLDB_ARGS...]
       stackstitch lldb --core CORE [-- LLDB_ARGS...]
       stackstitch lldb --plugin-path

Start lldb on `stackstitch run MODULE ...` (or on a core file it left) with the stackstitch
plugin loaded and lldb's GDB JIT loader on, so Wasm functions have names and lines:
  continuation list                 the continuations (state, function, parent, where, stack)
  continuation bt [ID]              a continuation's frames, suspended ones too; without ID,
                                    the thread's backtrace with a line at every switch
  continuation select ID            select a running continuation's innermost frame
  continuation apply all [COMMAND]  the same for every continuation (default: bt)
  p EXPR, print EXPR                follow C pointers into linear memory (p *n, p n->next->v);
                                    what is not a variable path goes to `expression`
LLDB_ARGS pass through, e.g. -- --batch -o 'breakpoint set -n leaf' -o run -o 'continuation bt'
By hand: PYTHONPATH=LLDB_PYTHON lldb -O 'settings set plugin.jit-loader.gdb.enable on'
-O 'command script import PLUGIN' -- PYTHON -m stackstitch.engine.cli run MODULE ...
where PLUGIN is printed by `stackstitch lldb --plugin-path` and LLDB_PYTHON is lldb's
Python directory (/usr/lib/llvm-14/lib/python3.11/dist-packages on Debian)."""


def main(argv: list[str]) -> int:
    """Entry point of `stackstitch lldb` (argv without the `lldb` word); the exit status."""
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if argv[:1] == ["--plugin-path"]:
        print(plugin_loader())
        return 0
    split = argv.index("--") if "--" in argv else len(argv)
    own_args, lldb_args = argv[:split], argv[split + 1:]
    try:
        target = target_args(own_args)
    except UsageError as e:
        return fail(f"{e} (see `stackstitch lldb --help`)", EXIT_USAGE)
    except (ValueError, CoreError) as e:
        return fail(str(e), EXIT_ERROR)
    lldb = shutil.which("lldb")
    if lldb is None:
        return fail("lldb is not installed (no `lldb` on PATH)", EXIT_ERROR)
    python_path = lldb_python_path(lldb)
    if python_path is None:
        return fail("cannot find lldb's Python module (lldb/__init__.py) for the plugin", EXIT_ERROR)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (python_path, os.environ.get("PYTHONPATH")) if p)}
    return run_gdb([lldb, *plugin_args(), *lldb_args, *target], environment)


def target_args(own_args: list[str]) -> list[str]:
    """lldb's arguments naming what to debug."""
    if own_args[:1] == ["--core"]:
        if len(own_args) != 2:
            raise UsageError("--core takes one CORE and nothing else before `--`")
        core = Path(own_args[1])
        return ["-c", str(core), str(core_executable(core))]
    return ["--", *debuggee(own_args)]


def plugin_args() -> list[str]:
    """Commands lldb runs before it loads the target; the program gets back the caller's
    PYTHONPATH (lldb's own is for lldb's Python only)."""
    original = os.environ.get("PYTHONPATH")
    environment = (f"settings set target.env-vars PYTHONPATH={original}" if original
                   else "settings set target.unset-env-vars PYTHONPATH")
    return ["-O", "settings set plugin.jit-loader.gdb.enable on",
            "-O", f"command script import {plugin_loader()}", "-O", environment]


def lldb_python_path(lldb: str) -> str | None:
    """The directory holding lldb's `lldb` module: what `lldb -P` says if that is right
    (Debian's lldb-14 says a path that does not exist), else beside the real binary."""
    try:
        said = subprocess.run([lldb, "-P"], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        said = ""
    candidates = [said] if said else []
    root = Path(os.path.realpath(lldb)).parent.parent  # .../llvm-14/bin/lldb -> .../llvm-14
    candidates += sorted(glob.glob(str(root / "lib" / "python3*" / "dist-packages")))
    return next((c for c in candidates if (Path(c) / "lldb" / "__init__.py").is_file()), None)


def plugin_loader() -> Path:
    return Path(__file__).resolve().parent / "load.py"


def fail(message: str, status: int) -> int:
    print(f"stackstitch lldb: error: {message}", file=sys.stderr)
    return status
