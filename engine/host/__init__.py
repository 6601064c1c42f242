"""Host modules Wasm imports: WASI preview1 and the spectest module."""

# The module name WASI preview1's functions are imported from: here rather than in wasi/,
# so that telling whether a module needs WASI loads none of it.
WASI_MODULE = "wasi_snapshot_preview1"
