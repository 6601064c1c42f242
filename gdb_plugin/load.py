"""Entry point gdb sources (`-x .../gdb_plugin/load.py`, or `source` it by hand): makes the
project's pure-Python modules importable as `stackstitch.*` in gdb's own Python, then
registers the commands, the backtrace filter, the printers of linear-memory values, the
stepping hooks and the catchpoints.

The `stackstitch` package is built from this file's location, not from sys.path: its
subpackages are siblings of this directory both in a checkout (`gdb_plugin/`, `engine/`)
and when installed (`site-packages/stackstitch/...`), and no generic top-level name such
as `engine` lands in gdb's Python.
"""

import os
import sys
import types


def _install_package():
    here = os.path.dirname(os.path.abspath(__file__))
    parent = os.path.dirname(here)
    package = sys.modules.get("stackstitch")
    if package is None:
        package = types.ModuleType("stackstitch", "stackstitch's modules, for the gdb plugin")
        package.__path__ = []
        sys.modules["stackstitch"] = package
    if parent not in package.__path__:
        package.__path__.insert(0, parent)


_install_package()

from stackstitch.gdb_plugin import (boundaries, catchpoints, commands, infowasm,  # noqa: E402
                                    stepping, wasmvalues)

commands.register()
boundaries.register()
wasmvalues.register()
stepping.register()
infowasm.register()
catchpoints.register()
