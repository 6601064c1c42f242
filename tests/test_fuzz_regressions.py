"""Miscompilations the differential fuzzer (tests/fuzz) found, reduced by hand from its
saved repros; each test compares with the result the spec (and Wasmtime) gives."""

from __future__ import annotations

import subprocess
import sys

from conftest import require_wasm_tools_for_module

from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Store

require_wasm_tools_for_module()


def instantiate(wat: str):
    return Store().instantiate(load_bytes(wat.encode(), "test.wat"), {})


def test_br_if_out_of_the_function_keeps_a_parameter_on_the_fall_through_path():
    """`br_if 0` returns the parameter below its condition. Writing the results over the
    parameters first loads such a parameter into a register, but that load sat on the
    taken path only, while the compiler kept believing the register held the value on
    the fall-through path too: there the value was garbage (smith campaign, seed 1,
    module 934: an in-bounds load trapped as out of bounds)."""
    instance = instantiate("""
    (module
      (func (export "f") (param i32) (result i32)
        i64.const 0x78e9a2f1b3c4d58f
        i64.extend8_s   ;; holds a register below the branch value
        local.get 0
        local.get 0
        br_if 0         ;; taken: returns the parameter
        i32.const 1000
        i32.add
        local.set 0
        drop
        local.get 0))""")
    assert instance.invoke("f", [0]) == [1000]
    assert instance.invoke("f", [3]) == [3]


def test_br_if_out_of_the_function_with_several_results_read_from_parameters():
    instance = instantiate("""
    (module
      (func (export "f") (param i32 i64 i32) (result i64 i32)
        f64.const 1.5
        f64.sqrt        ;; registers in use below the branch values
        i32.const 9
        i32.popcnt
        local.get 1
        local.get 0
        local.get 2
        br_if 0         ;; taken: returns (param 1, param 0)
        local.set 0
        i64.const 1
        i64.add
        local.set 1
        drop
        drop
        local.get 1
        local.get 0))""")
    assert instance.invoke("f", [7, 40, 0]) == [41, 7]
    assert instance.invoke("f", [7, 40, 1]) == [40, 7]


TAIL_CALL_OUT_WAST = """
(module $other
  (memory 1)
  (func (export "triple") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 3))))
(register "other" $other)
(module
  (import "spectest" "print_i32" (func $print (param i32)))
  (import "other" "triple" (func $triple (param i32) (result i32)))
  (table funcref (elem $triple))
  (type $i_i (func (param i32) (result i32)))
  (memory 1)
  (global $g (mut i32) (i32.const 0))
  (data (i32.const 16) "\\2a\\00\\00\\00")
  (func $to_other (param i32) (result i32) (return_call $triple (local.get 0)))
  (func $to_host (param i32) (return_call $print (local.get 0)))
  (func $to_table (param i32) (result i32) (return_call_indirect (type $i_i) (local.get 0) (i32.const 0)))
  (func (export "after_other_instance") (param i32) (result i32)
    (drop (call $to_other (local.get 0)))
    (global.set $g (i32.const 7))
    (i32.add (global.get $g) (i32.load (i32.const 16))))
  (func (export "after_host_function") (param i32) (result i32)
    (call $to_host (local.get 0))
    (global.set $g (i32.const 7))
    (i32.add (global.get $g) (i32.load (i32.const 16))))
  (func (export "after_table_entry") (param i32) (result i32)
    (drop (call $to_table (local.get 0)))
    (i32.load (i32.const 16))))
(assert_return (invoke "after_other_instance" (i32.const 5)) (i32.const 49))
(assert_return (invoke "after_table_entry" (i32.const 5)) (i32.const 42))
(assert_return (invoke "after_host_function" (i32.const 5)) (i32.const 49))
"""


def test_a_call_whose_callee_tail_calls_another_instance_returns_to_our_instance(tmp_path):
    """A direct call to a function of the same instance cannot switch instance, the
    compiler assumed, so it did not reload the instance and memory registers after it.
    But the callee may `return_call` an import (another instance's function, or a host
    function), which returns straight to us with its own registers: our memory and
    globals were then the other instance's, or garbage (proposals campaign, seed 1:
    crashes in modules 51 and 207, wrong values elsewhere). The conformance runner
    forks per script, so the crash this was fails the test rather than killing it."""
    script = tmp_path / "tail_call_out.wast"
    script.write_text(TAIL_CALL_OUT_WAST)
    proc = subprocess.run([sys.executable, "-m", "stackstitch.engine.cli", "wast", "-v",
                           str(script)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_constant_below_a_block_survives_branches_taken_before_it_was_spilled():
    """A constant on the value stack below a block stays an immediate until something in
    the block spills every constant (a throw, a resume, ...). Paths that left the block
    before that point (a `br_if`, or an exception from a call landing in a `try_table`)
    never stored it, yet the code after the block read it from its stack slot, which
    held whatever was there before (proposals campaign, seed 1, module 1386: a global
    took a value left by a loop parameter)."""
    instance = instantiate("""
    (module
      (tag $t)
      (func $may_throw (param i32) (if (local.get 0) (then (throw $t))))
      (func (export "branch_then_throw") (param i32) (result i32)
        i32.const 16384
        (block
          (br_if 0 (local.get 0))
          (throw $t)))
      (func (export "call_then_throw") (param i32) (result i32)
        i32.const 16384
        (block $caught
          (try_table (catch_all $caught)
            (call $may_throw (local.get 0))
            (throw $t)))))""")
    assert instance.invoke("branch_then_throw", [1]) == [16384]
    assert instance.invoke("call_then_throw", [1]) == [16384]
    assert instance.invoke("call_then_throw", [0]) == [16384]
