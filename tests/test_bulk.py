"""Bulk memory and table instructions in native code (compiler/bulkstubs.py, compiler/memory.py):
every length class of the copy and fill stubs, overlap in both directions, bounds checked
before any byte is written, several memories, 64-bit memories and tables with lengths near
2^64, memory.grow of a memory that several instances share, and table.grow past the room
its elements have. The conformance suite covers the rest (it has no multi-memory and no
64-bit memory scripts).
"""

from __future__ import annotations

import pytest

from stackstitch.engine.compiler.bulkstubs import REP_MOVS_MIN
from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Store, Trap
from conftest import require_wasm_tools_for_module

require_wasm_tools_for_module()

PAGE = 65536
MASK32 = (1 << 32) - 1
MASK64 = (1 << 64) - 1
# Every length class of the stubs: 0, 1, 2-3, 4-7, 8-16, 17-32, 16-byte loops, rep movs.
LENGTHS = [0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 64, 65, 100,
           REP_MOVS_MIN - 1, REP_MOVS_MIN, REP_MOVS_MIN + 1, 5000]
# destination - source: overlapping both ways (closer than a 16-byte block too), or apart.
DISTANCES = [-4000, -17, -16, -15, -1, 0, 1, 15, 16, 17, 4000]


def instantiate(store: Store, wat: str, imports: dict | None = None):
    return store.instantiate(load_bytes(wat.encode(), "test.wat"), imports or {})


def pattern(n: int) -> bytes:
    return bytes((i * 7 + 3) % 251 for i in range(n))


BULK = """(module
  (memory (export "mem") 2 4)
  (func (export "copy") (param i32 i32 i32) local.get 0 local.get 1 local.get 2 memory.copy)
  (func (export "fill") (param i32 i32 i32) local.get 0 local.get 1 local.get 2 memory.fill)
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
  (func (export "size") (result i32) memory.size)
)"""


@pytest.fixture(scope="module")
def bulk():
    return instantiate(Store(), BULK)


def test_copy_is_memmove_for_every_length_and_overlap(bulk):
    memory = bulk.exports["mem"]
    base = 20000
    for n in LENGTHS:
        for distance in DISTANCES:
            image = bytearray(pattern(20000))
            memory.write(base - 6000, bytes(image))
            src, dst = base, base + distance
            bulk.invoke("copy", [dst, src, n])
            s, d = src - (base - 6000), dst - (base - 6000)
            image[d:d + n] = image[s:s + n]
            assert memory.read(base - 6000, 20000) == bytes(image), (n, distance)


def test_fill_writes_exactly_the_range_with_the_low_byte(bulk):
    memory = bulk.exports["mem"]
    for n in LENGTHS:
        for value in (0, 0xA5, 0x1234FF):
            memory.write(1000, b"\x11" * 6000)
            bulk.invoke("fill", [1003, value, n])
            expected = b"\x11" * 3 + bytes([value & 0xFF]) * n + b"\x11" * (6000 - 3 - n)
            assert memory.read(1000, 6000) == expected, (n, value)


@pytest.mark.parametrize("export,args", [
    ("copy", [2 * PAGE, 0, 0]), ("copy", [0, 2 * PAGE, 0]), ("fill", [2 * PAGE, 7, 0]),
    ("copy", [2 * PAGE - 5, 0, 5]), ("copy", [0, 2 * PAGE - 5, 5]), ("fill", [2 * PAGE - 5, 7, 5])])
def test_ranges_ending_at_the_end_of_memory_are_in_bounds(bulk, export, args):
    bulk.invoke(export, args)


@pytest.mark.parametrize("export,args", [
    ("copy", [2 * PAGE + 1, 0, 0]), ("copy", [0, 2 * PAGE + 1, 0]), ("fill", [2 * PAGE + 1, 7, 0]),
    ("copy", [2 * PAGE - 5, 0, 6]), ("copy", [0, 2 * PAGE - 5, 6]), ("fill", [2 * PAGE - 5, 7, 6]),
    ("copy", [MASK32, 0, 1]), ("copy", [1, 0, MASK32]), ("fill", [1, 7, MASK32])])
def test_one_byte_out_of_bounds_traps_before_writing(bulk, export, args):
    memory = bulk.exports["mem"]
    memory.write(0, pattern(64))
    memory.write(2 * PAGE - 64, pattern(64))
    with pytest.raises(Trap) as trapped:
        bulk.invoke(export, args)
    assert trapped.value.message == "out of bounds memory access"
    assert trapped.value.detail is None  # as Wasmtime: no faulting address for bulk instructions
    assert memory.read(0, 64) == pattern(64) and memory.read(2 * PAGE - 64, 64) == pattern(64)


MULTI = """(module
  (memory $a (export "a") 2)
  (memory $b (export "b") 1 2)
  (data $d "0123456789")
  (func (export "a_to_b") (param i32 i32 i32) local.get 0 local.get 1 local.get 2 memory.copy $b $a)
  (func (export "b_to_a") (param i32 i32 i32) local.get 0 local.get 1 local.get 2 memory.copy $a $b)
  (func (export "fill_b") (param i32 i32 i32) local.get 0 local.get 1 local.get 2 memory.fill $b)
  (func (export "init_b") (param i32 i32 i32) local.get 0 local.get 1 local.get 2 memory.init $b $d)
  (func (export "grow_b") (param i32) (result i32) local.get 0 memory.grow $b)
  (func (export "size_a") (result i32) memory.size $a)
  (func (export "size_b") (result i32) memory.size $b)
)"""


def test_several_memories_each_checked_against_its_own_size():
    instance = instantiate(Store(), MULTI)
    a, b = instance.exports["a"], instance.exports["b"]
    a.write(PAGE + 100, b"from a")
    instance.invoke("a_to_b", [10, PAGE + 100, 6])
    assert b.read(10, 6) == b"from a"
    b.write(PAGE - 3, b"xyz")
    instance.invoke("b_to_a", [2 * PAGE - 3, PAGE - 3, 3])
    assert a.read(2 * PAGE - 3, 3) == b"xyz"
    instance.invoke("fill_b", [PAGE - 4, 0x2A, 4])
    assert b.read(PAGE - 4, 4) == b"****"
    instance.invoke("init_b", [PAGE - 10, 0, 10])
    assert b.read(PAGE - 10, 10) == b"0123456789"
    for export, args in [("a_to_b", [10, PAGE + 100, PAGE]),  # fits a, not b
                         ("b_to_a", [0, PAGE - 3, 4]), ("fill_b", [PAGE - 3, 0, 4]),
                         ("init_b", [PAGE - 9, 0, 10]), ("init_b", [0, 1, 10])]:
        with pytest.raises(Trap, match="out of bounds memory access"):
            instance.invoke(export, args)
    assert instance.invoke("grow_b", [1]) == [1]
    assert instance.invoke("grow_b", [1]) == [MASK32]
    assert (instance.invoke("size_a", []), instance.invoke("size_b", [])) == ([2], [2])
    instance.invoke("a_to_b", [2 * PAGE - 6, PAGE + 100, 6])  # b's new page is usable
    assert b.read(2 * PAGE - 6, 6) == b"from a"


MEMORY64 = """(module
  (memory (export "mem") i64 1 3)
  (func (export "copy") (param i64 i64 i64) local.get 0 local.get 1 local.get 2 memory.copy)
  (func (export "fill") (param i64 i32 i64) local.get 0 local.get 1 local.get 2 memory.fill)
  (func (export "grow") (param i64) (result i64) local.get 0 memory.grow)
)"""


@pytest.mark.parametrize("export,args", [
    ("fill", [1, 7, MASK64]), ("fill", [MASK64, 7, 1]), ("fill", [MASK64, 7, 0]),
    ("copy", [1, 0, MASK64]), ("copy", [0, 1, MASK64]), ("copy", [MASK64, 0, 2]),
    ("copy", [0, MASK64 - 1, 2]), ("fill", [PAGE, 7, 1 << 63])])
def test_memory64_lengths_that_wrap_past_2_to_the_64_trap(export, args):
    instance = instantiate(Store(), MEMORY64)
    with pytest.raises(Trap, match="out of bounds memory access"):
        instance.invoke(export, args)


def test_memory64_copy_fill_and_grow():
    instance = instantiate(Store(), MEMORY64)
    memory = instance.exports["mem"]
    instance.invoke("fill", [PAGE - 40, 0x41, 40])
    instance.invoke("copy", [0, PAGE - 40, 40])
    assert memory.read(0, 41) == b"A" * 40 + b"\0"
    assert instance.invoke("grow", [1 << 48]) == [MASK64]  # an i64 -1
    assert instance.invoke("grow", [MASK64]) == [MASK64]
    assert instance.invoke("grow", [2]) == [1]
    assert instance.invoke("grow", [1]) == [MASK64]
    instance.invoke("fill", [3 * PAGE - 1, 0x42, 1])
    assert memory.read(3 * PAGE - 1, 1) == b"B"


SHARED_USER = """(module
  (import "host" "mem" (memory 1 8))
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
  (func (export "size") (result i32) memory.size)
  (func (export "load") (param i32) (result i32) local.get 0 i32.load8_u)
  (func (export "store") (param i32 i32) local.get 0 local.get 1 i32.store8)
)"""


def test_growing_a_shared_memory_is_seen_by_every_instance_and_the_host():
    store = Store()
    owner = instantiate(store, BULK)  # 2 pages, at most 4
    imports = {("host", "mem"): owner.exports["mem"]}
    first, second = instantiate(store, SHARED_USER, imports), instantiate(store, SHARED_USER, imports)
    assert first.invoke("grow", [1]) == [2]
    assert [i.invoke("size", []) for i in (owner, first, second)] == [[3]] * 3
    second.invoke("store", [3 * PAGE - 1, 99])
    assert first.invoke("load", [3 * PAGE - 1]) == [99]
    assert owner.exports["mem"].grow(1) == 3  # the host grows it: the Wasm side sees it
    assert second.invoke("size", []) == [4]
    second.invoke("store", [4 * PAGE - 1, 98])
    assert first.invoke("grow", [1]) == [MASK32] and owner.invoke("grow", [0]) == [4]
    with pytest.raises(Trap, match="out of bounds memory access"):
        first.invoke("load", [4 * PAGE])


TABLES = """(module
  (table $t (export "t") 2 funcref)
  (table $u i64 4 5 funcref)
  (elem $e func $f0 $f1 $f2)
  (func $f0 (result i32) i32.const 10)
  (func $f1 (result i32) i32.const 11)
  (func $f2 (result i32) i32.const 12)
  (type $r (func (result i32)))
  (func (export "grow") (param i32) (result i32) ref.func $f2 local.get 0 table.grow $t)
  (func (export "grow_null") (param i32) (result i32) ref.null func local.get 0 table.grow $t)
  (func (export "call") (param i32) (result i32) local.get 0 call_indirect $t (type $r))
  (func (export "init") (param i32 i32 i32) local.get 0 local.get 1 local.get 2 table.init $t $e)
  (func (export "drop") elem.drop $e)
  (func (export "copy") (param i32 i32 i32) local.get 0 local.get 1 local.get 2 table.copy $t $t)
  (func (export "fill") (param i32 i32) local.get 0 ref.func $f1 local.get 1 table.fill $t)
  (func (export "fill64") (param i64 i64) local.get 0 ref.func $f1 local.get 1 table.fill $u)
  (func (export "copy64") (param i64 i64 i64) local.get 0 local.get 1 local.get 2 table.copy $u $u)
  (func (export "grow64") (param i64) (result i64) ref.null func local.get 0 table.grow $u)
)"""


def test_table_grow_past_its_room_keeps_the_elements():
    instance = instantiate(Store(), TABLES)
    instance.invoke("init", [0, 0, 2])
    size = 2
    for delta in (1, 0, 3, 1, 17, 100, 1000):  # each beyond the room the last one left, some not
        assert instance.invoke("grow", [delta]) == [size]
        size += delta
    assert instance.exports["t"].size == size
    assert [instance.invoke("call", [i]) for i in (0, 1, 2, size - 1)] == [[10], [11], [12], [12]]
    assert instance.invoke("grow_null", [MASK32]) == [MASK32]
    assert instance.invoke("grow_null", [10_000_000]) == [MASK32]
    with pytest.raises(Trap, match="undefined element"):
        instance.invoke("call", [size])


def test_table_bounds_before_any_write():
    instance = instantiate(Store(), TABLES)
    instance.invoke("init", [0, 1, 2])  # t = [f1, f2]
    for export, args in [("fill", [1, 2]), ("fill", [3, 0]), ("copy", [1, 0, 2]),
                         ("copy", [0, 1, 2]), ("init", [0, 2, 2]), ("init", [1, 0, 2])]:
        with pytest.raises(Trap, match="out of bounds table access"):
            instance.invoke(export, args)
    assert [instance.invoke("call", [i]) for i in (0, 1)] == [[11], [12]]
    instance.invoke("fill", [2, 0])  # zero elements at the end: in bounds
    instance.invoke("copy", [1, 0, 1])
    assert instance.invoke("call", [1]) == [11]
    instance.invoke("drop", [])
    instance.invoke("init", [0, 0, 0])
    with pytest.raises(Trap, match="out of bounds table access"):
        instance.invoke("init", [0, 0, 1])


@pytest.mark.parametrize("export,args", [
    ("fill64", [1, MASK64]), ("fill64", [MASK64, 1]), ("copy64", [1, 0, MASK64]),
    ("copy64", [0, MASK64, 2])])
def test_table64_lengths_that_wrap_past_2_to_the_64_trap(export, args):
    instance = instantiate(Store(), TABLES)
    with pytest.raises(Trap, match="out of bounds table access"):
        instance.invoke(export, args)


def test_table64_grow_fails_as_an_i64():
    instance = instantiate(Store(), TABLES)
    assert instance.invoke("grow64", [2]) == [MASK64]
    assert instance.invoke("grow64", [MASK64]) == [MASK64]
    assert instance.invoke("grow64", [1]) == [4]
