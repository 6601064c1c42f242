"""WASI preview1: every function, with preopened directories (`--dir`) no path can leave.

Behaviour, down to the errno of each misuse, follows Wasmtime 49's; tests/data/wasi_fs.c
checks it side by side. The modules: abi (numbers, layouts), memory (guest pointers),
descriptors (the fd table), paths (resolution beneath a directory fd), fdcalls, pathcalls
and poll (the calls), context (the Wasi class: arguments, environment, clocks, exit).
"""

from .abi import *  # noqa: F401,F403  the ABI's names, for embedders and tests
from .context import ProcExit, Wasi  # noqa: F401
