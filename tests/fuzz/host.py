"""What generated modules may import: the `spectest` module both engines provide (host
functions, globals, a table, a memory), and `host`, a Wasm module of ours instantiated
beside the module under test. Its functions keep state, trap, throw, and call back into
the module under test through the shared spectest table, so calls cross instances in
both directions. Both engines instantiate `host` first; its state is part of the state
the harness compares.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

from . import tools

HOST_MODULE = """(module
  (type $ii (func (param i32) (result i32)))
  (import "spectest" "table" (table $shared 10 20 funcref))
  (tag $raised (export "tag") (param i32))
  (global $counter (export "counter") (mut i64) (i64.const 0))
  (func (export "mix") (param i32 i64) (result i64)
    (global.set $counter (i64.add (global.get $counter) (i64.const 1)))
    (i64.add (i64.extend_i32_u (local.get 0)) (i64.rotl (local.get 1) (i64.const 7))))
  (func (export "check") (param i32) (result i32)
    (if (i32.eq (i32.and (local.get 0) (i32.const 255)) (i32.const 7)) (then unreachable))
    (i32.mul (local.get 0) (i32.const 3)))
  (func (export "raise") (param i32)
    (if (i32.and (local.get 0) (i32.const 1)) (then (throw $raised (local.get 0)))))
  (func (export "dispatch") (param i32) (result i32)
    (global.set $counter (i64.add (global.get $counter) (i64.const 100)))
    (call_indirect $shared (type $ii) (local.get 0) (i32.and (local.get 0) (i32.const 7)))))
"""

# What smith may import (it picks among these), per campaign: the tag only with exceptions.
IMPORTS = """
  (import "spectest" "print_i32" (func (param i32)))
  (import "spectest" "print_f64_f64" (func (param f64 f64)))
  (import "spectest" "global_i32" (global i32))
  (import "spectest" "global_f64" (global f64))
  (import "spectest" "table" (table 10 20 funcref))
  (import "spectest" "memory" (memory 1 2))
  (import "host" "mix" (func (param i32 i64) (result i64)))
  (import "host" "check" (func (param i32) (result i32)))
  (import "host" "raise" (func (param i32)))
  (import "host" "dispatch" (func (param i32) (result i32)))
  (import "host" "counter" (global (mut i64)))"""
TAG_IMPORT = """
  (import "host" "tag" (tag (param i32)))"""


@functools.cache
def host_module() -> bytes:
    return assemble(HOST_MODULE)


@functools.cache
def available_imports(with_tag: bool) -> Path:
    """A module whose imports are what smith may import (`--available-imports`), in a
    file named by its contents, so that processes share it."""
    wasm = assemble("(module" + IMPORTS + (TAG_IMPORT if with_tag else "") + ")")
    path = Path(tempfile.gettempdir()) / f"stackstitch-fuzz-imports-{hashlib.sha256(wasm).hexdigest()[:12]}.wasm"
    if not path.exists():
        partial = path.with_suffix(f".{os.getpid()}")
        partial.write_bytes(wasm)
        partial.replace(path)
    return path


def assemble(text: str) -> bytes:
    proc = tools.run_wasm_tools(["parse", "-"], text.encode())
    if proc.returncode != 0:
        raise ValueError(proc.stderr.decode(errors="replace"))
    return proc.stdout
