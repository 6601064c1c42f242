"""gdb Python extension: `info continuations`, `continuation ID [COMMAND]` (any
continuation's innermost frame selected, suspended ones included), `continuation apply all
COMMAND`, catchpoints (`catch wasm-trap`, `suspend`, `resume`, `cont-new`, `switch`),
`info wasm`, and a `bt` with a boundary line at every continuation switch.

Runs in gdb's own Python (standard library only) and only reads memory, so it works on a
live process, an attached one and a core file. `load.py` is what gdb sources; `view`
reads the engine's debug root (pure Python; the lldb plugin uses it too) and walks stacks
with the engine's walker, `inferior` reads through gdb, `selection` grafts a suspended
continuation onto the thread's chain, `commands`, `boundaries`, `catchpoints`, `infowasm`
and `wasmvalues` are the user-facing parts. `launcher` (`stackstitch gdb`) and `corefile`
(what it checks of a core or a process) run outside gdb, in the project's Python.
"""
