"""The Wasm engine: decoding, validation glue, the single-pass x86-64 compiler, runtime, host functions and CLI."""
