"""The Wasm engine: `frontend` (decoding and validation glue), `compiler` (single-pass
x86-64 code generation and stubs), `runtime` (store, continuations, native state), `host`
(WASI, spectest), and the command line. engine/DESIGN.md describes how they fit together."""
