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
from stackstitch.perf_map.flamegraph import fold_perf_script, render_svg
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
    script = perf_out(perf, "script", "-F", "comm,period,ip,sym", "-i", tmp_path / "perf.jit.data")
    stacks = fold_perf_script(script)
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
    script = perf_out(perf, "script", "-F", "comm,period,ip,sym", "-i", tmp_path / "perf.jit.data")
    spinning = [stack for stack in fold_perf_script(script) if stack[-1] == "spin"]
    assert spinning
    crossing = ("stackstitch_entry", "main", "stackstitch_continuation_start", "generator", "spin")
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
    folded = fold_perf_script(PERF_SCRIPT)
    assert folded == {
        ("python", "stackstitch_entry", "middle_sum", "leaf_mul"): 750000,
        ("python", "stackstitch_entry", "middle_sum", "busy_div"): 250000,
    }


def test_flame_graph_nests_callees_on_their_callers():
    svg = ET.fromstring(render_svg(fold_perf_script(PERF_SCRIPT), width=1020))
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
