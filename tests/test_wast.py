"""`stackstitch wast`: counting, reporting, and the core conformance suite."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import SPEC_TESTS

MIN_PASS_RATE = 0.98

PASSING = """
(module $m
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "div") (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1)))
  (func (export "nan") (result f32) (f32.div (f32.const 0) (f32.const 0)))
  (global (export "g") i32 (i32.const 42)))
(register "m" $m)
(module (import "m" "add" (func $add (param i32 i32) (result i32)))
  (import "spectest" "print_i32" (func (param i32)))
  (func (export "twice") (param i32) (result i32) (call $add (local.get 0) (local.get 0))))
(assert_return (invoke "twice" (i32.const 21)) (i32.const 42))
(assert_return (invoke $m "add" (i32.const -1) (i32.const 0)) (i32.const 0xffffffff))
(assert_return (invoke $m "nan") (f32.const nan:canonical))
(assert_return (get $m "g") (i32.const 42))
(assert_trap (invoke $m "div" (i32.const 1) (i32.const 0)) "integer divide by zero")
(assert_invalid (module (func (result i32) (i64.const 0))) "type mismatch")
(assert_malformed (module quote "(func") "unexpected end")
(assert_malformed (module binary "\\00asm\\01\\00\\00") "unexpected end")
(assert_unlinkable (module (import "m" "absent" (func))) "unknown import")
(assert_trap (module (func $f unreachable) (start $f)) "unreachable")
"""

FAILING = """
(module (func (export "one") (result i32) (i32.const 1)))
(assert_return (invoke "one") (i32.const 1))
(assert_return (invoke "one") (i32.const 2))
(assert_trap (invoke "one") "unreachable")
"""


def stackstitch_wast(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stackstitch.engine.cli", "wast", *map(str, args)],
                          capture_output=True, text=True, timeout=3600)


def totals(stdout: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+) passed, (\d+) failed", stdout.splitlines()[-1])
    assert match, stdout
    return int(match.group(1)), int(match.group(2))


@pytest.fixture
def scripts(tmp_path):
    (tmp_path / "good.wast").write_text(PASSING)
    (tmp_path / "bad.wast").write_text(FAILING)
    return tmp_path


def test_passing_script(scripts):
    proc = stackstitch_wast(scripts / "good.wast")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["PASS good.wast (13 commands)", "13 passed, 0 failed"]


def test_failures_are_counted_per_command(scripts):
    proc = stackstitch_wast(scripts / "good.wast", scripts / "bad.wast")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    # Without -v, a failing script's line says why: its first failure.
    assert lines[:2] == ["PASS good.wast (13 commands)",
                         "FAIL bad.wast: 2 of 4 failed, first at line 4: expected i32:2, got i32:1"]
    assert totals(proc.stdout) == (15, 2)


def test_verbose_names_line_and_reason(scripts):
    proc = stackstitch_wast("-v", scripts / "bad.wast")
    assert "  bad.wast:4: expected i32:2, got i32:1" in proc.stdout
    assert "  bad.wast:5: expected trap 'unreachable', returned 1 results" in proc.stdout


def test_missing_and_unparseable_scripts_fail(tmp_path):
    (tmp_path / "junk.wast").write_text("(module (func")
    proc = stackstitch_wast(tmp_path / "absent.wast", tmp_path / "junk.wast")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0] == "FAIL absent.wast: 1 of 1 failed: no such file"
    assert lines[1].startswith("FAIL junk.wast: 1 of 1 failed: cannot read script: expected `)`")
    assert totals(proc.stdout) == (0, 2)
    assert "Traceback" not in proc.stderr


def test_a_hanging_command_times_out(tmp_path):
    (tmp_path / "hang.wast").write_text("""
        (module (func (export "spin") (loop (br 0))) (func (export "ok")))
        (invoke "spin")
        (invoke "ok")
    """)
    proc = stackstitch_wast("--timeout", "1", "-v", tmp_path / "hang.wast")
    assert proc.returncode == 1
    assert "hang.wast:3:" in proc.stdout
    assert totals(proc.stdout)[1] >= 1


def spec_scripts(*folders: str) -> list:
    scripts = sorted(path for folder in folders for path in (SPEC_TESTS / folder).glob("*.wast"))
    if not scripts:
        pytest.fail(f"no spec tests in {SPEC_TESTS} {folders}")
    return scripts


def test_core_conformance(record_conformance):
    proc = stackstitch_wast(*spec_scripts("core"))
    passed, failed = totals(proc.stdout)
    record_conformance("core", proc.stdout.splitlines()[-1])
    assert passed / (passed + failed) >= MIN_PASS_RATE, "\n".join(
        line for line in proc.stdout.splitlines() if line.startswith("FAIL"))


@pytest.mark.parametrize("switching", ["native", "libcall"])
def test_stack_switching_conformance(record_conformance, switching):
    """The proposal's tests and worked examples: every command passes, in both modes."""
    proc = stackstitch_wast("-v", f"--switching={switching}",
                            *spec_scripts("stack-switching", "examples"))
    record_conformance(f"stack-switching ({switching})", proc.stdout.splitlines()[-1])
    assert proc.returncode == 0, proc.stdout
