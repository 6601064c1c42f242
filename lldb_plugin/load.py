"""Entry point lldb imports (`command script import .../lldb_plugin/load.py`): makes the
project's pure-Python modules importable as `stackstitch.*` in lldb's own Python, as
gdb_plugin/load.py does for gdb, then adds the `continuation` command and the `p`/`print`
that follow Wasm pointers (wasmprint.py)."""

import os
import sys
import types


def _install_package():
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    package = sys.modules.get("stackstitch")
    if package is None:
        package = types.ModuleType("stackstitch", "stackstitch's modules, for the lldb plugin")
        package.__path__ = []
        sys.modules["stackstitch"] = package
    if parent not in package.__path__:
        package.__path__.insert(0, parent)


_install_package()

from stackstitch.lldb_plugin.commands import ContinuationCommand  # noqa: E402,F401
from stackstitch.lldb_plugin.wasmprint import print_command  # noqa: E402,F401


def __lldb_init_module(debugger, internal_dict):
    debugger.HandleCommand(f"command script add -c {__name__}.ContinuationCommand continuation")
    for alias in ("p", "print"):  # lldb's aliases of `expression --`, taken over
        debugger.HandleCommand(f"command unalias {alias}")
        debugger.HandleCommand(f"command script add -f {__name__}.print_command {alias}")
