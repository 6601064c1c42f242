"""What the single pass knows between instructions, and when it must forget it.

After local.set the compiler keeps the value's register as a copy of the local, loops keep
their most-used locals in registers, reads of such a local use the register (compares,
addresses, lea), and a bounds check proven for a local's value is not repeated. Each case
here is a program whose result is wrong, or which fails to trap, if the compiler keeps
such knowledge one instruction too long: across a join (also one reached only from dead
code), a call, an instruction that takes fixed registers, register pressure, or a new
value of the local.
"""

from __future__ import annotations

import math
import struct

import pytest

from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Store, Trap
from conftest import require_wasm_tools_for_module

require_wasm_tools_for_module()

MASK32 = (1 << 32) - 1


@pytest.fixture(scope="module")
def instance():
    return Store().instantiate(load_bytes(CACHED.encode(), "test.wat"), {})


CACHED = """(module
  (memory 1)
  (memory $big 2)
  (func $clobber (param i32) (result i32) (local i32 i32 i32 i32 i32 i32 i32)
    (local.set 1 (i32.mul (local.get 0) (i32.const 3))) (local.set 2 (i32.add (local.get 1) (i32.const 5)))
    (local.set 3 (i32.xor (local.get 2) (local.get 1))) (local.set 4 (i32.sub (local.get 3) (local.get 0)))
    (local.set 5 (i32.or (local.get 4) (local.get 2))) (local.set 6 (i32.and (local.get 5) (local.get 3)))
    (local.set 7 (i32.add (local.get 6) (local.get 1)))
    (i32.add (local.get 7) (local.get 5)))
  ;; a join reached from a br_if and from a br whose `end` comes after dead code
  (func (export "join") (param i32) (result i32) (local i32)
    (local.set 1 (i32.add (local.get 0) (i32.const 1)))
    (block
      (br_if 0 (local.get 0))
      (local.set 1 (i32.add (local.get 0) (i32.const 10)))
      (br 0)
      (local.set 1 (i32.const 99)))
    (i32.add (local.get 1) (i32.const 0)))
  ;; division takes rax and rdx, a variable shift rcx
  (func (export "fixed") (param i32 i32) (result i32) (local i32 i32 i32 i32 i32)
    (local.set 2 (i32.add (local.get 0) (i32.const 1)))
    (local.set 3 (i32.add (local.get 0) (i32.const 2)))
    (local.set 4 (i32.add (local.get 0) (i32.const 3)))
    (local.set 5 (i32.div_u (local.get 0) (local.get 1)))
    (local.set 6 (i32.shl (local.get 0) (local.get 1)))
    (i32.add (i32.add (i32.add (local.get 2) (local.get 3)) (i32.add (local.get 4) (local.get 5)))
             (local.get 6)))
  ;; more cached locals than registers
  (func (export "pressure") (param i32) (result i32)
    (local i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)
    (local.set 1 (i32.add (local.get 0) (i32.const 1))) (local.set 2 (i32.add (local.get 0) (i32.const 2)))
    (local.set 3 (i32.add (local.get 0) (i32.const 3))) (local.set 4 (i32.add (local.get 0) (i32.const 4)))
    (local.set 5 (i32.add (local.get 0) (i32.const 5))) (local.set 6 (i32.add (local.get 0) (i32.const 6)))
    (local.set 7 (i32.add (local.get 0) (i32.const 7))) (local.set 8 (i32.add (local.get 0) (i32.const 8)))
    (local.set 9 (i32.add (local.get 0) (i32.const 9))) (local.set 10 (i32.add (local.get 0) (i32.const 10)))
    (local.set 11 (i32.add (local.get 0) (i32.const 11))) (local.set 12 (i32.add (local.get 0) (i32.const 12)))
    (local.set 13 (i32.add (local.get 0) (i32.const 13))) (local.set 14 (i32.add (local.get 0) (i32.const 14)))
    (i32.add (i32.add (i32.add (i32.add (local.get 1) (local.get 2)) (i32.add (local.get 3) (local.get 4)))
                      (i32.add (i32.add (local.get 5) (local.get 6)) (i32.add (local.get 7) (local.get 8))))
             (i32.add (i32.add (i32.add (local.get 9) (local.get 10)) (i32.add (local.get 11) (local.get 12)))
                      (i32.add (local.get 13) (local.get 14)))))
  ;; a call and the bulk stubs clobber registers; so does a float call
  (func (export "calls") (param i32) (result i32) (local i32 i32 i32 f64)
    (local.set 1 (i32.add (local.get 0) (i32.const 1)))
    (local.set 2 (i32.add (local.get 0) (i32.const 2)))
    (local.set 4 (f64.convert_i32_u (i32.add (local.get 0) (i32.const 3))))
    (local.set 3 (call $clobber (local.get 0)))
    (memory.fill (i32.const 0) (i32.const 7) (i32.const 64))
    (memory.copy (i32.const 64) (i32.const 0) (i32.const 64))
    (i32.add (i32.add (local.get 1) (local.get 2))
             (i32.add (local.get 3) (i32.trunc_f64_u (local.get 4)))))
  ;; the old value of a local stays on the stack while the local changes
  (func (export "old_and_new") (param i32) (result i32) (local i32)
    (local.set 1 (i32.mul (local.get 0) (i32.const 5)))
    (local.get 1)
    (local.set 1 (i32.add (local.get 1) (i32.const 1)))
    (local.get 1)
    (i32.sub))
  ;; a constant or another local replaces a cached value
  (func (export "replaced") (param i32) (result i32) (local i32 i32)
    (local.set 1 (i32.mul (local.get 0) (i32.const 5)))
    (local.set 2 (i32.add (local.get 1) (i32.const 0)))
    (local.set 1 (i32.const 7))
    (local.set 2 (local.get 0))
    (i32.add (i32.add (local.get 1) (i32.const 0)) (i32.mul (local.get 2) (i32.const 1000))))
  ;; a + constant and a - constant in one lea, wrapping as i32
  (func (export "lea") (param i32) (result i32) (local i32)
    (local.set 1 (i32.add (local.get 0) (i32.const 0)))
    (i32.xor (i32.sub (local.get 1) (i32.const 5)) (i32.add (local.get 1) (i32.const 0x7fffffff))))
  ;; a select on the flags of the compare just before it (constants loaded keep them)
  (func (export "select_i32") (param i32 i32) (result i32)
    (select (i32.const 0) (i32.const 1) (i32.lt_u (local.get 0) (local.get 1))))
  (func (export "select_i64") (param i64 i64) (result i64)
    (select (local.get 0) (i64.const -1) (i64.gt_s (local.get 0) (local.get 1))))
  (func (export "select_on_float") (param f64 i32) (result i32)
    (select (local.get 1) (i32.const 0) (f64.ge (local.get 0) (f64.const 2.5))))
  (func (export "select_float") (param i32) (result f64)
    (select (result f64) (f64.const 1.5) (f64.const -2) (i32.eqz (local.get 0))))
  ;; bounds: a larger offset, a new value, another memory, a loop's back edge
  (func (export "offsets") (param i32) (result i32)
    (i32.add (i32.load8_u (local.get 0)) (i32.load offset=4 (local.get 0))))
  (func (export "new_value") (param i32 i32) (result i32)
    (drop (i32.load (local.get 0)))
    (local.set 0 (local.get 1))
    (i32.load (local.get 0)))
  (func (export "two_memories") (param i32) (result i32)
    (drop (i32.load $big (local.get 0)))
    (i32.load (local.get 0)))
  (func (export "loop") (param i32 i32) (result i32) (local i32)
    (loop $l
      (local.set 2 (i32.add (local.get 2) (i32.load (local.get 0))))
      (local.set 0 (i32.add (local.get 0) (local.get 1)))
      (br_if $l (i32.lt_u (local.get 2) (i32.const 1000))))
    (local.get 2))
)"""


def clobber(x: int) -> int:
    l1 = x * 3 & MASK32
    l2 = l1 + 5 & MASK32
    l3 = l2 ^ l1
    l4 = l3 - x & MASK32
    l5 = l4 | l2
    l6 = l5 & l3
    l7 = l6 + l1 & MASK32
    return l7 + l5 & MASK32


@pytest.mark.parametrize("arg,expected", [(5, 6), (0, 10)])
def test_a_join_forgets_what_one_path_cached(instance, arg, expected):
    assert instance.invoke("join", [arg]) == [expected]


def test_division_and_shifts_take_their_registers_from_the_cache(instance):
    x, y = 1000, 3
    assert instance.invoke("fixed", [x, y]) == [(3 * x + 6 + x // y + (x << y)) & MASK32]


def test_more_cached_locals_than_registers(instance):
    assert instance.invoke("pressure", [100]) == [14 * 100 + 105]


def test_calls_and_bulk_stubs_drop_cached_locals(instance):
    x = 40
    assert instance.invoke("calls", [x]) == [(x + 1 + x + 2 + clobber(x) + x + 3) & MASK32]


def test_old_value_on_the_stack_survives_a_new_one(instance):
    assert instance.invoke("old_and_new", [7]) == [MASK32]  # 35 - 36


def test_a_constant_or_another_local_replaces_a_cached_value(instance):
    assert instance.invoke("replaced", [3]) == [7 + 3000]


def test_lea_wraps_like_i32_arithmetic(instance):
    x = 3
    assert instance.invoke("lea", [x]) == [((x - 5) & MASK32) ^ ((x + 0x7FFFFFFF) & MASK32)]


@pytest.mark.parametrize("export,args,expected", [
    ("select_i32", [1, 2], 0), ("select_i32", [2, 1], 1), ("select_i32", [2, 2], 1),
    ("select_i64", [5, 3], 5), ("select_i64", [-5 & (2**64 - 1), 3], 2**64 - 1),
    ("select_on_float", [0x4004000000000000, 7], 7), ("select_on_float", [0, 7], 0),
    ("select_on_float", [0x7FF8000000000000, 7], 0),  # NaN: not >=
    ("select_float", [0], 0x3FF8000000000000), ("select_float", [3], 0xC000000000000000)])
def test_select_on_the_flags_of_a_compare(instance, export, args, expected):
    assert instance.invoke(export, args) == [expected]


@pytest.mark.parametrize("export,args", [
    ("offsets", [65535 - 4]),  # the byte is in bounds, the word 4 bytes on is not
    ("new_value", [0, 65533]), ("two_memories", [65535]), ("loop", [65000, 100])])
def test_bounds_proven_for_one_value_do_not_cover_another(instance, export, args):
    with pytest.raises(Trap, match="out of bounds memory access"):
        instance.invoke(export, args)


def test_bounds_left_out_where_proven(instance):
    assert instance.invoke("offsets", [65535 - 8]) == [0]
    assert instance.invoke("new_value", [0, 65532]) == [0]


# local.tee keeps the value's register as the local's cached copy and pushes a read of the
# local: the copy must not be changed in place, nor outlive a new value, a call, a join or
# register pressure.
TEE = """(module
  (memory 1)
  (func $seven (result i32) (i32.const 7))
  (func (export "in_place") (param i32) (result i32) (local i32)
    (i32.add (i32.mul (local.tee 1 (i32.add (local.get 0) (i32.const 1))) (i32.const 3))
             (local.get 1)))
  (func (export "in_place_f64") (param f64) (result f64) (local f64)
    (f64.add (f64.neg (local.tee 1 (f64.mul (local.get 0) (f64.const 2)))) (f64.mul (local.get 1) (f64.const 4))))
  (func (export "new_value") (param i32) (result i32) (local i32)
    (local.tee 1 (i32.mul (local.get 0) (i32.const 5)))
    (local.set 1 (i32.const 2))
    (local.get 1)
    (i32.sub))
  (func (export "tee_tee") (param i32) (result i32) (local i32 i32)
    (i32.sub (local.tee 2 (local.tee 1 (i32.add (local.get 0) (i32.const 9))))
             (i32.mul (local.get 1) (local.get 2))))
  (func (export "call") (param i32) (result i32) (local i32)
    (drop (local.tee 1 (i32.add (local.get 0) (i32.const 3))))
    (i32.add (call $seven) (local.get 1)))
  (func (export "join") (param i32) (result i32) (local i32)
    (block
      (drop (local.tee 1 (i32.add (local.get 0) (i32.const 1))))
      (br_if 0 (local.get 0))
      (drop (local.tee 1 (i32.const 40))))
    (i32.add (local.get 1) (i32.const 0)))
  (func (export "pressure") (param i32) (result i32) (local i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)
    (i32.add (local.tee 1 (i32.add (local.get 0) (i32.const 1)))
    (i32.add (local.tee 2 (i32.add (local.get 0) (i32.const 2)))
    (i32.add (local.tee 3 (i32.add (local.get 0) (i32.const 3)))
    (i32.add (local.tee 4 (i32.add (local.get 0) (i32.const 4)))
    (i32.add (local.tee 5 (i32.add (local.get 0) (i32.const 5)))
    (i32.add (local.tee 6 (i32.add (local.get 0) (i32.const 6)))
    (i32.add (local.tee 7 (i32.add (local.get 0) (i32.const 7)))
    (i32.add (local.tee 8 (i32.add (local.get 0) (i32.const 8)))
    (i32.add (local.tee 9 (i32.add (local.get 0) (i32.const 9)))
    (i32.add (local.tee 10 (i32.add (local.get 0) (i32.const 10)))
    (i32.add (local.tee 11 (i32.add (local.get 0) (i32.const 11)))
    (i32.add (local.tee 12 (i32.add (local.get 0) (i32.const 12)))
             (i32.add (i32.add (i32.add (local.get 1) (local.get 2)) (i32.add (local.get 3) (local.get 4)))
                      (i32.add (i32.add (local.get 5) (local.get 6)) (local.get 12))))))))))))))))
  ;; the bounds proven for the tee'd address do not cover the local's next value
  (func (export "bounds") (param i32 i32) (result i32) (local i32)
    (drop (i32.load (local.tee 2 (i32.add (local.get 0) (i32.const 0)))))
    (local.set 2 (local.get 1))
    (i32.load (local.get 2)))
)"""


@pytest.fixture(scope="module")
def tee():
    return Store().instantiate(load_bytes(TEE.encode(), "tee.wat"), {})


def f64_bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


@pytest.mark.parametrize("export,args,expected", [
    ("in_place", [4], 4 * 5), ("in_place_f64", [f64_bits(1.5)], f64_bits(-3.0 + 12.0)),
    ("new_value", [3], 13), ("tee_tee", [1], (10 - 100) & MASK32), ("call", [5], 15),
    ("join", [1], 2), ("join", [0], 40), ("pressure", [100], 12 * 100 + 78 + 7 * 100 + 33)])
def test_a_teed_register_is_the_locals_copy_only_while_it_holds(tee, export, args, expected):
    assert tee.invoke(export, args) == [expected]


def test_bounds_proven_for_a_teed_address_do_not_cover_a_new_one(tee):
    assert tee.invoke("bounds", [0, 65532]) == [0]
    with pytest.raises(Trap, match="out of bounds memory access"):
        tee.invoke("bounds", [0, 65533])


# In a loop that keeps its locals in registers (pins), local.set from another local or a
# constant goes through the pin, and local.tee pushes a read of the local (the pin), whose
# proven bounds cover the next access through the same local and nothing else.
PINNED_TEE = """(module
  (memory 1)
  (func (export "sum") (param i32 i32) (result i32) (local i32 i32 i32 i32)
    (local.set 5 (i32.const 3))
    (loop $l
      (local.set 3 (local.get 1))
      (local.set 2 (i32.add (local.get 2) (i32.mul (local.tee 4 (i32.add (local.get 4) (local.get 3)))
                                                   (local.get 5))))
      (local.set 4 (i32.add (local.get 4) (local.get 4)))
      (local.set 5 (i32.const 1))
      (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
    (i32.add (local.get 2) (i32.add (local.get 4) (local.get 5))))
  ;; a[i] += 1 for i in [start, start + 4n), through a teed address
  (func (export "bump") (param i32 i32) (local i32)
    (loop $l
      (i32.store (local.tee 2 (i32.add (local.get 0) (i32.const 4)))
                 (i32.add (i32.load (local.get 2)) (i32.const 1)))
      (local.set 0 (local.get 2))
      (br_if $l (i32.lt_u (local.get 2) (local.get 1)))))
  (func (export "at") (param i32) (result i32) (i32.load (local.get 0)))
)"""


@pytest.fixture(scope="module")
def pinned_tee():
    return Store().instantiate(load_bytes(PINNED_TEE.encode(), "pinned_tee.wat"), {})


def test_sets_and_tees_of_pinned_locals(pinned_tee):
    # per iteration: l3 = y; l4 += y; l2 += l4 * l5 (l5 = 3, then 1); l4 *= 2
    count, y = 4, 5
    l2, l4, l5 = 0, 0, 3
    for _ in range(count):
        l4 += y
        l2 += l4 * l5
        l4 *= 2
        l5 = 1
    assert pinned_tee.invoke("sum", [count, y]) == [(l2 + l4 + l5) & MASK32]


def test_a_teed_address_in_a_loop_is_checked_for_each_value(pinned_tee):
    pinned_tee.invoke("bump", [0, 16])
    assert [pinned_tee.invoke("at", [4 * k])[0] for k in range(6)] == [0, 1, 1, 1, 1, 0]
    with pytest.raises(Trap, match="out of bounds memory access"):
        pinned_tee.invoke("bump", [65520, 65536])
    assert pinned_tee.invoke("at", [65532]) == [1]  # the stores before the trap happened


# A loop keeps up to nine float locals in xmm6-14, leaving six registers for temporaries:
# a deep float expression spills, a call and the bulk stubs run in the loop, and every
# pinned local must still be right after it.
FLOAT_PINS = """(module
  (memory 1)
  ;; its own loop pins nine floats of its own: it clobbers every pin register
  (func $half (param f64) (result f64) (local f64 f64 f64 f64 f64 f64 f64 f64 f64 i32)
    (local.set 10 (i32.const 2))
    (loop $k
      (local.set 1 (f64.add (local.get 1) (f64.const -1))) (local.set 2 (f64.add (local.get 2) (f64.const -2)))
      (local.set 3 (f64.add (local.get 3) (f64.const -3))) (local.set 4 (f64.add (local.get 4) (f64.const -4)))
      (local.set 5 (f64.add (local.get 5) (f64.const -5))) (local.set 6 (f64.add (local.get 6) (f64.const -6)))
      (local.set 7 (f64.add (local.get 7) (f64.const -7))) (local.set 8 (f64.add (local.get 8) (f64.const -8)))
      (local.set 9 (f64.add (local.get 9) (f64.const -9)))
      (br_if $k (local.tee 10 (i32.sub (local.get 10) (i32.const 1)))))
    (f64.mul (local.get 0) (f64.const 0.5)))
  (func (export "run") (param i32) (result f64)
    (local f64 f64 f64 f64 f64 f64 f64 f64 f64 f64)
    (local.set 1 (f64.const 1)) (local.set 2 (f64.const 2)) (local.set 3 (f64.const 3))
    (local.set 4 (f64.const 4)) (local.set 5 (f64.const 5)) (local.set 6 (f64.const 6))
    (local.set 7 (f64.const 7)) (local.set 8 (f64.const 8)) (local.set 9 (f64.const 9))
    (loop $l
      (local.set 10 (f64.add (f64.add (f64.add (f64.mul (local.get 1) (local.get 2))
                                               (f64.mul (local.get 3) (local.get 4)))
                                      (f64.add (f64.mul (local.get 5) (local.get 6))
                                               (f64.mul (local.get 7) (f64.sub (local.get 8) (local.get 9)))))
                             (f64.add (f64.add (f64.sqrt (f64.abs (local.get 1))) (f64.neg (local.get 2)))
                                      (f64.add (f64.min (local.get 3) (local.get 4))
                                               (f64.max (local.get 5) (f64.abs (local.get 6)))))))
      (local.set 1 (f64.add (local.get 1) (call $half (local.get 10))))
      (memory.fill (i32.const 0) (i32.const 1) (i32.const 100))
      (memory.copy (i32.const 200) (i32.const 0) (i32.const 100))
      (local.set 2 (f64.add (local.get 2) (local.get 1))) (local.set 3 (f64.sub (local.get 3) (local.get 2)))
      (local.set 4 (f64.mul (local.get 4) (f64.const 1.5))) (local.set 5 (f64.add (local.get 5) (local.get 9)))
      (local.set 6 (f64.neg (local.get 6))) (local.set 7 (f64.sub (local.get 3) (local.get 7)))
      (local.set 8 (f64.mul (local.get 8) (local.get 8))) (local.set 9 (f64.add (local.get 9) (f64.const 0.25)))
      (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
    (f64.add (f64.add (f64.add (local.get 1) (local.get 2)) (f64.add (local.get 3) (local.get 4)))
             (f64.add (f64.add (local.get 5) (local.get 6))
                      (f64.add (f64.add (local.get 7) (local.get 8)) (f64.add (local.get 9) (local.get 10))))))
)"""


def test_nine_float_pins_survive_spills_calls_and_bulk_stubs():
    instance = Store().instantiate(load_bytes(FLOAT_PINS.encode(), "float_pins.wat"), {})
    v = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 0.0]
    for _ in range(3):
        v[10] = ((v[1] * v[2] + v[3] * v[4]) + (v[5] * v[6] + v[7] * (v[8] - v[9]))) + (
            (math.sqrt(abs(v[1])) + -v[2]) + (min(v[3], v[4]) + max(v[5], abs(v[6]))))
        v[1] += v[10] * 0.5
        v[2] += v[1]
        v[3] -= v[2]
        v[4] *= 1.5
        v[5] += v[9]
        v[6] = -v[6]
        v[7] = v[3] - v[7]
        v[8] *= v[8]
        v[9] += 0.25
    expected = ((v[1] + v[2]) + (v[3] + v[4])) + ((v[5] + v[6]) + ((v[7] + v[8]) + (v[9] + v[10])))
    assert instance.invoke("run", [3]) == [f64_bits(expected)]


# A loop keeps up to six integer locals in r12, r13, rbx, r10, r9 and r8. The switching
# instructions use r8-r10 and rbx as temporaries (cont.new and cont.bind then reload the
# pins they held), division and shifts take rax, rdx and rcx, a call clobbers every pin,
# and a result computed straight into a pin must not be one that an operand, or an older
# read of the local still on the stack, reads from the pin.
INT_PINS = """(module
  (memory 1)
  (type $fn (func (param i32) (result i32))) (type $cn (cont $fn))
  (type $f0 (func (result i32))) (type $c0 (cont $f0))
  (func $inc (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (elem declare func $inc)
  ;; its own loop pins six integers of its own: it clobbers every pin register
  (func $clobber (param i32) (result i32) (local i32 i32 i32 i32 i32 i32)
    (loop $k
      (local.set 1 (i32.add (local.get 1) (i32.const 1))) (local.set 2 (i32.add (local.get 2) (i32.const 2)))
      (local.set 3 (i32.add (local.get 3) (i32.const 3))) (local.set 4 (i32.add (local.get 4) (i32.const 4)))
      (local.set 5 (i32.add (local.get 5) (i32.const 5))) (local.set 6 (i32.add (local.get 6) (i32.const 6)))
      (br_if $k (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
    (i32.add (local.get 1) (local.get 6)))
  (func (export "run") (param i32) (result i32)
    (local i32 i32 i32 i32 i32 i32 (ref null $c0) (ref null $cn))
    (local.set 1 (i32.const 1)) (local.set 2 (i32.const 2)) (local.set 3 (i32.const 3))
    (local.set 4 (i32.const 4)) (local.set 5 (i32.const 5)) (local.set 6 (i32.const 6))
    (loop $l
      (local.set 1 (i32.add (local.get 1) (i32.div_u (local.get 6) (i32.const 3))))
      (local.set 2 (i32.xor (local.get 2) (i32.shl (local.get 1) (local.get 3))))
      (local.set 3 (i32.sub (local.get 4) (local.get 3)))
      local.get 5 local.get 5 i32.const 7 i32.add local.set 5 local.get 5 i32.mul local.set 6
      (local.set 4 (i32.mul (local.tee 1 (i32.add (local.get 1) (local.get 3))) (local.get 4)))
      (local.set 8 (cont.new $cn (ref.func $inc)))
      (local.set 5 (i32.add (i32.add (i32.add (local.get 1) (local.get 2)) (i32.add (local.get 3) (local.get 4)))
                            (i32.add (local.get 5) (local.get 6))))
      (local.set 7 (cont.bind $cn $c0 (local.get 2) (local.get 8)))
      (local.set 6 (i32.add (i32.add (i32.add (local.get 1) (local.get 2)) (i32.add (local.get 3) (local.get 4)))
                            (i32.add (local.get 5) (local.get 6))))
      (local.set 2 (i32.add (local.get 2) (resume $c0 (local.get 7))))
      (local.set 6 (i32.add (local.get 6) (call $clobber (i32.const 3))))
      (memory.fill (i32.const 0) (local.get 1) (i32.const 100))
      (memory.copy (i32.const 200) (i32.const 0) (i32.const 100))
      (local.set 3 (i32.add (local.get 3) (i32.load8_u (i32.const 250))))
      (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
    (i32.add (i32.add (i32.add (local.get 1) (local.get 2)) (i32.add (local.get 3) (local.get 4)))
             (i32.add (local.get 5) (local.get 6))))
  ;; pointer chasing: a load from the pin into the pin, and one with an older read of it left
  (data (i32.const 1000) "\\f0\\03\\00\\00\\e8\\03\\00\\00\\ec\\03\\00\\00")
  (func (export "chase") (param i32 i32) (result i32) (local i32)
    (loop $l
      (local.set 0 (i32.load (local.get 0)))
      local.get 2 local.get 0 (local.set 0 (i32.load (local.get 0)))
      i32.const 10 i32.mul i32.add local.get 0 i32.add local.set 2
      (br_if $l (local.tee 1 (i32.sub (local.get 1) (i32.const 1)))))
    (local.get 2))
)"""


@pytest.mark.parametrize("switching", ["native", "libcall"])
def test_six_integer_pins_survive_switching_temporaries_calls_and_fixed_registers(switching):
    instance = Store(switching=switching).instantiate(load_bytes(INT_PINS.encode(), "int_pins.wat"), {})
    count = 5
    l1, l2, l3, l4, l5, l6 = 1, 2, 3, 4, 5, 6
    for _ in range(count):
        l1 = (l1 + l6 // 3) & MASK32
        l2 ^= (l1 << (l3 & 31)) & MASK32
        l3 = (l4 - l3) & MASK32
        old5, l5 = l5, (l5 + 7) & MASK32
        l6 = (old5 * l5) & MASK32
        l1 = (l1 + l3) & MASK32
        l4 = (l1 * l4) & MASK32
        l5 = (l1 + l2 + l3 + l4 + l5 + l6) & MASK32  # after cont.new
        l6 = (l1 + l2 + l3 + l4 + l5 + l6) & MASK32  # after cont.bind
        l2 = (l2 + l2 + 1) & MASK32  # resume of $inc bound to l2
        l6 = (l6 + 3 * 1 + 3 * 6) & MASK32  # $clobber(3)
        l3 = (l3 + (l1 & 0xFF)) & MASK32  # the filled, then copied byte
    assert instance.invoke("run", [count]) == [(l1 + l2 + l3 + l4 + l5 + l6) & MASK32]


def test_loads_into_a_pinned_local_read_the_old_value_first():
    instance = Store().instantiate(load_bytes(INT_PINS.encode(), "int_pins.wat"), {})
    memory, p, total = {1000: 1008, 1004: 1000, 1008: 1004}, 1000, 0
    for _ in range(7):
        p = memory[p]
        old, p = p, memory[p]
        total += 10 * old + p
    assert instance.invoke("chase", [1000, 7]) == [total]


# When an enclosing loop holds every pin register, an inner loop borrows the pins of
# locals it uses less, for locals of its own. Each way out of such a loop must put the
# enclosing loop's pins back: br_if (out of line), br_table, the loop's end, and a branch
# from a catch clause or a resume handler (after the landing reloaded the loop's pins). The
# outer loop pins m, p (its deepest loop $c uses them) and a-d; $a0 borrows for e and f,
# the loops after it for g, h, k, and the outer loop reads what they lent after each.
LENT_PINS = """(module
  (type $f0 (func (result i32))) (type $c0 (cont $f0))
  (tag $y (param i32))
  (tag $e (param i32))
  (func $gen (result i32) (suspend $y (i32.const 7)) (i32.const 1))
  (func $boom (param i32) (throw $e (local.get 0)))
  (elem declare func $gen)
  (func (export "nest") (param i32) (result i32)
    (local $a i32) (local $b i32) (local $c i32) (local $d i32) (local $e i32) (local $f i32)
    (local $g i32) (local $h i32) (local $k i32) (local $r i32) (local $m i32) (local $p i32)
    (local.set $a (i32.const 1)) (local.set $b (i32.const 2)) (local.set $c (i32.const 3))
    (local.set $d (i32.const 4)) (local.set $e (i32.const 5)) (local.set $f (i32.const 6))
    (block $out
      (loop $outer
        (loop $a0
          (loop $a
            (local.set $a (i32.add (local.get $a) (local.get $b)))
            (local.set $b (i32.xor (local.get $b) (local.get $c)))
            (local.set $c (i32.add (local.get $c) (i32.const 7)))
            (local.set $d (i32.add (local.get $d) (local.get $a)))
            (local.set $e (i32.sub (local.get $e) (local.get $d)))
            (br_if $a (i32.and (local.tee $f (i32.add (local.get $f) (i32.const 1))) (i32.const 3)))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (local.set $k (i32.const 0))
        (block $done
          (loop $b
            (local.set $g (i32.add (local.get $g) (local.get $k)))
            (local.set $h (i32.add (i32.mul (local.get $h) (i32.const 3)) (local.get $g)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br_if $done (i32.gt_u (local.get $k) (local.get 0)))
            (br_table $b $b $done $b (i32.and (local.get $h) (i32.const 3)))))
        (local.set $a (i32.add (local.get $a) (local.get $h)))
        (local.set $b (i32.xor (local.get $b) (local.get $g)))
        (local.set $k (i32.const 0))
        (local.set $r (i32.add (local.get $r)
          (block $caught (result i32)
            (loop $b2
              (local.set $g (i32.add (local.get $g) (local.get $h)))
              (local.set $h (i32.add (local.get $h) (i32.const 1)))
              (local.set $k (i32.add (local.get $k) (i32.const 1)))
              (try_table (catch $e $caught)
                (if (i32.eq (local.get $k) (i32.const 4)) (then (call $boom (local.get $g)))))
              (br $b2))
            (i32.const -1))))
        (local.set $c (i32.add (local.get $c) (local.get $g)))
        (local.set $d (i32.add (local.get $d) (local.get $r)))
        (local.set $k (i32.const 0))
        (block $resumed
          (block $suspended (result i32 (ref $c0))
            (loop $b3
              (local.set $g (i32.add (local.get $g) (i32.const 2)))
              (local.set $h (i32.xor (local.get $h) (local.get $g)))
              (local.set $k (i32.add (local.get $k) (i32.const 1)))
              (local.set $m (i32.const 0))
              (loop $c
                (local.set $m (i32.add (local.get $m) (local.get $k)))
                (local.set $p (i32.add (local.get $p) (local.get $m)))
                (br_if $out (i32.gt_u (local.get $p) (i32.const 200)))
                (br_if $c (i32.lt_u (local.get $m) (i32.const 10))))
              (if (i32.eq (local.get $k) (i32.const 3))
                (then (drop (resume $c0 (on $y $suspended) (cont.new $c0 (ref.func $gen))))))
              (br $b3))
            (unreachable))
          (drop)
          (local.set $r (i32.add (local.get $r)))
          (br $resumed))
        (local.set $e (i32.add (local.get $e) (local.get $h)))
        (local.set $f (i32.xor (local.get $f) (local.get $g)))
        (br_if $outer (local.tee 0 (i32.sub (local.get 0) (i32.const 1))))))
    (i32.add (i32.add (i32.add (i32.add (local.get $a) (local.get $b)) (i32.add (local.get $c) (local.get $d)))
                      (i32.add (i32.add (local.get $e) (local.get $f)) (i32.add (local.get $g) (local.get $h))))
             (i32.add (i32.add (local.get $k) (local.get $r)) (i32.add (local.get $m) (local.get $p)))))
)"""


def lent_pins_expected(n: int) -> int:
    a, b, c, d, e, f = 1, 2, 3, 4, 5, 6
    g = h = k = r = m = p = 0
    while True:
        while True:
            a = (a + b) & MASK32
            b ^= c
            c = (c + 7) & MASK32
            d = (d + a) & MASK32
            e = (e - d) & MASK32
            f = (f + 1) & MASK32
            if not f & 3:
                break
        p = (p + 1) & MASK32
        k = 0
        while True:
            g = (g + k) & MASK32
            h = (h * 3 + g) & MASK32
            k += 1
            if k > n or h & 3 == 2:
                break
        a = (a + h) & MASK32
        b ^= g
        k = 0
        while True:
            g = (g + h) & MASK32
            h = (h + 1) & MASK32
            k += 1
            if k == 4:
                r = (r + g) & MASK32  # the payload of the exception $boom throws
                break
        c = (c + g) & MASK32
        d = (d + r) & MASK32
        k = 0
        while True:
            g = (g + 2) & MASK32
            h ^= g
            k += 1
            m = 0
            while True:
                m += k
                p += m
                if p > 200:
                    return sum((a, b, c, d, e, f, g, h, k, r, m, p)) & MASK32
                if m >= 10:
                    break
            if k == 3:
                r = (r + 7) & MASK32  # the value $gen suspends with
                break
        e = (e + h) & MASK32
        f ^= g
        n = (n - 1) & MASK32
        if not n:
            return sum((a, b, c, d, e, f, g, h, k, r, m, p)) & MASK32


@pytest.mark.parametrize("switching", ["native", "libcall"])
@pytest.mark.parametrize("n", [1, 3, 5])
def test_loops_that_borrow_pins_give_them_back_on_every_way_out(switching, n):
    instance = Store(switching=switching).instantiate(load_bytes(LENT_PINS.encode(), "lent_pins.wat"), {})
    assert instance.invoke("nest", [n]) == [lent_pins_expected(n)]


# A loop's written pins live only in their registers: inside the loop nothing stores them
# to their frame slots, except right before what reads the slots (a call, a trap's code).
# The compiler says where each such local lives (pin_ranges), which the debug info uses.
SLOTS_WRITTEN_BACK = """(module
  (memory 1)
  (func $peek (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "marks") (param $n i32) (result i32) (local $j i32) (local $sum i32)
    (loop $mark
      (i32.store8 (local.get $j) (i32.const 1))
      (local.set $sum (i32.add (local.get $sum) (local.get $j)))
      (local.set $j (i32.add (local.get $j) (i32.const 3)))
      (br_if $mark (i32.lt_u (local.get $j) (local.get $n))))
    (loop $again
      (local.set $sum (i32.add (local.get $sum) (call $peek (local.get $j))))
      (local.set $j (i32.sub (local.get $j) (i32.const 1)))
      (br_if $again (i32.gt_s (local.get $j) (i32.const 0))))
    (local.get $sum))
)"""


def test_written_pins_reach_their_slots_only_where_slots_are_read():
    from capstone import CS_ARCH_X86, CS_MODE_64, Cs
    module = load_bytes(SLOTS_WRITTEN_BACK.encode(), "slots.wat")
    store = Store()
    instance = store.instantiate(module, {})
    n = 100
    marked = list(range(0, n, 3))
    expected = sum(marked) + sum(1 for j in range(marked[-1] + 3, 0, -1) if j in marked)
    assert instance.invoke("marks", [n]) == [expected]
    compiled = store.compiled(module, store.canonical_type_ids(module), instance.vm_layout)[0]
    function = next(f for f in compiled.functions if f.index == 1)
    code = compiled.code
    body = list(Cs(CS_ARCH_X86, CS_MODE_64).disasm(code[function.start:function.end], function.start))
    slots = {"qword ptr [rbp - 0x10]": 1, "qword ptr [rbp - 0x18]": 2}  # $j, $sum

    def stores_to_slots(lo: int, hi: int) -> list:
        return [i for i in body if lo <= i.address < hi and i.mnemonic == "mov"
                and i.op_str.split(",")[0] in slots]

    loops = [(int(i.op_str, 16), i.address) for i in body
             if i.mnemonic.startswith("j") and i.op_str.startswith("0x") and int(i.op_str, 16) < i.address]
    assert len(loops) == 2
    (first, first_end), (second, second_end) = loops
    assert stores_to_slots(first, first_end) == []  # the marking loop: registers only
    call = next(i for i in body if i.mnemonic == "call" and second <= i.address < second_end)
    written_back = stores_to_slots(second, second_end)
    assert {slots[i.op_str.split(",")[0]] for i in written_back} == {1, 2}
    assert written_back[-1].address + written_back[-1].size == call.address  # right before it
    ret = next(i for i in body if i.mnemonic == "ret")
    trap_stores = stores_to_slots(ret.address, function.end)  # out-of-line trap code
    assert {slots[i.op_str.split(",")[0]] for i in trap_stores} == {1, 2}
    for local in (1, 2):
        ranges = [(lo, hi) for lo, hi, index, _ in function.pin_ranges if index == local]
        assert any(lo <= first and first_end < hi for lo, hi in ranges)
        return_address = call.address + call.size
        assert not any(lo <= return_address - 1 < hi for lo, hi in ranges)
