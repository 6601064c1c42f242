"""Regression tests for code-generation bugs that differential fuzzing against Wasmtime found.

Each case is the smallest program that showed the bug, with the result the specification
gives; several of them broke isolation (guest code reading native pointers, calling through
an arbitrary integer, or accessing memory below the linear memory's base).
"""

from __future__ import annotations

import pytest

from stackstitch.backtrace import UNHANDLED_SUSPENSION, capture
from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Store, Trap
from stackstitch.engine.frontend.types import FuncType
from conftest import require_wasm_tools_for_module

require_wasm_tools_for_module()

MASK64 = (1 << 64) - 1


@pytest.fixture(params=["native", "libcall"])
def store(request):
    return Store(switching=request.param, trap_observers=[capture])


def instantiate(store: Store, wat: str):
    return store.instantiate(load_bytes(wat.encode(), "test.wat"), {})


# ---- dead code: a load or store from a memory other than 0 ----------------------------------

DEAD_MULTI_MEMORY = """(module
  (type $i64 (func (param i64) (result i64)))
  (memory $a 1) (memory $b 1)
  (table 1 funcref)
  (func (export "skip_load") (result i32)
    (block br 0 i32.const 0 i32.load $b offset=11 i32.const 7 return) i32.const 42)
  (func (export "skip_store") (result i32)
    (block br 0 i32.const 0 i32.const 0 i32.store8 $b offset=12 i32.const 7 return) i32.const 43)
  (func (export "skip_then_call_ref") (param i64) (result i64)
    (block br 0 i32.const 0 i64.load $b offset=20 drop) local.get 0)
)"""


@pytest.mark.parametrize("export,args,expected", [
    ("skip_load", [], 42), ("skip_store", [], 43), ("skip_then_call_ref", [5], 5)])
def test_dead_code_skips_the_memory_index_of_a_memarg(store, export, args, expected):
    assert instantiate(store, DEAD_MULTI_MEMORY).invoke(export, args) == [expected]


# ---- memory64: offset + access size past 2^64 ------------------------------------------------

MEMORY64_WRAP = """(module
  (memory i64 1)
  (data (i64.const 0) "\\01\\02\\03\\04\\05\\06\\07\\08\\09")
  (func (export "load_max_offset") (param i64) (result i64)
    local.get 0 i64.load offset=0xFFFFFFFFFFFFFFFF)
  (func (export "load8_max_offset") (param i64) (result i32)
    local.get 0 i32.load8_u offset=0xFFFFFFFFFFFFFFFF)
  (func (export "store_near_max_offset") (param i64)
    local.get 0 i64.const -1 i64.store offset=0xFFFFFFFFFFFFFFFA)
  (func (export "load_const_address") (result i64)
    i64.const 1 i64.load offset=0xFFFFFFFFFFFFFFFF)
)"""


@pytest.mark.parametrize("export,args", [
    ("load_max_offset", [0]), ("load_max_offset", [1]), ("load_max_offset", [9]),
    ("load8_max_offset", [1]), ("store_near_max_offset", [0]), ("store_near_max_offset", [7]),
    ("load_const_address", [])])
def test_memory64_offsets_that_wrap_past_2_to_the_64_trap(store, export, args):
    instance = instantiate(store, MEMORY64_WRAP)
    with pytest.raises(Trap, match="out of bounds memory access"):
        instance.invoke(export, args)


def test_memory64_largest_in_bounds_offset_still_loads(store):
    instance = instantiate(store, """(module (memory i64 1)
      (data (i64.const 65535) "\\2a")
      (func (export "f") (param i64) (result i32) local.get 0 i32.load8_u offset=0xFFFF))""")
    assert instance.invoke("f", [0]) == [42]
    with pytest.raises(Trap, match="out of bounds memory access"):
        instance.invoke("f", [1])


# ---- block types that name a type index of 64 or more --------------------------------------

def many_types_wat(count: int, use: int) -> str:
    types = "\n".join(f"(type $t{k} (func (param i32) (result {'i32 ' * (k % 3 + 1)})))"
                      for k in range(count))
    results = "i32 " * (use % 3 + 1)
    return f"""(module {types}
      (func (export "f") (param i32) (result {results})
        local.get 0 (block (type $t{use}) (param i32) (result {results})
          {"local.get 0 " * (use % 3)}))
      (func (export "g") (param i32) (result i32)
        local.get 0 local.get 0 (if (type $t{use}) (param i32) (result {results})
          (then {"i32.const 1 " * (use % 3)}) (else {"i32.const 2 " * (use % 3)}))
        {"drop " * (use % 3)})
      (func (export "dead") (param i32) (result i32)
        (block (result i32) i32.const 3 br 0
          (loop (type $t{use}) (param i32) (result {results}) {"local.get 0 " * (use % 3)})
          {"drop " * (use % 3)})))"""


@pytest.mark.parametrize("use", [63, 64, 65, 200, 8191, 8192])
def test_block_types_with_multi_byte_type_indices(store, use):
    instance = instantiate(store, many_types_wat(max(use + 1, 65), use))
    assert instance.invoke("f", [9]) == [9] * (use % 3 + 1)
    assert instance.invoke("g", [1]) == [1]
    assert instance.invoke("dead", [5]) == [3]


# ---- reinterpret of a local kept in a register by a loop ------------------------------------

REINTERPRET_PINNED = """(module
  (memory 1)
  (func (export "f64_bits") (param f64 i32) (result i64) (local i64)
    (loop
      local.get 0 i64.reinterpret_f64 local.set 2
      local.get 0 local.get 0 f64.add drop
      local.get 1 i32.const 1 i32.sub local.tee 1 br_if 0)
    local.get 2)
  (func (export "i64_bits") (param i64 i32) (result f64) (local f64)
    (loop
      local.get 0 f64.reinterpret_i64 local.set 2
      local.get 0 local.get 0 i64.add drop
      local.get 1 i32.const 1 i32.sub local.tee 1 br_if 0)
    local.get 2)
  (func (export "f32_bits") (param f32 i32) (result i32) (local i32)
    (loop
      local.get 0 i32.reinterpret_f32 local.set 2
      local.get 0 local.get 0 f32.add drop
      local.get 1 i32.const 1 i32.sub local.tee 1 br_if 0)
    local.get 2)
  (func (export "count_nans") (param i32) (result i32) (local f64 i32)
    (loop
      local.get 0 i32.const 1 i32.and
      if (result f64) f64.const nan else f64.const 1.5 end local.set 1
      local.get 1 i64.reinterpret_f64 i64.const 0x7FFFFFFFFFFFFFFF i64.and
      i64.const 0x7FF0000000000000 i64.gt_u local.get 2 i32.add local.set 2
      local.get 1 local.get 1 f64.mul drop
      local.get 0 i32.const 1 i32.sub local.tee 0 br_if 0)
    local.get 2)
)"""


@pytest.mark.parametrize("export,args,expected", [
    ("f64_bits", [0x400921FB54442D18, 3], 0x400921FB54442D18),
    ("i64_bits", [0x7FF8000000000001, 3], 0x7FF8000000000001),
    ("f32_bits", [0xC0490FDB, 3], 0xC0490FDB),
    ("count_nans", [10], 5)])
def test_reinterpret_of_a_loop_pinned_local(store, export, args, expected):
    assert instantiate(store, REINTERPRET_PINNED).invoke(export, args) == [expected]


# ---- copysign whose sign comes from a loop-pinned local --------------------------------------

COPYSIGN_PINNED = """(module
  (func (export "f64") (param $n i32) (result f64)
    (local $sign f64) (local $acc f64)
    f64.const -2 local.set $sign  f64.const 1 local.set $acc
    (loop $l
      local.get $acc local.get $sign f64.copysign local.set $acc
      local.get $sign local.get $sign f64.mul f64.neg local.set $sign
      local.get $n i32.const 1 i32.sub local.tee $n br_if $l)
    local.get $acc)
  (func (export "f32") (param $n i32) (result f32)
    (local $sign f32) (local $acc f32)
    f32.const -2 local.set $sign  f32.const 1 local.set $acc
    (loop $l
      local.get $acc local.get $sign f32.copysign local.set $acc
      local.get $sign local.get $sign f32.mul f32.neg local.set $sign
      local.get $n i32.const 1 i32.sub local.tee $n br_if $l)
    local.get $acc)
)"""


@pytest.mark.parametrize("export,args,expected", [
    ("f64", [1], 0xBFF0000000000000), ("f64", [2], 0xBFF0000000000000),
    ("f32", [1], 0xBF800000), ("f32", [3], 0xBF800000)])
def test_copysign_with_a_loop_pinned_sign(store, export, args, expected):
    """The sign's bits came from the general-purpose register numbered like the pin's xmm."""
    assert instantiate(store, COPYSIGN_PINNED).invoke(export, args) == [expected]


# ---- registers at if joins after tail calls --------------------------------------------------

def tail_call_joins_wat(kind: str, count: int = 12) -> str:
    calls = {
        "return_call_indirect": "local.get 0 return_call_indirect (type $ii)",
        "return_call_ref": "local.get 0 ref.func $id return_call_ref $ii",
        "return_call_import": "local.get 0 return_call $imported",
    }[kind]
    arms = "\n".join(f"local.get 0 i32.const {k} i32.eq (if (then i32.const {k} {calls}))"
                     for k in range(count))
    return f"""(module
      (type $ii (func (param i32) (result i32)))
      (import "host" "id" (func $imported (type $ii)))
      (table 1 funcref) (elem (i32.const 0) $id) (elem declare func $id)
      (func $id (type $ii) local.get 0 i32.const 100 i32.add)
      (func (export "f") (param i32) (result i32) {arms} i32.const -1))"""


@pytest.mark.parametrize("kind", ["return_call_indirect", "return_call_ref", "return_call_import"])
def test_tail_calls_in_many_if_arms_do_not_leak_registers(store, kind):
    imported = store.host_function(FuncType(("i32",), ("i32",)), lambda x: x + 100, "id")
    module = load_bytes(tail_call_joins_wat(kind).encode(), "test.wat")
    instance = store.instantiate(module, {("host", "id"): imported})
    arm = 0 if kind == "return_call_indirect" else 11  # the table has one element
    assert instance.invoke("f", [arm]) == [arm + 100]
    assert instance.invoke("f", [99]) == [0xFFFFFFFF]


# ---- the symbolizer names the tag of an unhandled switch -------------------------------------

def test_unhandled_switch_names_its_tag(store):
    instance = instantiate(store, """(module
      (type $ft0 (func)) (type $ct0 (cont $ft0))
      (rec (type $ft (func (param (ref null $ct)))) (type $ct (cont $ft)))
      (tag $other (export "other")) (tag $swap (export "swap"))
      (func $body (type $ft) (switch $ct $swap (local.get 0)) (drop))
      (func (export "main")
        (block $h (result (ref $ct0))
          (resume $ct (on $other $h)
            (cont.new $ct (ref.func $body)) (cont.new $ct (ref.func $body)))
          return)
        drop)
      (elem declare func $body))""")
    with pytest.raises(Trap) as caught:
        instance.invoke("main", [])
    trace = caught.value.backtrace
    assert trace.kind == UNHANDLED_SUSPENSION
    assert trace.tag == "swap"
