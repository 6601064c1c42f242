"""Host modules Wasm imports: WASI preview1 and the spectest module."""
