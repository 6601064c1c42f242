"""`stackstitch run` end to end, plus the value conversions it relies on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackstitch.engine import values
from stackstitch.engine.frontend.types import EXTERNREF, FUNCREF, RefType

from conftest import REPO_ROOT

VALUES_WAT = """
(module
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "echo") (param i32 i64 f32 f64) (result i32 i64 f32 f64)
    local.get 0 local.get 1 local.get 2 local.get 3)
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "nothing"))
  (memory (export "memory") 1))
"""


def stackstitch(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stackstitch.engine.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The run failed with exactly one line on stderr and no traceback."""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.fixture
def values_wat(tmp_path):
    path = tmp_path / "values.wat"
    path.write_text(VALUES_WAT)
    return path


# ---------------------------------------------------------------- usage and help

def test_help_lists_the_subcommands():
    proc = stackstitch("--help")
    assert proc.returncode == 0
    assert "run" in proc.stdout and "wast" in proc.stdout


@pytest.mark.parametrize("command", ["run", "wast"])
def test_subcommand_help(command):
    proc = stackstitch(command, "--help")
    assert proc.returncode == 0
    assert f"stackstitch {command}" in proc.stdout


@pytest.mark.parametrize("argv", [["lldb", "--help"], ["gdb", "--help"], ["run", "--help"],
                                  ["run", "VALUES", "--invoke", "add", "1", "2"]])
def test_a_closed_pipe_is_no_traceback(values_wat, argv):
    """`stackstitch ... | head` once head has gone: no traceback, the status a shell gives a
    program that SIGPIPE ended, or success if the output was never flushed."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    argv = [str(values_wat) if word == "VALUES" else word for word in argv]
    proc = subprocess.run([sys.executable, "-m", "stackstitch.engine.cli", *argv], stdout=write_end,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    os.close(write_end)
    assert proc.stderr == "" and proc.returncode in (0, 141), (proc.returncode, proc.stderr)


@pytest.mark.parametrize("argv", [
    [],
    ["frobnicate"],
    ["run"],
    ["wast"],
    ["run", "x.wasm", "--stack-size", "lots"],
    ["run", "x.wasm", "--switching", "magic"],
    ["run", "x.wasm", "--trap-format", "xml"],
])
def test_usage_errors_exit_2(argv):
    proc = stackstitch(*argv)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv, line", [
    ([], "stackstitch: error: missing COMMAND (see `stackstitch --help`)"),
    (["run"], "stackstitch run: error: missing MODULE (see `stackstitch run --help`)"),
    (["run", "--invoke", "main"], "stackstitch run: error: missing MODULE (see `stackstitch run --help`)"),
    (["wast"], "stackstitch wast: error: missing FILE (see `stackstitch wast --help`)"),
    (["gdb"], "stackstitch gdb: error: missing MODULE (see `stackstitch gdb --help`)"),
    (["lldb"], "stackstitch lldb: error: missing MODULE (see `stackstitch lldb --help`)"),
    (["frobnicate"], "stackstitch: error: argument COMMAND: invalid choice: 'frobnicate' (choose from "
                     "'run', 'compile', 'perf', 'trace', 'gdb', 'lldb', 'wast') (see `stackstitch --help`)"),
    (["run", "x.wasm", "--switching", "magic"], "stackstitch run: error: argument --switching: invalid "
     "choice: 'magic' (choose from 'native', 'libcall') (see `stackstitch run --help`)"),
    (["run", "x.wasm", "--bogus"], "stackstitch run: error: unrecognized arguments: --bogus "
                                   "(see `stackstitch run --help`)"),
    (["gdb", "x.wasm", "--switching", "magic"], "stackstitch gdb: error: argument --switching: invalid "
     "choice: 'magic' (choose from 'native', 'libcall') (see `stackstitch gdb --help`)"),
])
def test_usage_errors_are_one_line_pointing_to_help(argv, line):
    proc = stackstitch(*argv)
    assert proc.returncode == 2 and one_error_line(proc) == line


def test_python_dash_m_stackstitch(tmp_path):
    """`python -m stackstitch` is the `stackstitch` command, from any directory."""
    hello = Path(__file__).resolve().parent.parent / "engine" / "examples" / "hello.wat"
    proc = subprocess.run([sys.executable, "-m", "stackstitch", "run", str(hello), "--invoke", "main"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "385\n", "")
    usage = subprocess.run([sys.executable, "-m", "stackstitch", "run"], capture_output=True, text=True,
                           cwd=tmp_path, timeout=120)
    assert usage.returncode == 2 and one_error_line(usage).startswith("stackstitch run: error: missing MODULE")


def test_wrong_argument_count_is_a_usage_error(values_wat):
    proc = stackstitch("run", values_wat, "--invoke", "add", "1")
    assert proc.returncode == 2
    assert one_error_line(proc) == ("stackstitch: error: add takes 2 arguments (i32, i32), 1 given "
                                    "(see `stackstitch run --help`)")


def test_unparseable_argument_is_a_usage_error(values_wat):
    proc = stackstitch("run", values_wat, "--invoke", "add", "1", "one")
    assert proc.returncode == 2
    assert "`one` is not an integer" in one_error_line(proc)


# ---------------------------------------------------------------- modules that cannot load

def test_missing_file(tmp_path):
    proc = stackstitch("run", tmp_path / "absent.wasm")
    assert proc.returncode == 1
    assert one_error_line(proc).startswith("stackstitch: error: cannot read")


def test_garbage_bytes(tmp_path):
    path = tmp_path / "garbage.wasm"
    path.write_bytes(b"\x7fELF not wasm at all")
    proc = stackstitch("run", path)
    assert proc.returncode == 1
    assert one_error_line(proc).startswith("stackstitch: error:")


def test_truncated_module(tmp_path):
    path = tmp_path / "truncated.wasm"
    path.write_bytes(b"\0asm\x01\0\0\0\x01\x07\x01\x60\x02\x7f")  # type section cut short
    proc = stackstitch("run", path)
    assert proc.returncode == 1
    assert one_error_line(proc).startswith("stackstitch: error:")


def test_malformed_text(tmp_path):
    path = tmp_path / "broken.wat"
    path.write_text("(module (func (result i32) i32.const))")
    proc = stackstitch("run", path)
    assert proc.returncode == 1
    assert one_error_line(proc).startswith("stackstitch: error:")


def test_unknown_import_fails_to_link(tmp_path):
    path = tmp_path / "needs.wat"
    path.write_text('(module (import "nowhere" "f" (func)))')
    proc = stackstitch("run", path)
    assert proc.returncode == 1
    assert one_error_line(proc).startswith("stackstitch: error:")


def test_missing_export(values_wat):
    proc = stackstitch("run", values_wat, "--invoke", "absent")
    assert proc.returncode == 1
    assert "no exported function named 'absent'" in one_error_line(proc)


# ---------------------------------------------------------------- running

def test_bundled_example():
    proc = stackstitch("run", REPO_ROOT / "engine" / "examples" / "hello.wat", "--invoke", "main")
    assert (proc.returncode, proc.stdout) == (0, "385\n"), proc.stderr


def test_results_are_printed_one_per_line(values_wat):
    proc = stackstitch("run", values_wat, "--invoke", "echo", "--", "-7", "0x10", "-inf", "0.1")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["-7", "16", "-inf", "0.1"]


def test_no_results_prints_nothing(values_wat):
    proc = stackstitch("run", values_wat, "--invoke", "nothing")
    assert (proc.returncode, proc.stdout) == (0, "")


def test_trap_exits_134(values_wat):
    proc = stackstitch("run", values_wat, "--invoke", "div", "1", "0")
    assert proc.returncode == 134
    assert "integer divide by zero" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_json_trap_format(values_wat):
    proc = stackstitch("run", values_wat, "--trap-format=json", "--invoke", "div", "1", "0")
    assert proc.returncode == 134
    report = json.loads(proc.stderr)
    assert report["trap"].startswith("integer divide by zero")
    assert isinstance(report["frames"], list) and isinstance(report["stacks"], list)


def test_unhandled_suspension_exits_134(tmp_path):
    path = tmp_path / "suspend.wat"
    path.write_text('(module (tag $t) (func (export "main") (suspend $t)))')
    proc = stackstitch("run", path, "--invoke", "main")
    assert proc.returncode == 134
    assert "unhandled" in proc.stderr


def test_unsupported_instruction_is_a_load_error(tmp_path):
    path = tmp_path / "struct.wat"
    path.write_text('(module (type $s (struct)) (func (export "main") (drop (struct.new $s))))')
    proc = stackstitch("run", path, "--invoke", "main")
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "unsupported instruction" in proc.stderr


def test_start_function_runs_without_invoke(tmp_path):
    path = tmp_path / "start.wat"
    path.write_text("(module (func $s unreachable) (start $s))")
    proc = stackstitch("run", path)
    assert proc.returncode == 134
    assert "unreachable" in proc.stderr


def test_engine_options_are_accepted(values_wat):
    proc = stackstitch("run", values_wat, "--stack-size", "1M", "--switching", "libcall",
                       "--invoke", "add", "2", "3")
    assert (proc.returncode, proc.stdout) == (0, "5\n"), proc.stderr


# ---------------------------------------------------------------- value conversions

@pytest.mark.parametrize("valtype, text, raw", [
    ("i32", "5", 5),
    ("i32", "-1", 0xFFFF_FFFF),
    ("i32", "0xffffffff", 0xFFFF_FFFF),
    ("i32", "-0x80000000", 0x8000_0000),
    ("i64", "-9223372036854775808", 1 << 63),
    ("i64", "18446744073709551615", (1 << 64) - 1),
    ("f32", "1.5", 0x3FC0_0000),
    ("f32", "-0", 0x8000_0000),
    ("f32", "nan", 0x7FC0_0000),
    ("f32", "-inf", 0xFF80_0000),
    ("f32", "1e40", 0x7F80_0000),
    ("f64", "0x1p-1", 0x3FE0_0000_0000_0000),
    ("f64", "inf", 0x7FF0_0000_0000_0000),
    (FUNCREF, "null", 0),
])
def test_parse_arg(valtype, text, raw):
    assert values.parse_arg(text, valtype) == raw


@pytest.mark.parametrize("valtype, text", [
    ("i32", "4294967296"), ("i32", "-2147483649"), ("i32", "1.5"), ("i64", ""),
    ("f32", "one"), ("f64", "0x"), (EXTERNREF, "7"), (RefType(False, "func"), "null"),
])
def test_parse_arg_rejects(valtype, text):
    with pytest.raises(ValueError):
        values.parse_arg(text, valtype)


# What `wasmtime run --invoke` prints for these bit patterns (checked against Wasmtime 49).
@pytest.mark.parametrize("valtype, raw, text", [
    ("i32", 0xFFFF_FFFF, "-1"),
    ("i64", 1 << 63, "-9223372036854775808"),
    ("f32", 0x3DCC_CCCD, "0.1"),
    ("f32", 0x7149_F2CA, "1000000000000000000000000000000"),
    ("f32", 0x0000_0001, "0.000000000000000000000000000000000000000000001"),
    ("f32", 0x4B80_0000, "16777216"),
    ("f32", 0x8000_0000, "-0"),
    ("f32", 0x7FC0_0001, "NaN"),
    ("f64", 0x3E7A_D7F2_9ABC_AF48, "0.0000001"),
    ("f64", 0x41678C29DCCCCCCD, "12345678.9"),
    ("f64", 0xFFF0_0000_0000_0000, "-inf"),
    (FUNCREF, 0, "<null funcref>"),
    (FUNCREF, 0x1000, "<funcref>"),
    (EXTERNREF, 0, "<null externref>"),
])
def test_format_result(valtype, raw, text):
    assert values.format_result(raw, valtype) == text


def test_float_printing_matches_wasmtime(require_tool, tmp_path):
    wasmtime = require_tool("wasmtime")
    path = tmp_path / "floats.wat"
    path.write_text('(module (func (export "f") (param f32 f64) (result f32 f64)'
                    ' local.get 0 local.get 1))')
    for f32, f64 in [("3.4028235e38", "1e-300"), ("0.3", "2.5e20"), ("-1e-10", "123.456")]:
        theirs = subprocess.run(
            [wasmtime, "run", "--invoke", "f", str(path), f32, f64],
            capture_output=True, text=True, check=True).stdout.splitlines()
        ours = [values.format_result(values.parse_arg(f32, "f32"), "f32"),
                values.format_result(values.parse_arg(f64, "f64"), "f64")]
        assert ours == theirs


def test_wast_nan_patterns():
    canonical = {"type": "f32", "value": "nan:canonical"}
    arithmetic = {"type": "f64", "value": "nan:arithmetic"}
    assert values.wast_matches(canonical, 0xFFC0_0000, None)
    assert not values.wast_matches(canonical, 0x7FC0_0001, None)
    assert values.wast_matches(arithmetic, 0x7FF8_0000_0000_0001, None)
    assert not values.wast_matches(arithmetic, 0x7FF0_0000_0000_0001, None)


def test_wast_values_compare_as_bit_patterns():
    assert values.wast_matches({"type": "i32", "value": "-1"}, 0xFFFF_FFFF, None)
    assert values.wast_matches({"type": "f32", "value": "2147483648"}, 0x8000_0000, None)
    assert not values.wast_matches({"type": "f32", "value": "0"}, 0x8000_0000, None)
    either = {"type": "either", "values": [{"type": "i32", "value": "1"},
                                           {"type": "i32", "value": "2"}]}
    assert values.wast_matches(either, 2, None) and not values.wast_matches(either, 3, None)
    assert values.wast_matches({"type": "funcref"}, 0x1000, None)
    assert values.wast_matches({"type": "refnull"}, 0, None)


# ---- --preload: instance linking --------------------------------------------------------------

LIBRARY_WAT = """(module
  (func (export "twice") (param i32) (result i32) local.get 0 i32.const 2 i32.mul)
  (func (export "divide") (param i32) (result i32) i32.const 100 local.get 0 i32.div_u))"""

USER_WAT = """(module
  (import "lib" "twice" (func $twice (param i32) (result i32)))
  (import "lib" "divide" (func $divide (param i32) (result i32)))
  (func (export "main") (param i32) (result i32) local.get 0 call $twice call $divide))"""


@pytest.fixture
def linked(tmp_path):
    (tmp_path / "lib.wat").write_text(LIBRARY_WAT)
    (tmp_path / "user.wat").write_text(USER_WAT)
    return tmp_path


def test_preloaded_module_is_linked(linked):
    proc = stackstitch("run", "--preload", f"lib={linked / 'lib.wat'}", linked / "user.wat",
                       "--invoke", "main", "5")
    assert (proc.returncode, proc.stdout) == (0, "10\n"), proc.stderr


def test_trap_report_spans_preloaded_modules(linked):
    proc = stackstitch("run", "--preload", f"lib={linked / 'lib.wat'}", linked / "user.wat",
                       "--invoke", "main", "0", "--trap-format=json")
    assert proc.returncode == 134
    assert [f["func_name"] for f in json.loads(proc.stderr)["frames"]] == ["divide", "main"]


@pytest.mark.parametrize("setting, status, message", [
    ("lib", 2, "invalid --preload 'lib': expected NAME=MODULE"),
    ("lib=missing.wat", 1, "missing.wat"),
])
def test_preload_errors(linked, setting, status, message):
    proc = stackstitch("run", "--preload", setting, linked / "user.wat", "--invoke", "main", "1")
    assert proc.returncode == status
    assert message in one_error_line(proc)


def test_without_preload_the_import_is_missing(linked):
    proc = stackstitch("run", linked / "user.wat", "--invoke", "main", "1")
    assert proc.returncode == 1 and "unknown import: lib::twice" in one_error_line(proc)
