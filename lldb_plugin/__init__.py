"""lldb Python extension: `continuation list`, `continuation bt [ID]`, `continuation select
ID` and `continuation apply all COMMAND`, the lldb counterparts of the gdb plugin's
commands, over the same debug-root view and stack walker (gdb_plugin/view.py,
engine/runtime/stackwalk.py: pure Python, no gdb needed); and `p`/`print` that follow a Wasm
program's pointers into linear memory (`wasmprint`). `load.py` is what lldb imports;
`launcher` is `stackstitch lldb` (it runs outside lldb, in the project's Python).
"""
