"""Miscompilations the differential fuzzer (tests/fuzz) found, reduced by hand from its
saved repros; each test compares with the result the spec (and Wasmtime) gives."""

from __future__ import annotations

from conftest import require_wasm_tools_for_module

from stackstitch.engine.loader import load_bytes
from stackstitch.engine.runtime import Store

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
