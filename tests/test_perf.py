"""perf support: perf maps, jitdump, `perf record`/`inject`/`report` with real perf, flame
graphs, and the promise that runs without the flags pay nothing."""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Store
from stackstitch.perf_map import perftool
from stackstitch.perf_map.flamegraph import render_svg
from stackstitch.perf_map.samples import SCRIPT_FIELDS, parse_perf_script
from stackstitch.perf_map.report import by_continuation, by_function
from stackstitch.perf_map.stacks import fold, frame_names, write_folded
from stackstitch.perf_map.jitdump import (EM_X86_64, CodeLoad, DebugInfo, JitdumpFormatError,
                                          JitdumpWriter, UnwindingInfo, read_jitdump)
from stackstitch.perf_map.observers import observers_from_args
from stackstitch.perf_map.perfmap import PerfMapWriter, perf_map_path, read_perf_map

# Time goes to $leaf_mul and $busy_div, called from $middle_sum; "main" has no name.
PROFILED_WAT = """
(module
  (func $leaf_mul (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (local.set $acc (i32.const 1))
    (block $done (loop $top
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $top)))
    (local.get $acc))
  (func $middle_sum (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (block $done (loop $top
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $acc (i32.xor (local.get $acc) (call $leaf_mul (i32.const 2000))))
      (local.set $acc (i32.add (local.get $acc) (call $busy_div (i32.const 500))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $top)))
    (local.get $acc))
  (func $busy_div (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (local.set $acc (i32.const 0x7fffffff))
    (block $done (loop $top
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $acc (i32.add (i32.div_u (local.get $acc) (i32.add (local.get $i) (i32.const 3)))
                               (i32.const 0x7ffffff)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $top)))
    (local.get $acc))
  (func (export "main") (param $n i32) (result i32)
    (call $middle_sum (local.get $n))))
"""
NAMED = {"leaf_mul", "middle_sum", "busy_div"}

# $spin runs inside a continuation that main resumes over and over.
CONTINUATION_WAT = """
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (tag $yield)
  (func $spin (param $n i32) (result i32)
    (local $i i32) (local $acc i32)
    (block $done (loop $top
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $top)))
    (local.get $acc))
  (func $generator
    (loop $l
      (drop (call $spin (i32.const 3000)))
      (suspend $yield)
      (br $l)))
  (elem declare func $generator)
  (func $main (export "main") (param $n i32) (result i32)
    (local $k (ref null $ct)) (local $i i32)
    (local.set $k (cont.new $ct (ref.func $generator)))
    (block $done (loop $top
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (block $on_yield (result (ref $ct))
        (resume $ct (on $yield $on_yield) (local.get $k))
        (return (i32.const -1)))
      (local.set $k)
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $top)))
    (local.get $i)))
"""
ITERATIONS = "150000"  # about half a second of Wasm

# The profiled process: what `stackstitch run --perf-map --jitdump=DIR` sets up.
WORKLOAD = """
import sys
from stackstitch.engine.frontend.loader import load_module
from stackstitch.engine.runtime.store import Store
from stackstitch.perf_map.observers import observers_from_args
module_path, perf_map, jitdump_dir, n = sys.argv[1:]
store = Store(code_observers=observers_from_args(perf_map == "perf-map", jitdump_dir or None,
                                                 "profiled.wat"))
print(store.instantiate(load_module(module_path), {}).invoke("main", [int(n)])[0])
"""


@pytest.fixture
def profiled_wat(tmp_path) -> Path:
    path = tmp_path / "profiled.wat"
    path.write_text(PROFILED_WAT)
    return path


def stackstitch(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stackstitch.engine.cli", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.splitlines()
    assert proc.returncode != 0
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def perf_record(perf: str, data: Path, command: list[str]) -> subprocess.CompletedProcess:
    proc = subprocess.run([perf, "record", "-q", "-k", "1", "-e", "cpu-clock", "-g",
                           "--call-graph=fp", "-o", str(data), "--", *command],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def perf_out(perf: str, *args) -> str:
    proc = subprocess.run([perf, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def sample_symbols(perf: str, data: Path) -> list[tuple[int, str]]:
    """(ip, symbol) of every sample, call chains left out."""
    out = perf_out(perf, "script", "-G", "-F", "ip,sym", "-i", data)
    samples = []
    for line in out.splitlines():
        fields = line.split(None, 1)
        if fields and re.fullmatch(r"[0-9a-f]+", fields[0]):
            samples.append((int(fields[0], 16), fields[1].strip() if len(fields) > 1 else ""))
    return samples


def assert_named(samples, ranges) -> None:
    """Every sample inside a JIT code range is named after that range's function."""
    in_jit = [(ip, sym) for ip, sym in samples
              if any(start <= ip < start + size for start, size, _ in ranges)]
    assert len(in_jit) > 100, f"only {len(in_jit)} samples in JIT code"
    for ip, sym in in_jit:
        expected = next(name for start, size, name in ranges if start <= ip < start + size)
        assert sym == expected, f"sample at {ip:#x} named {sym!r}, expected {expected!r}"
    hot = {sym for _, sym in in_jit}
    assert {"leaf_mul", "busy_div"} <= hot, hot


# ---------------------------------------------------------------- writers, in process

def test_perf_map_lists_every_function_and_stub(tmp_path):
    writer = PerfMapWriter(str(tmp_path / "perf.map"))
    store = Store(code_observers=[writer])
    store.instantiate(load_bytes(PROFILED_WAT.encode()), {})
    writer.close()
    entries = read_perf_map(writer.path)
    names = [e.name for e in entries]
    assert NAMED | {"main", "stackstitch_entry", "stackstitch_trap"} <= set(names)
    assert all(e.size > 0 for e in entries)
    spans = sorted((e.start, e.start + e.size) for e in entries)
    assert all(end <= next_start for (_, end), (next_start, _) in zip(spans, spans[1:]))


def test_jitdump_records_code_lines_and_unwind_info(tmp_path):
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    writer = JitdumpWriter(str(tmp_path), source_name="profiled.wat")
    assert Path(writer.path).name == f"jit-{os.getpid()}.dump"
    store = Store(code_observers=[writer])
    module = load_bytes(PROFILED_WAT.encode())
    store.instantiate(module, {})
    writer.close()
    dump = read_jitdump(writer.path)
    assert (dump.header.version, dump.header.elf_mach, dump.header.pid) == (1, EM_X86_64, os.getpid())
    assert before <= dump.header.timestamp <= time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    loads = [r for r in dump.records if isinstance(r, CodeLoad)]
    assert NAMED | {"main", "stackstitch_entry"} <= {r.name for r in loads}
    assert [r.code_index for r in loads] == list(range(len(loads)))
    for load in loads:
        assert load.vma == load.code_addr
        assert ctypes.string_at(load.code_addr, len(load.code)) == load.code
    # DEBUG_INFO and UNWINDING_INFO come before the CODE_LOAD they describe.
    for k, record in enumerate(dump.records):
        if isinstance(record, DebugInfo):
            load = next(r for r in dump.records[k:] if isinstance(r, CodeLoad))
            assert record.code_addr == load.code_addr and record.entries
            for entry in record.entries:
                assert load.code_addr <= entry.address < load.code_addr + len(load.code)
                assert 8 <= entry.line < len(module.data)
                assert entry.filename == "profiled.wat"
        if isinstance(record, UnwindingInfo):
            assert isinstance(dump.records[k + 1], (DebugInfo, CodeLoad))
            assert 0 < record.eh_frame_hdr_size < len(record.data)
    assert sum(isinstance(r, UnwindingInfo) for r in dump.records) == len(loads)
    timestamps = [r.timestamp for r in dump.records]
    assert timestamps == sorted(timestamps)


def test_read_jitdump_rejects_garbage(tmp_path):
    bad = tmp_path / "jit-1.dump"
    bad.write_bytes(b"not a jitdump at all, but long enough for a header")
    with pytest.raises(JitdumpFormatError, match="bad magic"):
        read_jitdump(str(bad))


# ---------------------------------------------------------------- nothing unless asked

def test_runs_without_the_flags_have_no_observers_and_write_nothing(profiled_wat, tmp_path):
    assert Store().code_observers == []
    assert observers_from_args(False, None) == []
    proc = subprocess.Popen([sys.executable, "-m", "stackstitch.engine.cli", "run",
                             str(profiled_wat), "--invoke", "main", "10"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert not os.path.exists(perf_map_path(proc.pid))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profiled.wat"]


# ---------------------------------------------------------------- real perf

def test_jitdump_names_every_jit_sample_after_perf_inject(require_tool, profiled_wat, tmp_path):
    perf = require_tool("perf")
    out_dir = tmp_path / "profile"
    perf_record(perf, tmp_path / "perf.data",
                [sys.executable, "-c", WORKLOAD, profiled_wat, "", out_dir, ITERATIONS])
    perf_out(perf, "inject", "--jit", "-i", tmp_path / "perf.data", "-o", tmp_path / "perf.jit.data")
    dumps = list(out_dir.glob("jit-*.dump"))
    assert len(dumps) == 1
    ranges = [(r.code_addr, len(r.code), r.name) for r in read_jitdump(str(dumps[0])).records
              if isinstance(r, CodeLoad)]
    assert_named(sample_symbols(perf, tmp_path / "perf.jit.data"), ranges)
    # Frame-pointer call graphs walk from the leaves through their Wasm callers.
    script = perf_out(perf, "script", "-F", SCRIPT_FIELDS, "-i", tmp_path / "perf.jit.data")
    stacks = fold(parse_perf_script(script))
    assert any(stack[-3:] == ("main", "middle_sum", "leaf_mul") for stack in stacks)
    # Wasm offsets are the "line numbers" of the module's file.
    report = perf_out(perf, "report", "--stdio", "--no-children", "--sort", "sym,srcline",
                      "-i", tmp_path / "perf.jit.data")
    assert re.search(r"busy_div\s+profiled\.wat:\d+", report), report[:2000]


HOT_C = Path(__file__).resolve().parent / "data" / "perf" / "hot.c"


def test_jitdump_gives_c_source_lines_to_perf(require_tool, tmp_path):
    """DEBUG_INFO carries the C program's own lines (its DWARF), so perf attributes samples
    to `hot.c:LINE`."""
    from conftest import build_c_programs
    from sourcedebug import source_line
    perf = require_tool("perf")
    program = build_c_programs(tmp_path, HOT_C, "-nostdlib", "-fno-sanitize=undefined", "-Wl,--no-entry",
                               levels=("O0",), target="wasm32-freestanding")["O0"]
    out_dir = tmp_path / "profile"
    perf_record(perf, tmp_path / "perf.data", [sys.executable, "-m", "stackstitch.engine.cli", "run",
                                               f"--jitdump={out_dir}", program, "--invoke", "spin", "20000000"])
    dump = read_jitdump(str(next(out_dir.glob("jit-*.dump"))))
    names = {r.code_addr: r.name for r in dump.records if isinstance(r, CodeLoad)}
    files = {}
    for info in (r for r in dump.records if isinstance(r, DebugInfo)):
        files[names[info.code_addr]] = {(Path(e.filename).name, e.line) for e in info.entries}
    spin_lines = range(source_line(HOT_C, "unsigned spin("), source_line(HOT_C, "return x;") + 1)
    assert {name for name, _ in files["spin"]} == {"hot.c"} and all(line in spin_lines for _, line in files["spin"])

    perf_out(perf, "inject", "--jit", "-i", tmp_path / "perf.data", "-o", tmp_path / "perf.jit.data")
    report = perf_out(perf, "report", "--stdio", "--no-children", "--sort", "sym,srcline", "-g", "none",
                      "-i", tmp_path / "perf.jit.data")
    lines = {int(line) for line in re.findall(r"\bspin\s+hot\.c:(\d+)", report)}
    assert source_line(HOT_C, "the hot line") in lines and lines <= set(spin_lines), report[:3000]


def test_frame_pointer_call_graphs_cross_continuation_stacks(require_tool, tmp_path):
    perf = require_tool("perf")
    module = tmp_path / "generator.wat"
    module.write_text(CONTINUATION_WAT)
    out_dir = tmp_path / "profile"
    perf_record(perf, tmp_path / "perf.data",
                [sys.executable, "-c", WORKLOAD, module, "", out_dir, "30000"])
    perf_out(perf, "inject", "--jit", "-i", tmp_path / "perf.data", "-o", tmp_path / "perf.jit.data")
    script = perf_out(perf, "script", "-F", SCRIPT_FIELDS, "-i", tmp_path / "perf.jit.data")
    spinning = [stack for stack in fold(parse_perf_script(script)) if stack[-1] == "spin"]
    assert spinning
    crossing = ("stackstitch_entry", "main", "[continuation: generator]", "generator", "spin")
    assert any(stack[-5:] == crossing for stack in spinning), spinning[:5]


def test_perf_map_names_functions_in_perf_report(require_tool, profiled_wat, tmp_path):
    perf = require_tool("perf")
    data = tmp_path / "perf.data"
    proc = subprocess.Popen([perf, "record", "-q", "-k", "1", "-e", "cpu-clock", "-g",
                             "--call-graph=fp", "-o", str(data), "--", sys.executable, "-c",
                             WORKLOAD, str(profiled_wat), "perf-map", "", ITERATIONS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    pid = int(perf_out(perf, "script", "-F", "pid", "-i", data).split()[0])
    map_path = perf_map_path(pid)
    try:
        ranges = [(e.start, e.size, e.name) for e in read_perf_map(map_path)]
        assert_named(sample_symbols(perf, data), ranges)
        report = perf_out(perf, "report", "--stdio", "--no-children", "--sort", "sym", "-i", data)
        assert re.search(r"%\s+\[\.\] leaf_mul\b", report) and re.search(r"\[\.\] busy_div\b", report)
    finally:
        os.unlink(map_path)


def test_stackstitch_perf_record_and_report(require_tool, profiled_wat, tmp_path):
    require_tool("perf")
    out_dir = tmp_path / "profile"
    proc = stackstitch("perf", "record", "--output", out_dir, profiled_wat, "--invoke", "main",
                       ITERATIONS)
    assert proc.returncode == 0, proc.stderr
    assert (out_dir / "perf.jit.data").is_file() and list(out_dir.glob("jitted-*.so"))
    svg = tmp_path / "flame.svg"
    proc = stackstitch("perf", "report", "--output", out_dir, "--flamegraph", svg)
    assert proc.returncode == 0, proc.stderr
    assert "leaf_mul" in proc.stdout and "busy_div" in proc.stdout
    titles = [t.text for t in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}title")]
    assert any(t.startswith("leaf_mul ") for t in titles), titles[:20]


def test_stackstitch_perf_errors_are_one_line(tmp_path):
    assert "no profile" in one_error_line(stackstitch("perf", "report", "--output", tmp_path))
    missing = tmp_path / "missing.wat"
    assert "cannot read" in one_error_line(stackstitch("perf", "record", "--output", tmp_path,
                                                       missing, "--invoke", "main"))
    proc = stackstitch("perf", "frobnicate")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- flame graphs

PERF_SCRIPT = """\
python 250000
\t    7f00000000c8 leaf_mul (/tmp/jitted-1-6.so)
\t    7f00000000c4 middle_sum (/tmp/jitted-1-7.so)
\t    7f0000000107 stackstitch_entry (/tmp/jitted-1-0.so)

python 250000
\t    7f00000000d2 busy_div+0x52 (/tmp/jitted-1-8.so)
\t    7f00000000dc middle_sum (/tmp/jitted-1-7.so)
\t    7f0000000107 stackstitch_entry (/tmp/jitted-1-0.so)

python 500000
\t    7f00000000c8 leaf_mul (/tmp/jitted-1-6.so)
\t    7f00000000c4 middle_sum (/tmp/jitted-1-7.so)
\t    7f0000000107 stackstitch_entry (/tmp/jitted-1-0.so)
"""


def test_fold_perf_script_weights_stacks_by_period():
    folded = fold(parse_perf_script(PERF_SCRIPT))
    assert folded == {
        ("python", "stackstitch_entry", "middle_sum", "leaf_mul"): 750000,
        ("python", "stackstitch_entry", "middle_sum", "busy_div"): 250000,
    }


def test_flame_graph_nests_callees_on_their_callers():
    svg = ET.fromstring(render_svg(fold(parse_perf_script(PERF_SCRIPT)), width=1020))
    ns = "{http://www.w3.org/2000/svg}"
    boxes = {}
    for group in svg.iter(f"{ns}g"):
        name = group.find(f"{ns}title").text.split(" (")[0]
        rect = group.find(f"{ns}rect")
        boxes[name] = (float(rect.get("x")), float(rect.get("y")), float(rect.get("width")))
    assert boxes["middle_sum"][2] == pytest.approx(1000)
    assert boxes["leaf_mul"][2] == pytest.approx(750) and boxes["busy_div"][2] == pytest.approx(250)
    assert boxes["leaf_mul"][1] < boxes["middle_sum"][1] < boxes["stackstitch_entry"][1]
    assert boxes["leaf_mul"][0] == pytest.approx(boxes["busy_div"][0] + 250)  # by name


# ---------------------------------------------------------------- perf record's options

def test_perf_record_passes_run_options_and_frequency(require_tool, tmp_path):
    perf = require_tool("perf")
    module = tmp_path / "generator.wat"
    module.write_text(CONTINUATION_WAT)
    out_dir = tmp_path / "profile"
    proc = stackstitch("perf", "record", "-o", out_dir, "-F", "999", module, "--switching=libcall",
                       "--stack-size=64K", "--env", "PROFILED=1", "--invoke", "main", "2000")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2000"
    assert re.search(r"stackstitch: [\d,]+ samples written to .*perf\.jit\.data", proc.stderr), proc.stderr
    header = perf_out(perf, "report", "--header-only", "-i", out_dir / "perf.data")
    cmdline = re.search(r"^# cmdline : (.*)$", header, re.M).group(1).strip()
    assert " -F 999 " in cmdline, cmdline
    assert cmdline.endswith(f"run --jitdump={out_dir} {module} --switching=libcall --stack-size=64K "
                            "--env PROFILED=1 --invoke main 2000"), cmdline
    # The run's own status passes through: here a trap, on a stack too small to recurse on.
    deep = tmp_path / "deep.wat"
    deep.write_text("""(module (type $ft (func)) (type $ct (cont $ft))
      (func $down (call $down)) (elem declare func $down)
      (func (export "main") (resume $ct (cont.new $ct (ref.func $down)))))""")
    proc = stackstitch("perf", "record", "-o", out_dir, deep, "--stack-size=16K", "--invoke", "main")
    assert proc.returncode == 134 and "call stack exhausted" in proc.stderr, proc.stderr


def test_perf_record_rejects_wrong_run_options_before_perf_runs(tmp_path, profiled_wat):
    for args, message in (([profiled_wat, "--switching=sometimes"], "invalid choice"),
                          ([profiled_wat, "--stack-size=1"], "out of range"),
                          ([profiled_wat, "--jitdump=elsewhere"], "-o DIR")):
        proc = stackstitch("perf", "record", "-o", tmp_path / "out", *args)
        assert message in one_error_line(proc), (args, proc.stderr)
    proc = stackstitch("perf", "record", "-o", tmp_path / "out", "-F", "0", profiled_wat)
    assert proc.returncode == 2 and "expected a positive number" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_perf_record_prints_progress_while_it_runs(require_tool, tmp_path, capfd):
    require_tool("perf")
    module = tmp_path / "generator.wat"
    module.write_text(CONTINUATION_WAT)
    command = [sys.executable, "-m", "stackstitch.engine.cli", "run", str(module), "--invoke",
               "main", "60000"]
    status = perftool.record(str(tmp_path / "perf.data"), command, perftool.sampling_event(),
                             progress_seconds=0.2)
    assert status == 0
    err = capfd.readouterr().err
    lines = re.findall(r"^stackstitch: recording for \d+ s, [\d.]+ MB of samples so far$", err, re.M)
    assert len(lines) >= 2, err


def test_perf_event_paranoid_decides_the_event_or_says_how_to_allow_it(tmp_path, monkeypatch):
    assert perftool.event_for(1, is_privileged=False) == "cpu-clock"
    assert perftool.event_for(2, is_privileged=False) == "cpu-clock:u"  # own user space only
    assert perftool.event_for(3, is_privileged=True) == "cpu-clock"
    with pytest.raises(perftool.PerfError, match=r"is 3, .*sysctl kernel\.perf_event_paranoid=2"):
        perftool.event_for(3, is_privileged=False)
    monkeypatch.setattr(perftool, "PARANOID", str(tmp_path / "missing"))
    with pytest.raises(perftool.PerfError, match="no perf events"):
        perftool.sampling_event()


# ---------------------------------------------------------------- reports

HOST_AND_CONTINUATIONS = """\
python 100
\t    7f00000000c8 spin+0x10 (/tmp/p/jitted-1-6.so)
\t    7f00000000c4 generator (/tmp/p/jitted-1-7.so)
\t    7f00000000d2 stackstitch_continuation_start (/tmp/p/jitted-1-3.so)
\t    7f0000000107 main (/tmp/p/jitted-1-8.so)
\t    7f0000000121 stackstitch_entry (/tmp/p/jitted-1-0.so)
\t    7f1000006f7a ffi_call_unix64 (/usr/lib/x86_64-linux-gnu/libffi.so.8.1.2)
\t    7f1000006f10 ffi_call_int (/usr/lib/x86_64-linux-gnu/libffi.so.8.1.2)
\t    7f20000fa8ed _PyObject_MakeTpCall (/usr/lib/libpython3.11.so.1.0)
\t    7f20000fa000 _PyEval_EvalFrameDefault (/usr/lib/libpython3.11.so.1.0)

python 300
\tffffffff82260527 exc_page_fault ([kernel.kallsyms])
\tffffffff81000c82 asm_exc_page_fault ([kernel.kallsyms])
\t    7f2000164a2a PyObject_Malloc (/usr/lib/libpython3.11.so.1.0)
\t    7f2000164a00 _PyEval_EvalFrameDefault (/usr/lib/libpython3.11.so.1.0)

python 200
\t    7f00000000c4 generator (/tmp/p/jitted-1-7.so)
\t    7f00000000d2 stackstitch_continuation_start (/tmp/p/jitted-1-3.so)
\t    7f0000000107 main (/tmp/p/jitted-1-8.so)
\t    7f0000000121 stackstitch_entry (/tmp/p/jitted-1-0.so)
"""


def test_host_frames_are_grouped_and_continuation_boundaries_named(tmp_path):
    samples = parse_perf_script(HOST_AND_CONTINUATIONS)
    assert frame_names(samples[0]) == ["spin", "generator", "[continuation: generator]", "main",
                                       "stackstitch_entry", "[host: libffi]", "[host: python]"]
    assert frame_names(samples[1]) == ["[kernel]", "[host: python]"]
    folded = fold(samples)
    assert folded[("python", "[host: python]", "[kernel]")] == 300
    write_folded(folded, tmp_path / "folded.txt")
    lines = (tmp_path / "folded.txt").read_text().splitlines()
    assert "python;[host: python];[host: libffi];stackstitch_entry;main;[continuation: generator];" \
           "generator;spin 100" in lines and len(lines) == 3

    table = by_function(samples)
    assert re.search(r"^\s*50\.00%\s+50\.00%\s+1\s+\[kernel\]$", table, re.M), table
    assert re.search(r"^\s*33\.33%\s+50\.00%\s+1\s+generator$", table, re.M), table  # self, total
    table = by_continuation(samples)
    assert re.search(r"^\s*50\.00%\s+100\.00%\s+1\s+main stack$", table, re.M), table
    assert re.search(r"^\s*50\.00%\s+50\.00%\s+2\s+generator$", table, re.M), table


def test_perf_annotate_shows_instructions_wasm_offsets_and_samples(require_tool, profiled_wat, tmp_path):
    require_tool("perf")
    out_dir = tmp_path / "profile"
    proc = stackstitch("perf", "record", "-o", out_dir, "-F", "2000", profiled_wat, "--invoke",
                       "main", ITERATIONS)
    assert proc.returncode == 0, proc.stderr
    proc = stackstitch("perf", "annotate", "busy_div", "-o", out_dir)
    assert proc.returncode == 0, proc.stderr
    header, columns, *listing = proc.stdout.splitlines()
    total = int(re.match(r"busy_div: \d+ bytes at 0x[0-9a-f]+, ([\d,]+) samples", header).group(1)
                .replace(",", ""))
    assert total > 50
    rows = [re.match(r"^\s*(\d*)\s+(?:[\d.]+%)?\s+(?:profiled\.wat:(\d+))?\s+\+0x([0-9a-f]{4})  (.*)$", line)
            for line in listing]
    assert all(rows), listing
    assert sum(int(r.group(1) or 0) for r in rows) == total
    # The hot loop's division: a sample's pc is the next instruction to run after it.
    assert any("div" in before.group(4) and (before.group(1) or after.group(1))
               for before, after in zip(rows, rows[1:]))
    # Every position shown is a line of busy_div in the WAT text (the loader gave it DWARF).
    text = PROFILED_WAT.splitlines()
    first = next(n for n, line in enumerate(text, 1) if "(func $busy_div" in line)
    last = next(n for n, line in enumerate(text, 1) if n > first and "(func " in line)
    shown = [int(r.group(2)) for r in rows if r.group(2)]
    assert shown and all(first <= n < last for n in shown), (shown, first, last)
    assert "no JIT function named 'nothing'" in one_error_line(
        stackstitch("perf", "annotate", "nothing", "-o", out_dir))
