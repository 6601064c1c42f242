"""Switch tracing: the events generated code and stubs write (both switching modes), the
timeline and its Chrome trace-event JSON, `stackstitch trace record/report`, and the
promise that code compiled without tracing has none of it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import statistics
import time
from pathlib import Path

import pytest
from capstone import CS_ARCH_X86, CS_MODE_64, Cs

from stackstitch.engine import layout as L
from stackstitch.engine.compiler.codegen import ModuleCompiler
from stackstitch.engine.compiler.common import NUM_BUILTINS
from stackstitch.engine.frontend.loader import load_module
from stackstitch.engine.host.wasi import Wasi
from stackstitch.engine.runtime.store import Store, Trap
from stackstitch.engine.runtime.tracing import read_trace
from stackstitch.perf_map.chrome_trace import chrome_trace
from stackstitch.perf_map.timeline import MAIN, build_timeline

DATA = Path(__file__).resolve().parent / "data" / "profiling"
KERNELS = Path(__file__).resolve().parent.parent / "benchmarks" / "kernels"
MODES = ("native", "libcall")
KIND_NAMES = {L.TRACE_ENTER: "enter", L.TRACE_EXIT: "exit", L.TRACE_NEW: "new",
              L.TRACE_RESUME: "resume", L.TRACE_SUSPEND: "suspend", L.TRACE_SWITCH: "switch",
              L.TRACE_RETURN: "return", L.TRACE_TRAP: "trap", L.TRACE_RESUME_THROW: "resume_throw"}

# sequences.wat, event by event: (kind, detail named, from id, to id); 0 is the main stack.
SEQUENCE_EVENTS = [
    ("enter", None, 0, 0),
    ("new", "middle", 0, 1), ("resume", None, 0, 1),
    ("new", "gen", 1, 2), ("resume", None, 1, 2),
    ("suspend", "yield", 2, 0), ("resume", None, 0, 2),  # gen and middle suspend together
    ("suspend", "yield", 2, 0), ("resume", None, 0, 2),
    ("return", None, 2, 1), ("return", None, 1, 0),
    ("new", "task_a", 0, 3), ("resume", None, 0, 3),
    ("new", "task_b", 3, 4), ("switch", "swap", 3, 4), ("switch", "swap", 4, 3),
    ("return", None, 3, 0),
    ("new", "catcher", 0, 5), ("resume", None, 0, 5), ("suspend", "wait", 5, 0),
    ("resume_throw", "exn", 0, 5), ("return", None, 5, 0),
    ("new", "crash", 0, 6), ("resume", None, 0, 6), ("trap", L.TRAP_UNREACHABLE, 6, 0),
    ("exit", None, 0, 0),
]


def traced_run(module: str, mode: str, *args, events: int = 1 << 16):
    store = Store(switching=mode, trace_events=events)
    wasi = Wasi(args=["traced"], env={})
    module = load_module(str(module))
    instance = store.instantiate(module, wasi.imports(store))
    if module.imports:
        wasi.bind(instance)
    return store, instance.exports["main"], args


@pytest.mark.parametrize("mode", MODES)
def test_every_switching_instruction_writes_its_event(mode):
    store, main, _ = traced_run(DATA / "sequences.wat", mode)
    with pytest.raises(Trap, match="unreachable"):
        main()
    log = read_trace(store)
    named = [(KIND_NAMES[e.kind],
              log.functions.get(e.detail) or log.tags.get(e.detail & ~1) or (e.detail or None),
              e.source, e.target) for e in log.events]
    assert named == SEQUENCE_EVENTS
    times = [e.ns for e in log.events]
    assert times == sorted(times) and log.lost == 0


@pytest.mark.parametrize("mode", MODES)
def test_task_run_times_sum_to_the_wall_time_of_the_run(mode):
    """A 10-task `switch` scheduler, 100,000 switches: the tasks' running intervals, timed
    by the timestamp counter, against the wall clock around the call."""
    def one_run():
        store, main, _ = traced_run(DATA / "scheduler.wat", mode, events=1 << 18)
        before = time.monotonic_ns()
        assert main(100_000, 60) == [0]  # 100,000 switches from task 0 on: task 0 makes the last
        wall = time.monotonic_ns() - before
        timeline = build_timeline(read_trace(store))
        tasks = [t for t in timeline.tracks.values() if t.id != MAIN]
        run = {t.id: sum(i.end - i.start for i in t.intervals if i.state == "running") for t in tasks}
        return abs(sum(run.values()) - wall) / wall, timeline, tasks, run

    # The best of three: a busy machine can only add time no task is charged with.
    deviation, timeline, tasks, run = min((one_run() for _ in range(3)), key=lambda r: r[0])
    assert len(tasks) == 10 and {t.name for t in tasks} == {"task"}
    assert deviation < 0.05, (run, deviation)
    # Task i works (i + 1) units per turn: later tasks run longer. Each turn also has a fixed
    # cost, and a busy machine preempts some turns, so the halves are compared by each
    # task's median turn.
    by_task = [statistics.median(i.end - i.start for i in t.intervals if i.state == "running")
               for t in sorted(tasks, key=lambda t: t.id)]
    assert sum(by_task[5:]) > 1.5 * sum(by_task[:5]), by_task
    for track in timeline.tracks.values():  # a stack runs or waits, never both at once
        spans = sorted((i.start, i.end) for i in track.intervals)
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    assert sum(len(t.intervals) for t in tasks) > 2 * 100_000 - 10


# ---- the Chrome trace-event format --------------------------------------------------------

# What the Trace Event Format requires of each event this writer uses, by phase: the
# fields and their JSON types (int also stands for float where times are concerned).
NUMBER = (int, float)
PHASE_FIELDS = {
    "M": {"name": str, "pid": int, "tid": int, "args": dict},
    "X": {"name": str, "cat": str, "pid": int, "tid": int, "ts": NUMBER, "dur": NUMBER},
    "i": {"name": str, "pid": int, "tid": int, "ts": NUMBER, "s": str},
    "s": {"name": str, "cat": str, "pid": int, "tid": int, "ts": NUMBER, "id": int},
    "f": {"name": str, "cat": str, "pid": int, "tid": int, "ts": NUMBER, "id": int, "bp": str},
}


def check_trace_event_format(document: dict) -> None:
    assert set(document) <= {"traceEvents", "displayTimeUnit", "otherData"}
    assert document["displayTimeUnit"] in ("ms", "ns")
    starts, finishes = {}, {}
    for event in document["traceEvents"]:
        fields = PHASE_FIELDS[event["ph"]]
        for name, kind in fields.items():
            assert isinstance(event[name], kind) and not isinstance(event[name], bool), (name, event)
        if event["ph"] in "Xisf":
            assert event["ts"] >= 0
        if event["ph"] == "X":
            assert event["dur"] >= 0
        if event["ph"] == "i":
            assert event["s"] in "gpt"
        if event["ph"] == "M":
            assert event["name"] in ("process_name", "thread_name", "thread_sort_index")
        if event["ph"] == "s":
            starts[event["id"]] = event
        if event["ph"] == "f":
            assert event["bp"] == "e"
            finishes[event["id"]] = event
    assert starts.keys() == finishes.keys()  # every flow arrow has both ends
    for ident, start in starts.items():
        assert start["ts"] <= finishes[ident]["ts"]


@pytest.mark.parametrize("mode", MODES)
def test_chrome_trace_follows_the_trace_event_format(mode):
    store, main, _ = traced_run(DATA / "scheduler.wat", mode)
    main(40, 5)
    document = json.loads(json.dumps(chrome_trace(build_timeline(read_trace(store)), "t")))
    check_trace_event_format(document)
    events = document["traceEvents"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert names[0] == "main stack" and len(names) == 11
    assert names[3] == "continuation 3 (task)"
    suspended = [e for e in events if e.get("cat") == "suspended"]
    assert suspended and all(e["name"] == "suspended: yield" for e in suspended)
    flows = [e for e in events if e["ph"] == "f"]
    assert len(flows) == 42  # the first resume, 40 switches, the last task's return
    # Each arrow ends where a running interval of its target begins, resumed by its source.
    runs = {(e["tid"], e["ts"]): e for e in events if e.get("cat") == "run"}
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    for flow in flows:
        run = runs[(flow["tid"], flow["ts"])]
        assert run["args"]["resumed_by"] == starts[flow["id"]]["tid"]


# ---- the command line ---------------------------------------------------------------------

def stackstitch(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stackstitch.engine.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_trace_record_and_report(tmp_path):
    trace, html = tmp_path / "trace.json", tmp_path / "timeline.html"
    proc = stackstitch("trace", "record", "-o", trace, "--html", html, DATA / "scheduler.wat",
                       "--switching=libcall", "--invoke", "main", "300", "5")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"
    assert re.search(r"^stackstitch: [\d,]+ events written to .*trace\.json", proc.stderr, re.M)
    check_trace_event_format(json.loads(trace.read_text()))
    assert html.read_text().startswith("<!DOCTYPE html>")
    proc = stackstitch("trace", "report", trace)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("11 stacks, ")
    rows = {line.split("  ")[0].strip(): line for line in lines[2:]}
    assert set(rows) == {"main stack"} | {f"continuation {i} (task)" for i in range(1, 11)}
    # Task 2 was resumed 30 times, always by task 1, and was suspended on yield.
    assert re.search(r"\s30\s+[\d.]+ [um]?s on yield\s+continuation 1 \(task\) \(30\)$",
                     rows["continuation 2 (task)"]), rows["continuation 2 (task)"]


def test_trace_errors_are_one_line(tmp_path):
    def one_line(proc) -> str:
        assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
        assert len(proc.stderr.splitlines()) == 1, proc.stderr
        return proc.stderr
    assert "no trace at" in one_line(stackstitch("trace", "report", tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text("{not json")
    assert "not JSON" in one_line(stackstitch("trace", "report", tmp_path / "bad.json"))
    assert "invalid choice" in one_line(stackstitch("trace", "record", DATA / "scheduler.wat",
                                                    "--switching=maybe"))
    assert "no such directory" in one_line(stackstitch("trace", "record", "-o", tmp_path / "no/t.json",
                                                       DATA / "scheduler.wat"))


def test_a_full_ring_keeps_the_latest_events_and_says_how_many_were_lost(tmp_path):
    trace = tmp_path / "trace.json"
    proc = stackstitch("trace", "record", "-o", trace, "--events", "100", DATA / "scheduler.wat",
                       "--invoke", "main", "500", "1")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"128 events written .*, the oldest [\d,]+ lost", proc.stderr), proc.stderr
    document = json.loads(trace.read_text())
    # 500 switches, 10 cont.new, enter, the first resume, the last return, exit: 514 events
    assert document["otherData"]["lost_events"] == 514 - 128
    assert "oldest events lost" in stackstitch("trace", "report", trace).stdout


# ---- no tracing, no trace code ------------------------------------------------------------

def normalized(code: bytes) -> list[str]:
    """Instructions with branch and rip-relative targets left out (they move when code is
    inserted before them)."""
    out = []
    for insn in Cs(CS_ARCH_X86, CS_MODE_64).disasm(code, 0):
        operands = insn.op_str
        if insn.mnemonic.startswith("j") or insn.mnemonic == "call" or "rip" in operands:
            operands = re.sub(r"0x[0-9a-f]+|\[rip [+-] \w+\]", "TARGET", operands)
        out.append(f"{insn.mnemonic} {operands}")
    return out


def trace_insertion(run: list[str]) -> bool:
    """Instructions tracing adds: a whole event (it reads the timestamp counter), or the
    event word in r8 (and the switch tag it is made of) before a switch."""
    return any(i.startswith("rdtsc") for i in run) or all(
        re.match(r"(mov|shl|or) r8d?\b|mov rdx, qword ptr \[r15", i) for i in run)


@pytest.mark.parametrize("mode", MODES)
def test_without_tracing_the_code_has_no_trace_instructions(mode):
    """For every function of the switching kernels: the code compiled without tracing is
    the traced code with exactly its trace insertions taken out."""
    checked = 0
    for kernel in sorted(KERNELS.glob("switch_*.wat")) + [DATA / "sequences.wat"]:
        module = load_module(str(kernel))
        store = Store()
        type_ids = store.canonical_type_ids(module)
        plain, traced = (ModuleCompiler(module, type_ids, vm_layout(module), libcall=mode == "libcall",
                                        tracing=tracing).compile() for tracing in (False, True))
        for f, g in zip(plain.functions, traced.functions):
            off = normalized(plain.code[f.start:f.end])
            on = normalized(traced.code[g.start:g.end])
            assert not any(i.startswith("rdtsc") for i in off)
            extra, k = [], 0
            for insn in on:  # `off` must be `on` with the insertions removed
                if k < len(off) and insn == off[k]:
                    if extra:
                        assert trace_insertion(extra), extra
                        extra = []
                    k += 1
                else:
                    extra.append(insn)
            assert k == len(off) and (not extra or trace_insertion(extra)), (kernel.name, f.index)
            checked += 1
    assert checked > 10


def vm_layout(module):
    return L.VmctxLayout(module.num_imported_funcs + len(module.funcs),
                         len(module.imports_of("global")) + len(module.globals),
                         len(module.imports_of("table")) + len(module.tables), NUM_BUILTINS,
                         len(module.imports_of("memory")) + len(module.memories),
                         len(module.imports_of("tag")) + len(module.tags))
