"""Stack switching on the real engine: WAT modules in tests/data/continuations/, run through
the Python API in both switching modes (native and libcall).

Covers generators, a `switch`-based scheduler, nested handlers, cont.bind, resume_throw,
exceptions crossing continuations, every continuation trap and the engine's reuse after
each, host calls from inside continuations (and suspensions that would cross a host
frame), fresh continuations (no stack until their first resume, their records
recycled), bounded memory under churn, many live continuations and many never resumed,
and the proof that resume, suspend and switch never call out to Python.
"""

from __future__ import annotations

import collections
import functools
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stackstitch.engine import layout as L
from stackstitch.engine.frontend.loader import load_bytes, load_module
from stackstitch.engine.runtime.store import Exhaustion, Store, Trap, WasmException
from stackstitch.engine.frontend.types import FuncType
from stackstitch.engine.host.wasi import ProcExit
from conftest import require_wasm_tools_for_module

require_wasm_tools_for_module()

DATA = Path(__file__).resolve().parent / "data" / "continuations"
MASK32 = 0xFFFFFFFF
RECORD_MASK = (1 << L.REVISION_SHIFT) - 1  # a continuation reference's record address


@functools.lru_cache(maxsize=None)
def module(name: str):
    """The decoded module tests/data/continuations/NAME.wat (parsed once per session)."""
    return load_module(DATA / f"{name}.wat")


@pytest.fixture(params=["native", "libcall"])
def switching(request) -> str:
    return request.param


@pytest.fixture
def store(switching) -> Store:
    """A store; afterwards no continuation stack may have been written past its low end."""
    store = Store(switching=switching)
    yield store
    assert store.continuations.damaged_canaries() == []


def countdown_sum(n: int) -> int:
    """What generator.wat's `sum(n)` returns: n + (n - 1) + ... + 1."""
    return n * (n + 1) // 2


# ---- generators, schedulers, handlers -----------------------------------------------------

@pytest.mark.parametrize("n", [0, 1, 2, 100, 10_000])
def test_generator(store, n):
    generator = store.instantiate(module("generator"), {})
    assert generator.invoke("sum", [n]) == [countdown_sum(n)]


def round_robin(steps: dict[int, int]) -> str:
    """The trace a fair round-robin scheduler produces: one step per turn."""
    queue = collections.deque(steps)
    left = dict(steps)
    trace = []
    while queue:
        task = queue.popleft()
        trace.append(str(task))
        left[task] -= 1
        if left[task]:
            queue.append(task)
    return "".join(trace)


# Steps per task, as in scheduler.wat's data segment.
SCHEDULER_STEPS = {1: 2, 2: 4, 3: 3, 4: 1, 5: 5, 6: 1, 7: 2, 8: 3}


@pytest.mark.parametrize("tasks", [3, 4, 8])
def test_switch_scheduler(store, tasks):
    scheduler = store.instantiate(module("scheduler"), {})
    expected = round_robin({t: SCHEDULER_STEPS[t] for t in range(1, tasks + 1)})
    [length] = scheduler.invoke("run", [tasks])
    assert scheduler.exports["memory"].read(64, length).decode() == expected


def test_scheduler_runs_again(store):
    """Finished tasks are gone; a second run in the same instance starts afresh."""
    scheduler = store.instantiate(module("scheduler"), {})
    four_tasks = round_robin({t: SCHEDULER_STEPS[t] for t in range(1, 5)})
    for _ in range(3):
        [length] = scheduler.invoke("run", [4])
        assert scheduler.exports["memory"].read(64, length).decode() == four_tasks


def test_suspend_skips_inner_handler(store):
    """innermost suspends $b past middle's resume (which handles only $a) to outer."""
    nested = store.instantiate(module("nested"), {})
    assert nested.invoke("outer", []) == [1122]
    # 1 innermost starts, 2 outer handles $b, 4 innermost continues, 5 middle handles $a,
    # 6 innermost returns, 7 middle's resume returns, 8 outer's resume returns.
    assert nested.invoke("log", []) == [1245678]


def test_cont_bind(store):
    bind = store.instantiate(module("bind"), {})
    assert bind.invoke("bind_fresh", [1, 2, 3]) == [123]
    assert bind.invoke("bind_all", [4, 5, 6]) == [456]
    assert bind.invoke("bind_suspended", [8, 9]) == [897]


def test_cont_bind_beyond_the_bound_values_limit_traps(store):
    """A record holds L.MAX_BOUND bound values; binding more traps instead of overflowing."""
    n = L.MAX_BOUND + 1
    params = " ".join(["i32"] * n)
    consts = " ".join(f"(i32.const {k})" for k in range(n))
    wat = f"""(module
      (type $fn (func (param {params}))) (type $cn (cont $fn))
      (type $f0 (func)) (type $c0 (cont $f0))
      (func $g (param {params})) (elem declare func $g)
      (func (export "bind_all") {consts} (cont.new $cn (ref.func $g)) (cont.bind $cn $c0) (drop)))"""
    instance = store.instantiate(load_bytes(wat.encode(), "bind_many.wat"), {})
    with pytest.raises(Trap, match="^too many values bound to one continuation$"):
        instance.invoke("bind_all", [])
    assert_generator_works(store)


# ---- exceptions ----------------------------------------------------------------------------

def test_resume_throw_into_suspended(store):
    throw = store.instantiate(module("throw"), {})
    assert throw.invoke("throw_into_suspended", []) == [42]   # caught inside the continuation
    assert throw.invoke("throw_through_suspended", []) == [105]  # caught by the resumer


def test_resume_throw_into_unstarted(store):
    throw = store.instantiate(module("throw"), {})
    assert throw.invoke("throw_into_unstarted", []) == [109]


@pytest.mark.parametrize("depth", [1, 2])
def test_exception_reaches_resumers_try_table(store, depth):
    throw = store.instantiate(module("throw"), {})
    assert throw.invoke("throw_inside", [depth]) == [107]


def test_uncaught_exception_leaves_continuations(store):
    throw = store.instantiate(module("throw"), {})
    with pytest.raises(WasmException) as caught:
        throw.invoke("throw_uncaught", [])
    assert caught.value.tag is throw.exports["e"]
    assert caught.value.payload == [7]
    assert_generator_works(store)


def test_continuation_ended_by_exception_is_consumed(store):
    throw = store.instantiate(module("throw"), {})
    throw.invoke("throw_through_suspended", [])
    with pytest.raises(Trap, match="^continuation already consumed$"):
        throw.invoke("resume_consumed", [])


# ---- traps, and the engine after them ----------------------------------------------------

TRAPS = [
    ("resume_finished", Trap, "continuation already consumed"),
    ("resume_stale", Trap, "continuation already consumed"),
    ("bind_finished", Trap, "continuation already consumed"),
    ("throw_finished", Trap, "continuation already consumed"),
    ("switch_finished", Trap, "continuation already consumed"),
    ("resume_null", Trap, "null continuation reference"),
    ("bind_null", Trap, "null continuation reference"),
    ("throw_null", Trap, "null continuation reference"),
    ("switch_null", Trap, "null continuation reference"),
    ("suspend_outside", Trap, "unhandled tag"),
    ("suspend_unhandled", Trap, "unhandled tag"),
    ("switch_unhandled", Trap, "unhandled tag"),
    ("recurse_inside", Exhaustion, "call stack exhausted"),
    ("unreachable_inside", Trap, "unreachable"),
    ("divide_inside_nested", Trap, "integer divide by zero"),
]


def assert_generator_works(store: Store):
    generator = store.instantiate(module("generator"), {})
    assert generator.invoke("sum", [50]) == [countdown_sum(50)]
    assert generator.invoke("hold", [100]) == [600]


@pytest.mark.parametrize("export,error,message", TRAPS, ids=[t[0] for t in TRAPS])
def test_trap_then_engine_reusable(store, export, error, message):
    traps = store.instantiate(module("traps"), {})
    generator = store.instantiate(module("generator"), {})
    for _ in range(3):
        with pytest.raises(error) as caught:
            traps.invoke(export, [])
        assert caught.value.message == message
        assert generator.invoke("sum", [50]) == [countdown_sum(50)]


def test_every_trap_in_one_store(store):
    """All the traps one after another, a generator and a scheduler run between each."""
    traps = store.instantiate(module("traps"), {})
    generator = store.instantiate(module("generator"), {})
    scheduler = store.instantiate(module("scheduler"), {})
    three_tasks = round_robin({t: SCHEDULER_STEPS[t] for t in range(1, 4)})
    for export, error, message in TRAPS:
        with pytest.raises(error, match=f"^{message}$"):
            traps.invoke(export, [])
        assert generator.invoke("sum", [20]) == [countdown_sum(20)]
        [length] = scheduler.invoke("run", [3])
        assert scheduler.exports["memory"].read(64, length).decode() == three_tasks


def test_stale_reference_traps_however_often_its_stack_is_reused(store):
    """Finished continuations' stacks are reused; a reference kept from an earlier use
    must stay consumed, even after the revision count passes 2**14, 2**15, ... reuses."""
    traps = store.instantiate(module("traps"), {})
    traps.invoke("make_stale", [])
    finished = 0
    for target in sorted({2 ** k + d for k in range(14, 18) for d in (-1, 0, 1)}):
        traps.invoke("finish_many", [target - finished])
        finished = target
        with pytest.raises(Trap, match="^continuation already consumed$"):
            traps.invoke("resume_stale_finished", [])


def test_trapped_stacks_are_recycled(store):
    """Continuations killed by a trap give their stacks back: no slab growth."""
    traps = store.instantiate(module("traps"), {})
    assert_generator_works(store)
    slabs = len(store.continuations.slabs)
    for _ in range(300):
        for export in ("recurse_inside", "divide_inside_nested", "suspend_unhandled"):
            with pytest.raises(Trap):
                traps.invoke(export, [])
    assert_generator_works(store)
    assert len(store.continuations.slabs) == slabs


# ---- host calls ------------------------------------------------------------------------------

class HostHarness:
    """host.wat's imports: `note` records, `call_back(what, arg)` does as `what` says:
    0 returns arg; 1 calls "suspend_b" (letting its trap through unless `catch_traps`);
    2 calls back into the generator "sum" (which resumes continuations); 3 needs a deep
    native stack (CPython's C recursion in repr)."""

    def __init__(self, store: Store, catch_traps: bool = False):
        self.notes: list[int] = []
        self.traps: list[str] = []
        self.catch_traps = catch_traps
        imports = {
            ("host", "note"): store.host_function(FuncType(("i32",), ()), self.notes.append, "note"),
            ("host", "call_back"): store.host_function(FuncType(("i32", "i32"), ("i32",)),
                                                       self.call_back, "call_back"),
        }
        self.instance = store.instantiate(module("host"), imports)

    def call_back(self, what: int, arg: int) -> int:
        if what == 0:
            return arg
        if what == 1:
            try:
                return self.instance.invoke("suspend_b", [])[0]
            except Trap as trap:
                if not self.catch_traps:
                    raise
                self.traps.append(trap.message)
                return 77
        if what == 2:
            return self.instance.invoke("sum", [0, arg])[0] & MASK32
        nested: list = []
        for _ in range(arg):
            nested = [nested]
        return len(repr(nested))


def test_host_calls_from_continuation(store):
    host = HostHarness(store)
    assert host.instance.invoke("sum", [0, 100]) == [countdown_sum(100)]
    assert host.notes == list(range(100, 0, -1))


def test_host_calls_back_into_wasm_that_resumes(store):
    host = HostHarness(store)
    n = 30
    assert host.instance.invoke("sum", [2, n]) == [sum(countdown_sum(i) for i in range(1, n + 1))]
    assert len(host.notes) == n + countdown_sum(n)  # outer generator and every inner one


def test_host_call_from_continuation_has_deep_stack(switching):
    """A host call needing more stack than the continuation has (repr of 900 nested lists
    takes over 128 KiB of C recursion; the continuation stacks here are 64 KiB) works:
    host calls run on the main stack."""
    host = HostHarness(Store(switching=switching, cont_stack_size=64 << 10))
    # The generator yields call_back(3, d) for d = 900 .. 1; repr of d nested lists has
    # 2d + 2 characters.
    assert host.instance.invoke("sum", [3, 900]) == [sum(2 * d + 2 for d in range(1, 901))]


def test_suspend_beyond_host_frame_traps(store):
    """The only handler for $b is on the far side of the host's frames: the inner
    invocation traps instead of switching out from under Python, and the engine goes on."""
    host = HostHarness(store)
    with pytest.raises(Trap, match="^unhandled tag$"):
        host.instance.invoke("suspend_beyond_host", [])
    assert host.instance.invoke("sum", [0, 10]) == [countdown_sum(10)]
    assert_generator_works(store)


def test_suspend_beyond_host_frame_trap_can_be_handled_by_host(store):
    host = HostHarness(store, catch_traps=True)
    assert host.instance.invoke("suspend_beyond_host", []) == [77]
    assert host.traps == ["unhandled tag"]
    assert host.instance.invoke("sum", [0, 10]) == [countdown_sum(10)]


class ExitingHost(HostHarness):
    """call_back(2, n) runs "sum" again, with call_back(4, ...), which exits (proc_exit)."""

    def call_back(self, what: int, arg: int) -> int:
        if what == 2:
            return self.instance.invoke("sum", [4, arg])[0] & MASK32
        if what == 4:
            raise ProcExit(3)
        return super().call_back(what, arg)


def test_exit_from_a_nested_entry_inside_continuations(store):
    """proc_exit in Wasm -> host -> Wasm -> host, each Wasm part inside a continuation,
    reaches the embedder unchanged through both entries; the stacks are recycled."""
    host = ExitingHost(store)
    assert_generator_works(store)
    slabs = len(store.continuations.slabs)
    for _ in range(40):  # two continuations each: more than a slab holds
        with pytest.raises(ProcExit) as info:
            host.instance.invoke("sum", [2, 5])
        assert info.value.code == 3
    assert len(store.continuations.slabs) == slabs
    assert host.instance.invoke("sum", [0, 10]) == [countdown_sum(10)]


class InterruptedHost(HostHarness):
    """Every call_back gets a SIGINT, as if the user pressed Ctrl-C during it."""

    def call_back(self, what: int, arg: int) -> int:
        signal.raise_signal(signal.SIGINT)
        return arg


def test_interrupt_during_host_call_from_continuation_reaches_the_embedder(store):
    """KeyboardInterrupt comes out of invoke, the continuation's stack is recycled (100
    interrupted runs need no second slab), and the engine goes on."""
    host = InterruptedHost(store)
    assert_generator_works(store)
    slabs = len(store.continuations.slabs)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        for _ in range(100):
            with pytest.raises(KeyboardInterrupt):
                host.instance.invoke("sum", [0, 10])
    finally:
        signal.signal(signal.SIGINT, previous)
    assert host.notes == [10] * 100
    assert len(store.continuations.slabs) == slabs
    assert_generator_works(store)


@pytest.mark.parametrize("error, raised", [(ValueError("bad"), Trap), (KeyboardInterrupt(), KeyboardInterrupt)])
def test_host_callable_failing_outside_its_handler(store, error, raised):
    """A Python error raised where no handler of the host call can catch it (entering or
    leaving its frame) makes the call return NULL to the trampoline: the call traps, the
    embedder gets the error, and the next host call runs normally."""
    host = HostHarness(store)
    call_back = host.instance.funcs[1]
    assert call_back.name == "call_back"

    def fails():
        raise error
    original = call_back.host_block[L.VM_HOST_CALLABLE // 8]
    call_back.host_block[L.VM_HOST_CALLABLE // 8] = id(fails)
    try:
        with pytest.raises(raised) as info:
            host.instance.invoke("sum", [0, 3])  # from inside the generator's continuation
    finally:
        call_back.host_block[L.VM_HOST_CALLABLE // 8] = original
    if raised is Trap:
        assert info.value.message == "host function failed: bad"
    assert host.instance.invoke("sum", [0, 10]) == [countdown_sum(10)]
    assert_generator_works(store)


# ---- no call-outs on switching --------------------------------------------------------------

@pytest.fixture
def callbacks(monkeypatch) -> collections.Counter:
    """Counts every call from native code into Python, by host function name; "total"
    counts at the native boundary (the callable each host block hands the trampoline)."""
    counts: collections.Counter = collections.Counter()
    real_host_function = Store.host_function

    def counting_host_function(self, functype, pyfunc, name="host", **options):
        def counted(*args):
            counts[name] += 1
            return pyfunc(*args)
        func = real_host_function(self, functype, counted, name, **options)
        native_entry = func.host_callable

        def counted_entry():
            counts["total"] += 1
            return native_entry()
        func.host_callable = counted_entry
        func.host_block[L.VM_HOST_CALLABLE // 8] = id(counted_entry)
        return func

    monkeypatch.setattr(Store, "host_function", counting_host_function)
    return counts


def continuations_created(store: Store) -> int:
    return store.runtime[L.RT_NEXT_CONT_ID // 8] - 1


def callbacks_during(store: Store, counts: collections.Counter, run) -> tuple[int, int]:
    """(Python callbacks, continuations created) while `run()` runs. The only callbacks
    allowed are cont.new's and first resumes' (when the runtime's free lists of fresh
    records or of stacks are empty, to map more), at most one of each per continuation."""
    counts.clear()
    created = continuations_created(store)
    run()
    created = continuations_created(store) - created
    assert counts["total"] == counts["cont_new"] + counts["cont_attach"], \
        f"callbacks other than cont.new's and first resumes': {counts}"
    assert counts["cont_new"] <= created and counts["cont_attach"] <= created, counts
    return counts["total"], created


def test_generator_round_trips_make_no_callbacks(store, callbacks):
    """10 or 10,000 suspend/resume round trips, on the record and stack a first run freed:
    no callbacks at all."""
    generator = store.instantiate(module("generator"), {})
    generator.invoke("sum", [1])
    few_calls, few_created = callbacks_during(store, callbacks, lambda: generator.invoke("sum", [10]))
    many_calls, many_created = callbacks_during(store, callbacks, lambda: generator.invoke("sum", [10_000]))
    assert few_created == many_created == 1
    assert many_calls == few_calls == 0


def test_switches_make_no_callbacks(store, callbacks):
    """8 tasks, 21 steps, a switch after most of them: only cont.new and first resumes
    may call out."""
    scheduler = store.instantiate(module("scheduler"), {})
    calls, created = callbacks_during(store, callbacks, lambda: scheduler.invoke("run", [8]))
    assert created == 8 and calls <= 2 * created


def test_handler_search_makes_no_callbacks(store, callbacks):
    nested = store.instantiate(module("nested"), {})
    calls, created = callbacks_during(store, callbacks, lambda: nested.invoke("outer", []))
    assert created == 2 and calls <= 2 * created


def test_callback_counter_sees_host_calls(store, callbacks):
    """The counter itself works: host imports called from a continuation are counted."""
    host = HostHarness(store)
    callbacks.clear()
    host.instance.invoke("sum", [0, 10])
    assert callbacks["note"] == callbacks["call_back"] == 10
    assert callbacks["total"] == 20 + callbacks["cont_new"] + callbacks["cont_attach"]


# ---- memory -----------------------------------------------------------------------------------

MEMORY_PROBE = """
import json, sys
from stackstitch.engine.frontend.loader import load_bytes, load_module
from stackstitch.engine.runtime.store import Store

def rss_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

def mappings():
    with open("/proc/self/maps") as f:
        return len(f.readlines())

generator = Store(switching=sys.argv[2]).instantiate(load_module(sys.argv[1]), {})
report = {"churn": generator.invoke("churn", [20_000])[0]}
report["rss_warm"] = rss_kib()
for _ in range(10):
    report["churn"] += generator.invoke("churn", [20_000])[0]
    report["rss_max"] = max(report.get("rss_max", 0), rss_kib())
report["hold"] = generator.invoke("hold", [10_000])[0]
report["hold_again"] = generator.invoke("hold", [10_000])[0]
pool = generator.store.continuations
def sizes():
    return {"rss": rss_kib(), "maps": mappings(), "slabs": len(pool.slabs),
            "fresh_slabs": len(pool.fresh_slabs)}
before = sizes()
report["unresumed"] = generator.invoke("unresumed", [200_000])[0]
after = sizes()
report["unresumed_growth"] = {k: after[k] - before[k] for k in before}
print(json.dumps(report))
"""


def test_memory_stays_bounded(switching):
    """220,000 create-run-finish cycles with flat RSS after warm-up, then 10,000
    continuations suspended at once (twice: the second time on recycled stacks), then
    200,000 created and never resumed: each costs a small record (L.FRESH_RECORD_SIZE
    bytes), no stack (no new stack slab: 3,125 of them, two mappings each, before
    stacks were taken lazily), and the records come in slabs of thousands."""
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(DATA / "generator.wat"), switching],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["churn"] == 3 * 220_000
    assert report["rss_max"] - report["rss_warm"] < 20 * 1024, report
    assert report["hold"] == report["hold_again"] == 6 * 10_000
    assert report["unresumed"] == 200_000
    growth = report["unresumed_growth"]
    assert growth["slabs"] == 0, report
    assert 0 < growth["fresh_slabs"] < 200 and growth["maps"] <= growth["fresh_slabs"], report
    assert growth["rss"] < 200_000 * L.FRESH_RECORD_SIZE // 1024 + 10 * 1024, report


def test_fresh_continuations_take_stacks_at_their_first_resume(store, callbacks):
    """200 continuations with a bound value, all made before the first is resumed, then
    all resumed until they suspend, each on a stack of its own. Their first resumes take
    stacks from the free list in generated code, except those that find it empty: once
    per new slab (the runtime then moves the bound value), the first slab excepted, which
    cont.new carved so that a stack is free when a continuation first runs."""
    bind = store.instantiate(module("bind"), {})
    n = 200
    assert bind.invoke("bind_many", [n]) == [n * (n - 1) // 2 + 30 * n]
    slabs = len(store.continuations.slabs)
    assert slabs == -(-n // store.continuations.STACKS_PER_SLAB)
    assert callbacks["cont_attach"] == slabs - 1


def test_fresh_records_are_recycled(store):
    """A first resume frees the fresh record: the next cont.new takes the same one, with
    a new revision, so the stale reference traps; thousands of cycles of each kind of
    first resume (resume of a bound one, resume_throw, switch) take no new slab."""
    fresh = store.instantiate(module("fresh"), {})
    pool = store.continuations
    [first] = fresh.invoke("make", [])
    assert pool.in_fresh_slab(first & RECORD_MASK)
    fresh.invoke("start", [first])
    [second] = fresh.invoke("make", [])
    assert second & RECORD_MASK == first & RECORD_MASK and second != first
    with pytest.raises(Trap, match="^continuation already consumed$"):
        fresh.invoke("start", [first])
    fresh.invoke("start", [second])
    slabs = (len(pool.slabs), len(pool.fresh_slabs))
    assert slabs == (1, 1)
    for n in (10, 5000):
        assert fresh.invoke("bind_resume", [n]) == [100 * n]
        assert fresh.invoke("throw_into_fresh", [n]) == [n * (n - 1) // 2]
        assert fresh.invoke("switch_to_fresh", [n]) == [71 * n]
    assert (len(pool.slabs), len(pool.fresh_slabs)) == slabs


def test_first_resumes_of_fresh_continuations_make_no_callbacks(store, callbacks):
    """Once a stack and a fresh record are free, cont.new and every kind of first resume
    take and give back both in generated code (resume_throw calls the runtime to throw,
    once per continuation)."""
    fresh = store.instantiate(module("fresh"), {})
    for export, throws in (("bind_resume", 0), ("switch_to_fresh", 0), ("throw_into_fresh", 100)):
        fresh.invoke(export, [1])
        callbacks.clear()
        fresh.invoke(export, [100])
        assert callbacks["total"] == callbacks["throw_into"] == throws, (export, callbacks)


def test_live_continuations_reuse_stacks(store):
    generator = store.instantiate(module("generator"), {})
    assert generator.invoke("hold", [10_000]) == [60_000]
    slabs = len(store.continuations.slabs)
    assert slabs * store.continuations.STACKS_PER_SLAB >= 10_000
    assert generator.invoke("hold", [10_000]) == [60_000]
    assert generator.invoke("churn", [1000]) == [3000]
    assert len(store.continuations.slabs) == slabs
