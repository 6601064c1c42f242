"""stackstitch: a native x86-64 WebAssembly engine whose switched stacks are debuggable and
profilable.

This folder holds only the top of the import namespace: its subpackages live in folders of
their own beside it (engine/, unwind/, backtrace/, gdb_plugin/, lldb_plugin/, perf_map/),
which pyproject.toml maps to `stackstitch.engine`, `stackstitch.unwind`, and so on, so that
no generic top-level name such as `engine` lands in site-packages. `python -m
stackstitch` is the `stackstitch` command.
"""
