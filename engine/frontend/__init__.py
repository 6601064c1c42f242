"""Bytes to a validated `Module`: the binary decoder, types, the instruction reader, and
wasm-tools for WAT and validation. Untrusted input passes here first."""
