"""Engine behaviour through the Python API: WAT text -> `load_bytes` -> `Store().instantiate`
-> `invoke`, with raw values at the boundary (see engine/DESIGN.md).

Covers traps and recovery after them, deep recursion, host functions (results, failures,
re-entrance), memories, data segments, tables, globals, multi-value, very wide signatures,
huge br_tables and local counts, the compiled address map, and locals kept in registers
across loops (tests/test_numeric_vs_wasmtime.py checks numeric kernels against Wasmtime).
"""

from __future__ import annotations


import pytest

from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Exhaustion, LinkError, Store, Trap
from stackstitch.engine.frontend.types import FuncType, GlobalType
from stackstitch.engine.values import bits_to_f64, f32_to_bits, f64_to_bits
from conftest import require_wasm_tools_for_module

require_wasm_tools_for_module()

MASK32 = 0xFFFFFFFF
MASK64 = (1 << 64) - 1


def instantiate(wat: str, imports: dict | None = None, store: Store | None = None):
    """A fresh instance of `wat` (in `store`, or a new one)."""
    store = store or Store()
    return store.instantiate(load_bytes(wat.encode(), "test.wat"), imports or {})


# ---- traps -----------------------------------------------------------------------------------

TRAPS_WAT = """
(module
  (type $v_i (func (result i32)))
  (type $i_i (func (param i32) (result i32)))
  (memory 1 1)
  (table $t 4 funcref)
  (elem (table $t) (i32.const 0) func $answer $id)
  (func $answer (type $v_i) i32.const 42)
  (func $id (type $i_i) local.get 0)
  (func (export "unreachable") unreachable)
  (func (export "div_u") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_u)
  (func (export "div_s") (param i32 i32) (result i32) local.get 0 local.get 1 i32.div_s)
  (func (export "rem_s64") (param i64 i64) (result i64) local.get 0 local.get 1 i64.rem_s)
  (func (export "div_s64") (param i64 i64) (result i64) local.get 0 local.get 1 i64.div_s)
  (func (export "trunc_f64_s64") (param f64) (result i64) local.get 0 i64.trunc_f64_s)
  (func (export "trunc_f32_u") (param f32) (result i32) local.get 0 i32.trunc_f32_u)
  (func (export "load") (param i32) (result i32) local.get 0 i32.load)
  (func (export "store64") (param i32) local.get 0 i64.const 1 i64.store offset=8)
  (func (export "fill") (param i32 i32) local.get 0 i32.const 7 local.get 1 memory.fill)
  (func (export "call_indirect") (param i32) (result i32) local.get 0 call_indirect $t (type $v_i))
  (func (export "table_get") (param i32) (result funcref) local.get 0 table.get $t)
  (func (export "null_call_ref") (result i32) ref.null $v_i call_ref $v_i)
  (func $forever (export "forever") (param i64) (result i64)
    local.get 0 i64.const 1 i64.add call $forever)
  (func $depth (export "depth") (param i32) (result i32)
    local.get 0 i32.eqz
    if (result i32) i32.const 0
    else local.get 0 i32.const 1 i32.sub call $depth i32.const 1 i32.add end)
)
"""

NAN32 = 0x7FC00000
TRAP_CASES = [
    ("unreachable", [], "unreachable"),
    ("div_u", [1, 0], "integer divide by zero"),
    ("rem_s64", [5, 0], "integer divide by zero"),
    ("div_s", [0x80000000, MASK32], "integer overflow"),
    ("div_s64", [1 << 63, MASK64], "integer overflow"),
    ("trunc_f64_s64", [f64_to_bits(1e20)], "integer overflow"),
    ("trunc_f64_s64", [f64_to_bits(-9223372036854777856.0)], "integer overflow"),
    ("trunc_f32_u", [NAN32], "invalid conversion to integer"),
    ("trunc_f32_u", [f32_to_bits(-1.0)], "integer overflow"),
    ("load", [65533], "out of bounds memory access"),
    ("load", [MASK32], "out of bounds memory access"),
    ("store64", [65528], "out of bounds memory access"),
    ("fill", [65000, 1000], "out of bounds memory access"),
    ("call_indirect", [4], "undefined element"),
    ("call_indirect", [MASK32], "undefined element"),
    ("call_indirect", [2], "uninitialized element 2"),
    ("call_indirect", [1], "indirect call type mismatch"),
    ("table_get", [4], "out of bounds table access"),
    ("forever", [0], "call stack exhausted"),
    ("null_call_ref", [], "null function reference"),
]


@pytest.fixture(scope="module")
def trap_instance():
    """One instance shared by every trap case, so each case also checks recovery from the
    traps before it."""
    return instantiate(TRAPS_WAT)


@pytest.mark.parametrize("name,args,message", TRAP_CASES,
                         ids=[f"{n}-{m.replace(' ', '_')}" for n, _, m in TRAP_CASES])
def test_trap_has_spec_message_and_store_recovers(trap_instance, name, args, message):
    with pytest.raises(Trap) as info:
        trap_instance.invoke(name, args)
    assert info.value.message == message
    assert isinstance(info.value, Exhaustion) == (message == "call stack exhausted")
    # The same store and instance keep working after the trap.
    assert trap_instance.invoke("call_indirect", [0]) == [42]
    assert trap_instance.invoke("load", [65532]) == [0]
    assert trap_instance.invoke("div_s", [MASK32 - 6, 2]) == [MASK32 - 2]
    assert trap_instance.invoke("depth", [500]) == [500]


def test_deep_finite_recursion(trap_instance):
    assert trap_instance.invoke("depth", [10_000]) == [10_000]
    with pytest.raises(Exhaustion):
        trap_instance.invoke("forever", [0])
    assert trap_instance.invoke("depth", [10_000]) == [10_000]


def test_trap_in_start_function():
    with pytest.raises(Trap) as info:
        instantiate("(module (func $s unreachable) (start $s))")
    assert info.value.message == "unreachable"


def test_boundary_accesses_do_not_trap(trap_instance):
    assert trap_instance.invoke("store64", [65520]) == []
    assert trap_instance.invoke("load", [65528]) == [1]
    assert trap_instance.invoke("fill", [65000, 536]) == []
    assert trap_instance.invoke("trunc_f64_s64", [f64_to_bits(-9223372036854775808.0)]) == [1 << 63]
    assert trap_instance.invoke("trunc_f32_u", [f32_to_bits(-0.9)]) == [0]


# ---- host functions ------------------------------------------------------------------------

HOST_WAT = """
(module
  (import "host" "pair" (func $pair (param i64) (result i32 i64)))
  (import "host" "fadd" (func $fadd (param f64 f64) (result f64)))
  (import "host" "picky" (func $picky (param i32) (result i32)))
  (func (export "pair") (param i64) (result i32 i64) local.get 0 call $pair)
  (func (export "fadd") (param f64 f64) (result f64)
    local.get 0 local.get 1 call $fadd f64.const 1 f64.add)
  (func (export "picky") (param i32) (result i32) local.get 0 call $picky i32.const 1 i32.add)
)
"""


def host_instance(picky):
    """HOST_WAT linked to Python imports; `picky` is the test's own i32 -> i32 callable."""
    store = Store()
    pair = store.host_function(FuncType(("i64",), ("i32", "i64")),
                               lambda x: [x & MASK32, (x * 3) & MASK64], "pair")
    fadd = store.host_function(FuncType(("f64", "f64"), ("f64",)),
                               lambda a, b: f64_to_bits(bits_to_f64(a) + bits_to_f64(b)), "fadd")
    picky_func = store.host_function(FuncType(("i32",), ("i32",)), picky, "picky")
    return instantiate(HOST_WAT, {("host", "pair"): pair, ("host", "fadd"): fadd,
                                 ("host", "picky"): picky_func}, store)


def test_host_function_results():
    inst = host_instance(lambda x: x * 2)
    assert inst.invoke("pair", [(1 << 40) + 7]) == [7, 3 * ((1 << 40) + 7)]
    assert inst.invoke("pair", [MASK64]) == [MASK32, (3 * MASK64) & MASK64]
    assert bits_to_f64(inst.invoke("fadd", [f64_to_bits(1.25), f64_to_bits(2.5)])[0]) == 4.75
    assert inst.invoke("picky", [20]) == [41]
    assert inst.invoke("picky", [MASK32]) == [MASK32]  # 2 * (2**32 - 1) + 1, wrapped to i32


def test_host_function_exception_traps_caller():
    def picky(x):
        if x == 13:
            raise ValueError("thirteen is unlucky")
        return x
    inst = host_instance(picky)
    with pytest.raises(Trap) as info:
        inst.invoke("picky", [13])
    assert "thirteen is unlucky" in info.value.message
    assert "\n" not in info.value.message
    assert inst.invoke("picky", [12]) == [13]


def test_host_function_exception_names_the_function():
    def picky(x):
        raise ValueError("no")
    with pytest.raises(Trap) as info:
        host_instance(picky).invoke("picky", [1])
    assert "picky" in info.value.message


def test_host_function_trap_keeps_its_message():
    def picky(x):
        raise Trap("custom host trap")
    with pytest.raises(Trap) as info:
        host_instance(picky).invoke("picky", [1])
    assert info.value.message == "custom host trap"


def test_host_function_wrong_result_count_traps():
    store = Store()
    short = store.host_function(FuncType((), ("i32", "i32")), lambda: [1], "short")
    inst = instantiate('(module (import "h" "short" (func $s (result i32 i32)))'
                       ' (func (export "s") (result i32 i32) call $s))', {("h", "short"): short}, store)
    with pytest.raises(Trap, match="short"):
        inst.invoke("s", [])


REENTRY_WAT = """
(module
  (import "host" "up" (func $up (param i32) (result i32)))
  (func (export "outer") (param i32) (result i32) local.get 0 call $up i32.const 1 i32.add)
  (func (export "leaf") (param i32) (result i32) local.get 0 i32.const 10 i32.mul)
  (func (export "boom") (param i32) (result i32) unreachable)
)
"""


def reentry_instance(leaf_name: str):
    """outer(n) = up(n) + 1, where the host's up(n) calls back into outer(n-1), and at 0
    calls `leaf_name`: host -> wasm -> host -> wasm ... n levels deep."""
    store = Store()
    holder = {}

    def up(n):
        inst = holder["inst"]
        return inst.invoke("outer", [n - 1]) if n > 0 else inst.invoke(leaf_name, [7])

    up_func = store.host_function(FuncType(("i32",), ("i32",)), up, "up")
    holder["inst"] = instantiate(REENTRY_WAT, {("host", "up"): up_func}, store)
    return holder["inst"]


def test_host_reenters_wasm():
    inst = reentry_instance("leaf")
    assert inst.invoke("outer", [0]) == [71]
    assert inst.invoke("outer", [3]) == [74]
    assert inst.invoke("outer", [50]) == [70 + 51]


def test_trap_in_reentered_wasm_propagates():
    inst = reentry_instance("boom")
    for depth in (0, 1, 5):
        with pytest.raises(Trap) as info:
            inst.invoke("outer", [depth])
        assert info.value.message == "unreachable"
    assert inst.invoke("leaf", [3]) == [30]


def test_host_call_from_deep_wasm_stack():
    """Host calls keep working near the bottom of a deep Wasm stack."""
    store = Store()
    seen = []
    note = store.host_function(FuncType(("i32",), ()), seen.append, "note")
    inst = instantiate("""
      (module
        (import "host" "note" (func $note (param i32)))
        (func $down (export "down") (param i32)
          local.get 0 i32.eqz
          if local.get 0 call $note return end
          local.get 0 i32.const 1 i32.sub call $down
          local.get 0 i32.const 1000 i32.rem_u i32.eqz
          if local.get 0 call $note end))""", {("host", "note"): note}, store)
    inst.invoke("down", [5000])
    assert seen == [0, 1000, 2000, 3000, 4000, 5000]


# ---- memory and data -------------------------------------------------------------------------

MEMORY_WAT = """
(module
  (memory (export "mem") 1 3)
  (data (i32.const 16) "hello")
  (data $p "passive!")
  (func (export "size") (result i32) memory.size)
  (func (export "grow") (param i32) (result i32) local.get 0 memory.grow)
  (func (export "load8") (param i32) (result i32) local.get 0 i32.load8_u)
  (func (export "store") (param i32 i32) local.get 0 local.get 1 i32.store)
  (func (export "init") (param i32 i32 i32) local.get 0 local.get 1 local.get 2 memory.init $p)
  (func (export "drop") data.drop $p)
  (func (export "copy") (param i32 i32 i32) local.get 0 local.get 1 local.get 2 memory.copy)
)
"""


def test_memory_grow_and_size():
    inst = instantiate(MEMORY_WAT)
    mem = inst.exports["mem"]
    assert inst.invoke("size", []) == [1] and mem.size_bytes == 65536
    assert inst.invoke("grow", [1]) == [1]
    assert inst.invoke("size", []) == [2] and mem.size_bytes == 2 * 65536
    inst.invoke("store", [2 * 65536 - 4, 0x04030201])
    assert mem.read(2 * 65536 - 4, 4) == b"\x01\x02\x03\x04"
    assert inst.invoke("grow", [2]) == [MASK32]  # past the maximum: -1, size unchanged
    assert inst.invoke("grow", [MASK32]) == [MASK32]
    assert inst.invoke("size", []) == [2]
    with pytest.raises(Trap, match="out of bounds memory access"):
        inst.invoke("load8", [2 * 65536])
    assert inst.invoke("grow", [1]) == [2]
    assert inst.invoke("grow", [0]) == [3]
    assert inst.invoke("load8", [3 * 65536 - 1]) == [0]
    mem.write(3 * 65536 - 1, b"\x99")
    assert inst.invoke("load8", [3 * 65536 - 1]) == [0x99]


def test_memory_without_maximum_grows_until_refused():
    inst = instantiate('(module (memory 0) (func (export "grow") (param i32) (result i32)'
                       ' local.get 0 memory.grow))')
    assert inst.invoke("grow", [0]) == [0]
    assert inst.invoke("grow", [10]) == [0]
    assert inst.invoke("grow", [65537]) == [MASK32]
    assert inst.invoke("grow", [1]) == [10]


def test_data_segments():
    inst = instantiate(MEMORY_WAT)
    mem = inst.exports["mem"]
    assert mem.read(14, 9) == b"\0\0hello\0\0"
    inst.invoke("init", [100, 0, 8])
    assert mem.read(100, 8) == b"passive!"
    inst.invoke("init", [200, 4, 4])
    assert mem.read(200, 4) == b"ive!"
    with pytest.raises(Trap, match="out of bounds memory access"):
        inst.invoke("init", [0, 4, 5])
    with pytest.raises(Trap, match="out of bounds memory access"):
        inst.invoke("init", [65535, 0, 2])
    inst.invoke("copy", [300, 100, 8])
    assert mem.read(300, 8) == b"passive!"
    inst.invoke("drop", [])
    inst.invoke("init", [0, 0, 0])
    with pytest.raises(Trap, match="out of bounds memory access"):
        inst.invoke("init", [0, 0, 1])


def test_active_data_segment_out_of_bounds_fails_instantiation():
    with pytest.raises(Trap, match="out of bounds memory access"):
        instantiate('(module (memory 1) (data (i32.const 65534) "abc"))')


# ---- tables ----------------------------------------------------------------------------------

TABLE_WAT = """
(module
  (type $v_i (func (result i32)))
  (table $t (export "tab") 2 5 funcref)
  (func $one (export "one") (type $v_i) i32.const 1)
  (func $two (export "two") (type $v_i) i32.const 2)
  (elem declare func $one $two)
  (func (export "size") (result i32) table.size $t)
  (func (export "grow") (param i32) (result i32) ref.func $two local.get 0 table.grow $t)
  (func (export "set_one") (param i32) local.get 0 ref.func $one table.set $t)
  (func (export "call") (param i32) (result i32) local.get 0 call_indirect $t (type $v_i))
  (func (export "is_null") (param i32) (result i32) local.get 0 table.get $t ref.is_null)
  (func (export "fill") (param i32 i32) local.get 0 ref.func $one local.get 1 table.fill $t)
  (func (export "copy") (param i32 i32 i32) local.get 0 local.get 1 local.get 2 table.copy $t $t)
)
"""


def test_table_operations():
    inst = instantiate(TABLE_WAT)
    tab, one, two = inst.exports["tab"], inst.exports["one"], inst.exports["two"]
    assert inst.invoke("size", []) == [2] and tab.size == 2
    assert inst.invoke("is_null", [0]) == [1]
    with pytest.raises(Trap, match="uninitialized element"):
        inst.invoke("call", [0])
    inst.invoke("set_one", [0])
    assert inst.invoke("call", [0]) == [1] and tab.get(0) == one.ref
    assert inst.invoke("grow", [2]) == [2]
    assert inst.invoke("size", []) == [4] and tab.size == 4
    assert inst.invoke("call", [3]) == [2] and tab.get(3) == two.ref
    assert inst.invoke("grow", [2]) == [MASK32]  # past the maximum of 5
    assert inst.invoke("grow", [1]) == [4]
    inst.invoke("fill", [1, 2])
    assert [inst.invoke("call", [i]) for i in range(5)] == [[1], [1], [1], [2], [2]]
    inst.invoke("copy", [0, 3, 2])
    assert [inst.invoke("call", [i]) for i in range(5)] == [[2], [2], [1], [2], [2]]
    with pytest.raises(Trap, match="out of bounds table access"):
        inst.invoke("fill", [4, 2])
    with pytest.raises(Trap, match="out of bounds table access"):
        inst.invoke("copy", [4, 0, 2])
    with pytest.raises(Trap, match="undefined element"):
        inst.invoke("call", [5])


# ---- globals ---------------------------------------------------------------------------------

GLOBAL_EXPORTER = """
(module
  (global $g (export "g") (mut i32) (i32.const 10))
  (global (export "k64") i64 (i64.const -5))
  (global (export "kf64") f64 (f64.const -0.0))
  (func (export "get") (result i32) global.get $g)
  (func (export "add") (param i32) global.get $g local.get 0 i32.add global.set $g))
"""
GLOBAL_IMPORTER = """
(module
  (import "a" "g" (global $g (mut i32)))
  (func (export "get") (result i32) global.get $g)
  (func (export "add") (param i32) global.get $g local.get 0 i32.add global.set $g))
"""


def test_imported_mutable_global_is_shared():
    store = Store()
    a = instantiate(GLOBAL_EXPORTER, {}, store)
    g = a.exports["g"]
    b = instantiate(GLOBAL_IMPORTER, {("a", "g"): g}, store)
    c = instantiate(GLOBAL_IMPORTER, {("a", "g"): g}, store)
    b.invoke("add", [5])
    assert a.invoke("get", []) == [15] and c.invoke("get", []) == [15]
    a.invoke("add", [MASK32])  # -1
    assert b.invoke("get", []) == [14] and g.get() == 14
    g.set(100)
    assert [x.invoke("get", []) for x in (a, b, c)] == [[100]] * 3
    assert a.exports["k64"].get() == (-5) & MASK64
    assert a.exports["kf64"].get() == 1 << 63


def test_host_global_shared_between_instances():
    store = Store()
    g = store.new_global(GlobalType("i32", True), 7)
    b = instantiate(GLOBAL_IMPORTER, {("a", "g"): g}, store)
    c = instantiate(GLOBAL_IMPORTER, {("a", "g"): g}, store)
    c.invoke("add", [1])
    assert b.invoke("get", []) == [8] and g.get() == 8


def test_global_import_mutability_mismatch_is_a_link_error():
    store = Store()
    immutable = store.new_global(GlobalType("i32", False), 7)
    with pytest.raises(LinkError) as info:
        instantiate(GLOBAL_IMPORTER, {("a", "g"): immutable}, store)
    assert "\n" not in str(info.value) and "a" in str(info.value)
    with pytest.raises(LinkError, match="unknown import"):
        instantiate(GLOBAL_IMPORTER, {}, store)


# ---- signatures and control flow at scale ----------------------------------------------------

def test_multi_value():
    inst = instantiate("""
      (module
        (func $mv (export "mv") (param i32) (result i32 i64 f32 f64)
          local.get 0
          local.get 0 i64.extend_i32_s i64.const 1 i64.shl
          local.get 0 f32.convert_i32_s
          local.get 0 f64.convert_i32_s f64.const 0.5 f64.add)
        (func (export "swap") (param i32 i64) (result i64 i32) (local i32 i64)
          local.get 0 local.get 1
          block (param i32 i64) (result i64 i32)
            local.set 3 local.set 2 local.get 3 local.get 2
          end)
        (func (export "loop_sum") (param i32) (result i32)
          i32.const 0 local.get 0
          loop (param i32 i32) (result i32)
            local.tee 0 i32.add
            local.get 0 i32.const 1 i32.sub local.tee 0
            local.get 0 br_if 0
            drop
          end)
        (func (export "via_call") (param i32) (result f64) (local f64)
          local.get 0 call $mv
          f64.const 2 f64.mul local.set 1 drop drop drop local.get 1))""")
    assert inst.invoke("mv", [MASK32 - 2]) == [MASK32 - 2, (-6) & MASK64, f32_to_bits(-3.0), f64_to_bits(-2.5)]
    assert inst.invoke("swap", [7, 1 << 40]) == [1 << 40, 7]
    assert bits_to_f64(inst.invoke("via_call", [4])[0]) == 9.0
    assert inst.invoke("loop_sum", [100]) == [5050]


WIDE_TYPES = ["i32", "i64", "f32", "f64"]


def wide_wat(n: int) -> str:
    """`many` returns its n parameters reversed, ints incremented by their position; the
    other exports pass their parameters to it by call, call_indirect and call_ref."""
    params = [WIDE_TYPES[k % 4] for k in range(n)]
    results = params[::-1]
    sig = f"(param {' '.join(params)}) (result {' '.join(results)})"
    body = []
    for k, t in enumerate(results):
        body.append(f"local.get {n - 1 - k}")
        if t in ("i32", "i64"):
            body.append(f"{t}.const {k} {t}.add")
    forward = " ".join(f"local.get {k}" for k in range(n))
    return (f'(module (func $many (export "many") {sig} {" ".join(body)})'
            f' (func (export "call_many") {sig} {forward} call $many)'
            f' (type $wide (func {sig})) (table 1 funcref) (elem (i32.const 0) $many)'
            f' (elem declare func $many)'
            f' (func (export "indirect_many") {sig} {forward} i32.const 0 call_indirect (type $wide))'
            f' (func (export "ref_many") {sig} {forward} ref.func $many call_ref $wide))')


def wide_args(n: int) -> list[int]:
    args = []
    for k in range(n):
        t = WIDE_TYPES[k % 4]
        args.append({"i32": (-k) & MASK32, "i64": (k << 40) | 5, "f32": f32_to_bits(k + 0.25),
                     "f64": f64_to_bits(-k - 0.125)}[t])
    return args


def wide_expected(args: list[int]) -> list[int]:
    out = []
    for k, raw in enumerate(reversed(args)):
        t = WIDE_TYPES[(len(args) - 1 - k) % 4]
        out.append((raw + k) & (MASK32 if t == "i32" else MASK64) if t in ("i32", "i64") else raw)
    return out


def test_twenty_params_and_results():
    inst = instantiate(wide_wat(20))
    args = wide_args(20)
    assert inst.invoke("many", args) == wide_expected(args)
    for caller in ("call_many", "indirect_many", "ref_many"):
        assert inst.invoke(caller, args) == wide_expected(args), caller


def test_br_table_with_1000_targets():
    n = 1000
    lines = ['(module (func (export "switch") (param i32) (result i32)']
    lines += ["block"] * (n + 1)
    lines.append("local.get 0 br_table " + " ".join(map(str, range(n + 1))))
    for k in range(n):
        lines.append(f"end i32.const {100 + k} return")
    lines.append("end i32.const -1))")
    inst = instantiate("\n".join(lines))
    for index in (0, 1, 2, 499, 998, 999):
        assert inst.invoke("switch", [index]) == [100 + index]
    for index in (1000, 1001, 1 << 31, MASK32):
        assert inst.invoke("switch", [index]) == [MASK32]


def test_ten_thousand_locals():
    """Locals start at zero even when the stack below holds garbage from earlier calls."""
    n = 10_000
    half = n // 2
    inst = instantiate(f"""
      (module
        (func $dirty (export "dirty") (param i64) (result i64)
          (local i64 i64 i64 i64 i64 i64 i64 i64)
          local.get 0 i64.eqz if i64.const 0 return end
          i64.const -1 local.set 1 i64.const -1 local.set 5 i64.const -1 local.set 8
          local.get 0 i64.const 1 i64.sub call $dirty)
        (func (export "locals") (param i32) (result i64 i64 i64)
          (local {' i64' * half}) (local {' f64' * half})
          local.get 0 i64.extend_i32_u local.set {half}
          local.get {half} local.get 1 i64.add local.get {half - 1} i64.add
          local.get 2
          local.get {n} f64.const 0 f64.eq
          if (result i64) local.get {n} f64.const 1.5 f64.add local.set {n} i64.const 0
          else i64.const 99 end
          local.get {n} i64.trunc_f64_s i64.add))""")
    inst.invoke("dirty", [20_000])
    assert inst.invoke("locals", [7]) == [7, 0, 1]
    assert inst.invoke("locals", [MASK32]) == [MASK32, 0, 1]


# ---- compiled metadata -----------------------------------------------------------------------

def test_addr_map_sorted_and_inside_function_bodies(trap_instance):
    module = trap_instance.module
    compiled = trap_instance.compiled
    assert len(compiled.functions) == len(module.code)
    for cf, body in zip(compiled.functions, module.code):
        assert cf.addr_map, f"function {cf.index} has no address map"
        assert cf.addr_map == sorted(cf.addr_map, key=lambda row: row[0])
        for native, wasm in cf.addr_map:
            assert cf.start <= native < cf.end, (cf.index, native)
            assert body.code_start <= wasm < body.code_end, (cf.index, wasm)


# ---- loop-pinned locals --------------------------------------------------------------------

PINNED_LOOP_WAT = """
(module
  (import "host" "bump" (func $bump (param i32) (result i32)))
  (tag $e (param f64))
  (func $clobber (param f64) (result f64)
    ;; keeps 15 float values live at once, so the caller's xmm registers do not survive
    (f64.add (f64.mul (local.get 0) (f64.const 15.0)) (f64.add (f64.mul (local.get 0) (f64.const 14.0)) (f64.add (f64.mul (local.get 0) (f64.const 13.0)) (f64.add (f64.mul (local.get 0) (f64.const 12.0)) (f64.add (f64.mul (local.get 0) (f64.const 11.0)) (f64.add (f64.mul (local.get 0) (f64.const 10.0)) (f64.add (f64.mul (local.get 0) (f64.const 9.0)) (f64.add (f64.mul (local.get 0) (f64.const 8.0)) (f64.add (f64.mul (local.get 0) (f64.const 7.0)) (f64.add (f64.mul (local.get 0) (f64.const 6.0)) (f64.add (f64.mul (local.get 0) (f64.const 5.0)) (f64.add (f64.mul (local.get 0) (f64.const 4.0)) (f64.add (f64.mul (local.get 0) (f64.const 3.0)) (f64.add (f64.mul (local.get 0) (f64.const 2.0)) (f64.add (f64.mul (local.get 0) (f64.const 1.0)) (local.get 0)))))))))))))))))
  (func (export "run") (param $n i32) (result f64)
    (local $i i32) (local $x f64) (local $y f64) (local $k i32)
    (loop $again
      (local.set $x (f64.add (local.get $x) (f64.convert_i32_u (local.get $i))))
      (local.set $y (f64.add (local.get $y) (call $clobber (local.get $x))))
      (local.set $k (call $bump (local.get $k)))
      (block $caught (result f64)
        (try_table (catch $e $caught)
          (if (i32.eq (i32.and (local.get $i) (i32.const 3)) (i32.const 0))
            (then (throw $e (local.get $y)))))
        (f64.const 0))
      (local.set $y (f64.sub (local.get $y)))
      (local.set $y (f64.add (local.get $y) (local.get $x)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
    (f64.add (local.get $y) (f64.convert_i32_u (local.get $k)))))
"""


def clobber(x: float) -> float:
    total = x
    for k in range(15):
        total = x * (k + 1.0) + total
    return total


def pinned_loop_reference(n: int) -> float:
    i = k = 0
    x = y = 0.0
    while True:
        x += float(i)
        y += clobber(x)
        k += 1
        caught = y if i & 3 == 0 else 0.0
        y = caught - y  # the block's result is f64.sub's first operand
        y += x
        i += 1
        if i >= n:
            return y + k


@pytest.mark.parametrize("n", [1, 5, 100])
def test_locals_kept_in_registers_across_loop_iterations_survive_calls_and_throws(n):
    """Loops keep their most-read locals in registers; calls, host calls and exception
    landings inside the loop must not leave stale copies behind."""
    store = Store()
    bump = store.host_function(FuncType(("i32",), ("i32",)), lambda v: v + 1, "bump")
    instance = instantiate(PINNED_LOOP_WAT, {("host", "bump"): bump}, store)
    assert bits_to_f64(instance.invoke("run", [n])[0]) == pinned_loop_reference(n)


def test_function_compiler_state_stays_inline():
    """CPython 3.11 keeps at most 29 instance attributes inline; past that, every `self.x`
    of the compiler goes through a dictionary, which costs 8% of compile time."""
    from stackstitch.engine import layout as L
    from stackstitch.engine.compiler.codegen import FunctionCompiler, ModuleCompiler
    from stackstitch.engine.compiler.common import NUM_BUILTINS
    module = load_bytes(b'(module (func (param i32) (local f64) local.get 0 drop))', "test.wat")
    store = Store()
    vm = L.VmctxLayout(1, 0, 0, NUM_BUILTINS)
    compiler = FunctionCompiler(ModuleCompiler(module, store.canonical_type_ids(module), vm), 0,
                                module.code[0])
    assert len(vars(compiler)) <= 29, sorted(vars(compiler))
