"""gdb Python extension: `info continuations`, `continuation ID [COMMAND]`, `continuation
apply all COMMAND`, and a `bt` with a boundary line at every continuation switch.

Runs in gdb's own Python (standard library only) and only reads memory, so it works on a
live process, an attached one and a core file. `load.py` is what gdb sources; `view`
reads the engine's debug root (pure Python) and walks stacks with the engine's walker,
`inferior` reads through gdb, `commands` and `boundaries` are the user-facing parts.
`launcher` is `stackstitch gdb` (it runs outside gdb, in the project's Python).
"""
