"""The binary decoder, on modules assembled by the real wasm-tools and on hand-made bytes."""

from __future__ import annotations

import json
import random
import struct
import time

import pytest

from stackstitch.engine.frontend import wasmtools
from stackstitch.engine.frontend.binary import (DecodeError, decode_module, read_s32, read_s33,
                                       read_s64, read_u32)
from stackstitch.engine.frontend.types import (ArrayType, ContType, FuncType, GlobalType, Limits,
                                      MemoryType, RefType, StructType, SubType, TableType,
                                      TagType)
from conftest import SPEC_TESTS, require_wasm_tools_for_module

SPEC_CORE = SPEC_TESTS / "core"

require_wasm_tools_for_module()


def wat(text: str) -> bytes:
    return wasmtools.wat_to_wasm(text)


# Hand-assembly, for encodings WAT cannot express.

def uleb(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def vec(items: list[bytes]) -> bytes:
    return uleb(len(items)) + b"".join(items)


def section(section_id: int, payload: bytes) -> bytes:
    return bytes([section_id]) + uleb(len(payload)) + payload


def module(*sections: bytes) -> bytes:
    return b"\0asm\1\0\0\0" + b"".join(sections)


def name(s: str) -> bytes:
    return uleb(len(s.encode())) + s.encode()


# --- LEB helpers ----------------------------------------------------------------------------

def test_leb_helpers():
    assert read_u32(b"\xe5\x8e\x26", 0) == (624485, 3)
    assert read_u32(b"\x00\xff\xff\xff\xff\x0f", 1) == (0xFFFFFFFF, 6)
    assert read_s32(b"\x7f", 0) == (-1, 1)
    assert read_s32(b"\x80\x80\x80\x80\x78", 0) == (-(2**31), 5)
    assert read_s33(b"\xc0\x00", 0) == (64, 2)  # 64 needs two bytes: 0x40 alone is -64
    assert read_s33(b"\x40", 0) == (-64, 1)
    assert read_s64(b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7f", 0) == (-(2**63), 10)


@pytest.mark.parametrize("reader, data, message", [
    (read_u32, b"\x80\x80\x80\x80\x80\x00", "integer representation too long"),
    (read_u32, b"\xff\xff\xff\xff\x1f", "integer too large"),
    (read_s32, b"\xff\xff\xff\xff\x4f", "integer too large"),
    (read_s33, b"\x80\x80\x80\x80\x20", "integer too large"),
    (read_s64, b"\xff" * 9 + b"\x01", "integer too large"),
    (read_u32, b"\x80", "unexpected end"),
])
def test_leb_errors(reader, data, message):
    with pytest.raises(DecodeError) as e:
        reader(data, 0)
    assert e.value.message == message


# --- sections -------------------------------------------------------------------------------

def test_types_rec_sub_struct_array_cont():
    filler = "".join(f"(type (func (param i{32 if i % 2 else 64})))" for i in range(70))
    m = decode_module(wat(f"""(module
      (rec (type $a (sub (func (param i32) (result i64))))
           (type $b (sub final $a (func (param i32) (result i64))))
           (type $s (struct (field i8) (field (mut i64)) (field (ref null $s)))))
      (type $arr (array (mut i16)))
      (type $c (cont $a))
      {filler}
      (type $far (func (result f32)))
      (type $cfar (cont $far)))"""))
    assert [(g.start, len(g.types)) for g in m.rec_groups[:3]] == [(0, 3), (3, 1), (4, 1)]
    assert m.types[0] == SubType(FuncType(("i32",), ("i64",)), final=False)
    assert m.types[1] == SubType(FuncType(("i32",), ("i64",)), final=True, supertypes=(0,))
    assert m.types[2].composite == StructType(
        (("i8", False), ("i64", True), (RefType(True, 2), False)))
    assert m.types[3].composite == ArrayType(("i16", True))
    assert m.types[4].composite == ContType(0)
    # A type index above 63 takes two bytes in signed LEB: it must not decode as negative.
    assert m.types[76].composite == ContType(75)
    assert len(m.rec_groups) == len(m.types) - 2


def test_value_types():
    names = ["funcref", "externref", "exnref", "contref", "anyref", "eqref", "i31ref",
             "structref", "arrayref", "nullref", "nullexternref", "nullfuncref",
             "nullexnref", "nullcontref"]
    heaps = ["func", "extern", "exn", "cont", "any", "eq", "i31", "struct", "array", "none",
             "noextern", "nofunc", "noexn", "nocont"]
    m = decode_module(wat(f"""(module
      (type $f (func))
      (type (func (param i32 i64 f32 f64 v128 {' '.join(names)})
                  (result (ref null $f) (ref $f) (ref any) (ref null extern)))))"""))
    ft = m.types[1].composite
    assert ft.params[:5] == ("i32", "i64", "f32", "f64", "v128")
    assert ft.params[5:] == tuple(RefType(True, h) for h in heaps)
    assert ft.results == (RefType(True, 0), RefType(False, 0), RefType(False, "any"),
                          RefType(True, "extern"))


def test_imports_exports_tags():
    m = decode_module(wat("""(module
      (type $t (func (param i32)))
      (import "env" "f" (func (type $t)))
      (import "env" "tab" (table 1 10 funcref))
      (import "env" "mem" (memory 1 2))
      (import "env" "g" (global (mut i64)))
      (import "env" "exn" (tag (param i32)))
      (tag $own (export "own") (param i32))
      (func (export "run") (param i32))
      (export "tab" (table 0)) (export "mem" (memory 0)) (export "g" (global 0)))"""))
    assert [(i.module, i.name, i.kind, i.desc) for i in m.imports] == [
        ("env", "f", "func", 0),
        ("env", "tab", "table", TableType(RefType(True, "func"), Limits(1, 10))),
        ("env", "mem", "memory", MemoryType(Limits(1, 2))),
        ("env", "g", "global", GlobalType("i64", True)),
        ("env", "exn", "tag", TagType(0)),
    ]
    assert m.tags == [TagType(0)]
    assert {(e.name, e.kind, e.index) for e in m.exports} == {
        ("own", "tag", 1), ("run", "func", 1), ("tab", "table", 0), ("mem", "memory", 0),
        ("g", "global", 0)}
    assert m.num_imported_funcs == 1 and m.func_type(1) == FuncType(("i32",), ())


def test_tables_memories_globals_const_exprs():
    m = decode_module(wat("""(module
      (func $f)
      (table 3 funcref)
      (table 1 5 (ref func) (ref.func $f))
      (memory 1) (memory $m2 2 3)
      (global $a i32 (i32.const -5))
      (global i64 (i64.const -9223372036854775808))
      (global f32 (f32.const 1.5))
      (global f64 (f64.const -2.25))
      (global (mut funcref) (ref.null func))
      (global funcref (ref.func $f))
      (global i32 (i32.add (global.get $a)
                           (i32.mul (i32.const 2) (i32.sub (i32.const 7) (i32.const 1)))))
      (global i64 (i64.add (i64.const 1)
                           (i64.mul (i64.const 2) (i64.sub (i64.const 3) (i64.const 4))))))"""))
    assert m.tables[0].init is None
    assert m.tables[1].type == TableType(RefType(False, "func"), Limits(1, 5))
    assert m.tables[1].init == [("ref.func", 0)]
    assert m.memories == [MemoryType(Limits(1)), MemoryType(Limits(2, 3))]
    inits = [g.init for g in m.globals]
    assert inits[0] == [("i32.const", -5)]
    assert inits[1] == [("i64.const", -(2**63))]
    assert inits[2] == [("f32.const", struct.unpack("<I", struct.pack("<f", 1.5))[0])]
    assert inits[3] == [("f64.const", struct.unpack("<Q", struct.pack("<d", -2.25))[0])]
    assert inits[4] == [("ref.null", RefType(True, "func"))]
    assert inits[5] == [("ref.func", 0)]
    assert inits[6] == [("global.get", 0), ("i32.const", 2), ("i32.const", 7),
                        ("i32.const", 1), ("i32.sub", None), ("i32.mul", None),
                        ("i32.add", None)]
    assert [op for op, _ in inits[7]][-3:] == ["i64.sub", "i64.mul", "i64.add"]
    assert m.globals[4].type == GlobalType(RefType(True, "func"), True)


def test_all_element_forms():
    # wasm-tools emits these segments with flags 0, 1, 6, 3, 4, 5, 2, 7 in this order.
    m = decode_module(wat("""(module
      (table $t0 2 funcref) (table $t1 2 externref)
      (func $f) (func $g)
      (elem (i32.const 0) func $f $g)
      (elem func $g)
      (elem (table $t1) (i32.const 1) externref (ref.null extern))
      (elem declare func $f)
      (elem (i32.const 0) funcref (ref.null func))
      (elem funcref (ref.func $f))
      (elem (table $t0) (i32.const 1) func $g)
      (elem declare funcref (ref.func $g)))"""))
    funcref, nonnull = RefType(True, "func"), RefType(False, "func")
    got = [(e.mode, e.reftype, e.items, e.table, e.offset) for e in m.elements]
    assert got == [
        ("active", nonnull, [[("ref.func", 0)], [("ref.func", 1)]], 0, [("i32.const", 0)]),
        ("passive", nonnull, [[("ref.func", 1)]], 0, None),
        ("active", RefType(True, "extern"), [[("ref.null", RefType(True, "extern"))]], 1,
         [("i32.const", 1)]),
        ("declarative", nonnull, [[("ref.func", 0)]], 0, None),
        ("active", funcref, [[("ref.null", funcref)]], 0, [("i32.const", 0)]),
        ("passive", funcref, [[("ref.func", 0)]], 0, None),
        ("active", nonnull, [[("ref.func", 1)]], 0, [("i32.const", 1)]),
        ("declarative", funcref, [[("ref.func", 1)]], 0, None),
    ]


def test_code_locals_and_offsets_start_datacount():
    data = wat("""(module
      (memory 1)
      (func $main (param i32) (local i32 i32) (local f64) (local (ref null extern))
        i32.const 7 drop)
      (func $other (result i32) i32.const 1)
      (start $other2)
      (func $other2)
      (data "passive")
      (func (data.drop 0)))""")
    m = decode_module(data)
    assert m.code[0].locals == ["i32", "i32", "f64", RefType(True, "extern")]
    assert m.code[1].locals == []
    body = m.code[0]
    assert data[body.code_start] == 0x41  # i32.const
    assert data[body.code_start:body.code_end] == b"\x41\x07\x1a\x0b"
    assert data[m.code[1].code_start:m.code[1].code_end] == b"\x41\x01\x0b"
    assert m.start == 2
    assert m.data_count == 1


def test_data_forms():
    # Form 2 (explicit memory index) is hand-made: wat2wasm encodes memory 0 as form 0.
    expr = b"\x41\x05\x0b"
    data = module(
        section(5, vec([b"\x00\x01"])),
        section(11, vec([b"\x00" + expr + name("a"), b"\x01" + name("pp"),
                         b"\x02\x00" + expr + name("ccc")])))
    wasmtools.validate(data)
    m = decode_module(data)
    assert [(d.mode, d.data, d.memory, d.offset) for d in m.datas] == [
        ("active", b"a", 0, [("i32.const", 5)]),
        ("passive", b"pp", 0, None),
        ("active", b"ccc", 0, [("i32.const", 5)]),
    ]


def test_name_section():
    m = decode_module(wat("""(module $mod
      (import "env" "h" (func $host))
      (func $first (param $x i32) (local $y i64))
      (func (param i32)))"""))
    assert m.name == "mod"
    assert m.func_names == {0: "host", 1: "first"}
    assert m.local_names == {1: {0: "x", 1: "y"}}
    assert m.func_name(1) == "first" and m.func_name(2) == "wasm-function[2]"


@pytest.mark.parametrize("payload", [
    b"\x01\x05\x01\x00\x03ab",           # function names: name longer than subsection
    b"\x00\x03\x02\xff\xfe",             # module name: not UTF-8
    b"\x01\x07\x01\x00\x01a\x00\x00",    # function names: trailing bytes
    b"\x01",                             # subsection cut short
])
def test_malformed_name_section_is_ignored(payload):
    base = wat("(module $m (func $f))")
    data = base + section(0, name("name") + payload)
    m = decode_module(data)
    assert m.func_names == {0: "f"}  # the broken second name section changed nothing
    assert len(m.code) == 1
    alone = decode_module(wat("(module (func))") + section(0, name("name") + payload))
    assert alone.name is None and alone.func_names == {} and alone.local_names == {}


# --- malformed input ------------------------------------------------------------------------

def test_error_format():
    with pytest.raises(DecodeError) as e:
        decode_module(b"\0asm\1\0\0\0\1\2\1\x60\0\0")  # the section ends too early
    assert (e.value.offset, e.value.message) == (12, "unexpected end")
    assert str(e.value) == f"malformed module at offset 0x{e.value.offset:x}: unexpected end"


@pytest.mark.parametrize("data, offset, message", [
    (b"", 0, "magic header not detected"),
    (b"\0as", 0, "magic header not detected"),
    (b"\x7fELF\1\0\0\0", 0, "magic header not detected"),
    (b"\0asm\1\0", 4, "unexpected end"),
    (b"\0asm\2\0\0\0", 4, "unknown binary version"),
    (b"\0asm\1\0\0\0\x0e\x00", 8, "malformed section id 14"),
    (b"\0asm\1\0\0\0\x01\x01\x00\x01\x01\x00", 11, "unexpected section: duplicate or out of order"),
    (b"\0asm\1\0\0\0\x01\x02\x00\x00", 11, "section size mismatch"),
    (b"\0asm\1\0\0\0\x03\x02\x01\x00", 12, "function and code section have inconsistent lengths"),
    (b"\0asm\1\0\0\0\x01\x04\x01\x60\x00\x00\x06\x04\x01\x7f\x00\x41", 20, "unexpected end"),
    (b"\0asm\1\0\0\0\x06\x04\x01\x7f\x00\x00", 13,
     "unsupported instruction 0x00 in constant expression"),
])
def test_malformed_modules(data, offset, message):
    with pytest.raises(DecodeError) as e:
        decode_module(data)
    assert (e.value.offset, e.value.message) == (offset, message)


def test_every_truncation_is_a_decode_error():
    data = wat("""(module $m
      (type (func (param i32) (result i32))) (type (cont 0))
      (import "a" "b" (global i32)) (tag (param i32))
      (table 1 funcref) (memory 1) (global i64 (i64.const 1))
      (func (export "f") (param i32) (result i32) (local f64) local.get 0)
      (elem (i32.const 0) func 0) (data (i32.const 0) "xyz"))""")
    decode_module(data)
    boundaries = set()
    pos = 8
    while pos < len(data):
        boundaries.add(pos)
        size, pos = read_u32(data, pos + 1)
        pos += size
    for n in range(len(data)):
        if n in boundaries:
            continue  # a prefix of whole sections may itself be a well-formed module
        with pytest.raises(DecodeError):
            decode_module(data[:n])


def test_garbage_bytes():
    rng = random.Random(1)
    valid = wat("(module (func (export \"f\") (result i32) i32.const 1) (memory 1))")
    for _ in range(300):
        junk = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            junk[rng.randrange(8, len(junk))] = rng.randrange(256)
        try:
            decode_module(bytes(junk))
        except DecodeError:
            pass
    with pytest.raises(DecodeError):
        decode_module(bytes(rng.randrange(256) for _ in range(1000)))
    with pytest.raises(DecodeError):
        decode_module(b"\0asm\1\0\0\0" + bytes(rng.randrange(256) for _ in range(1000)))


def test_huge_local_count_is_rejected_cheaply():
    body = vec([uleb(0xFFFFFFF0) + b"\x7f"]) + b"\x0b"
    data = module(section(1, vec([b"\x60\x00\x00"])), section(3, vec([b"\x00"])),
                  section(10, vec([uleb(len(body)) + body])))
    with pytest.raises(DecodeError, match="too many locals"):
        decode_module(data)


# --- scale ----------------------------------------------------------------------------------

def test_decodes_a_megabyte_module_quickly():
    funcs = "\n".join(
        f"(func $f{i} (export \"f{i}\") (param i32 i64) (result i32) (local i32 f64)"
        + " local.get 0 i32.const 1 i32.add" * 20 + ")"
        for i in range(5000))
    data = wat(f"(module (memory 1) {funcs} (data (i32.const 0) \"{'x' * 400_000}\"))")
    assert len(data) > 1_000_000
    best = min(_timed(decode_module, data) for _ in range(3))
    assert best < 0.1, f"decoding {len(data)} bytes took {best * 1000:.0f} ms"


def _timed(fn, arg) -> float:
    start = time.perf_counter()
    fn(arg)
    return time.perf_counter() - start


# --- the spec suite -------------------------------------------------------------------------

def test_spec_core_modules_decode(tmp_path):
    scripts = sorted(SPEC_CORE.glob("*.wast"))
    assert scripts, f"no spec scripts in {SPEC_CORE}"
    decoded = 0
    failures = []
    for script in scripts:
        out = tmp_path / script.stem
        commands = json.loads(wasmtools.json_from_wast(script, out).read_text())["commands"]
        for c in commands:
            if c["type"] != "module" or not c.get("filename", "").endswith(".wasm"):
                continue
            try:
                decode_module((out / c["filename"]).read_bytes())
                decoded += 1
            except DecodeError as e:
                failures.append(f"{script.name}:{c['line']}: {e}")
    assert not failures, "\n".join(failures)
    assert decoded > 1000
