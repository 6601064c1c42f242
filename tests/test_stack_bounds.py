"""The stack-limit check at its edges. Continuation stacks lie next to each other in a slab
with no guard page between them, so the prologue's limit check is all that keeps a stack's
writes inside its own chunk (engine/DESIGN.md, "Stack bounds").

A Wasm function gets the largest frame that fits on a fresh continuation stack (thousands
of locals, or a deep value stack; found by search, on 16 and 64 KiB stacks), and at that
depth calls a host import, a function (whose check must fail), the handler search
(suspend), the cont.bind merge, the trap stub, a throw, lands a resume_throw whose handler
needs one more frame, and calls a host import that recurses into Wasm until exhaustion.
Afterwards nothing was written more than `STUB_BELOW_LIMIT` bytes below any stack's limit
(the margin below every limit is filled with a pattern first), and the canary words at the
top of every chunk, just below the next stack, are intact. Signals arriving at the deepest
point write further below the limit, but not past the margin. Both switching modes. Last,
the main stack: host code deep in C recursion that calls back into Wasm.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stackstitch.engine.runtime.continuations import STUB_BELOW_LIMIT
from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Exhaustion, Store, Trap
from stackstitch.engine.frontend.types import FuncType

from conftest import REPO_ROOT, require_wasm_tools_for_module
from stack_margins import deepest_write_below_limit, poison_margins

require_wasm_tools_for_module()

MODES = ("native", "libcall")
STACK_SIZES = (16 << 10, 64 << 10)

# What $edge does at its depth, by `action`, and what run(action) returns (or raises).
RETURN, HOST_CALL, CALL, SUSPEND, BIND_AND_RESUME, THROW, TRAP, RESUME_THROW_EXHAUSTS, \
    RESUME_THROW, HOST_RECURSES = range(10)
OUTCOMES = {RETURN: [100], HOST_CALL: [101], CALL: Exhaustion, SUSPEND: [7], BIND_AND_RESUME: [4],
            THROW: [5], TRAP: Trap, RESUME_THROW_EXHAUSTS: Exhaustion, RESUME_THROW: [5],
            HOST_RECURSES: Exhaustion}


def edge_module(nlocals: int, nvalues: int) -> str:
    """$edge has `nlocals` extra i64 locals, and a frame for `nvalues` values on its value
    stack at once; `run(action)` runs it in a fresh continuation (see OUTCOMES)."""
    values = "(i32.add (local.get $action) (i32.const 1)) " * nvalues  # each in a register or slot
    keep_values = values + "(i32.add) " * (nvalues - 1) + "(drop)" if nvalues else ""
    return f"""
    (module
      (type $ft (func (param i32) (result i32)))
      (type $ct (cont $ft))
      (type $ft0 (func (result i32)))
      (type $ct0 (cont $ft0))
      (tag $yield (result i32))
      (tag $exn (param i32))
      (import "host" "note" (func $note (param i32) (result i32)))
      (func $small (param i32) (result i32) (local.get 0))
      (func $recurse (export "recurse") (param i32) (result i32)
        (i32.add (call $recurse (local.get 0)) (i32.const 1)))
      (func $edge (param $action i32) (result i32)
        {f"(local {'i64 ' * nlocals})" if nlocals else ""}
        (block $caught (result i32)
          (return (try_table (result i32) (catch $exn $caught)
            {keep_values}
            (if (i32.eq (local.get $action) (i32.const {RETURN})) (then (return (i32.const 100))))
            (if (i32.eq (local.get $action) (i32.const {HOST_CALL}))
              (then (return (call $note (i32.const 101)))))
            (if (i32.eq (local.get $action) (i32.const {HOST_RECURSES}))
              (then (return (call $note (i32.const -1)))))
            (if (i32.eq (local.get $action) (i32.const {CALL})) (then (return (call $small (i32.const 1)))))
            (if (i32.eq (local.get $action) (i32.const {BIND_AND_RESUME}))
              (then (return (resume $ct0 (cont.bind $ct $ct0 (i32.const 4)
                                           (cont.new $ct (ref.func $small)))))))
            (if (i32.eq (local.get $action) (i32.const {THROW})) (then (throw $exn (i32.const 5))))
            (if (i32.eq (local.get $action) (i32.const {TRAP})) (then (unreachable)))
            (suspend $yield))))
        ;; caught: 99 from resume_throw asks for one more call, which cannot fit
        (if (i32.eq (i32.const 99)) (then (return (call $small (i32.const 1)))))
        (i32.const 5))
      (elem declare func $edge $small)
      (func (export "run") (param $action i32) (result i32)
        (local $k (ref null $ct))
        (block $on_yield (result (ref $ct))
          (return (resume $ct (on $yield $on_yield) (local.get $action)
                    (cont.new $ct (ref.func $edge)))))
        (local.set $k)
        (if (i32.eq (local.get $action) (i32.const {RESUME_THROW_EXHAUSTS}))
          (then (return (resume_throw $ct $exn (i32.const 99) (local.get $k)))))
        (if (i32.eq (local.get $action) (i32.const {RESUME_THROW}))
          (then (return (resume_throw $ct $exn (i32.const 5) (local.get $k)))))
        (resume $ct (i32.const 7) (local.get $k))))
    """


def instantiate(store: Store, nlocals: int, nvalues: int):
    instance = None

    def note(value):
        if value == 0xFFFFFFFF:  # recurse in Wasm until the stack is exhausted
            return instance.invoke("recurse", [0])[0]
        return value

    note_func = store.host_function(FuncType(("i32",), ("i32",)), note, "note")
    instance = store.instantiate(load_bytes(edge_module(nlocals, nvalues).encode(), text=True),
                                 {("host", "note"): note_func})
    return instance


def fits(store: Store, nlocals: int, nvalues: int) -> bool:
    try:
        return instantiate(store, nlocals, nvalues).invoke("run", [RETURN]) == [100]
    except Exhaustion:
        return False


def largest_fitting(mode: str, size: int, grow_locals: bool) -> int:
    """The most locals (or values) $edge can have and still run on a fresh stack."""
    store = Store(switching=mode, cont_stack_size=size)
    shape = (lambda n: (n, 0)) if grow_locals else (lambda n: (0, n))
    lo, hi = 0, size // 8  # fits with lo, never with hi (a frame of the whole stack)
    assert fits(store, *shape(lo)) and not fits(store, *shape(hi))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(store, *shape(mid)):
            lo = mid
        else:
            hi = mid
    return lo


def run_checked(store: Store, instance, action: int) -> tuple:
    """run(action) from poisoned margins: (its outcome, how far below a limit it wrote),
    checked against the stack bounds."""
    poison_margins(store)
    try:
        outcome = instance.invoke("run", [action])
    except Trap as trap:
        outcome = type(trap)
    below = deepest_write_below_limit(store)
    assert below <= STUB_BELOW_LIMIT
    assert store.continuations.damaged_canaries() == []
    return outcome, below


# A deep value stack takes long to compile; 16 KiB already holds about a thousand values.
@pytest.fixture(scope="module", params=[(m, s, g) for m in MODES for s in STACK_SIZES
                                        for g in ("locals", "values") if g == "locals" or s == 16 << 10],
                ids=lambda p: f"{p[0]}-{p[1] >> 10}K-{p[2]}")
def edge(request):
    """(mode, stack size, $edge's shape at the largest frame that fits)."""
    mode, size, grow = request.param
    n = largest_fitting(mode, size, grow == "locals")
    assert n > 500  # about a thousand locals or values on 16 KiB, seven thousand locals on 64 KiB
    return mode, size, (n, 0) if grow == "locals" else (0, n)


def test_every_action_at_the_deepest_frame_stays_in_bounds(edge):
    mode, size, shape = edge
    store = Store(switching=mode, cont_stack_size=size)
    instance = instantiate(store, *shape)
    instance.invoke("run", [RETURN])  # the first slab exists from here on
    for action, expected in OUTCOMES.items():
        outcome, below = run_checked(store, instance, action)
        assert outcome == expected, f"action {action}"
        if action == CALL:  # the frame is at the very edge: the failing callee's pushes
            assert below > 0  # before its check reach below the limit
    assert run_checked(store, instance, RETURN)[0] == [100]  # and the engine goes on


def test_one_more_local_or_value_is_exhaustion_not_overflow(edge):
    mode, size, (nlocals, nvalues) = edge
    store = Store(switching=mode, cont_stack_size=size)
    bigger = instantiate(store, nlocals + (nlocals > 0), nvalues + (nvalues > 0))  # found not to fit
    store.continuations.release(store.continuations.allocate())  # a slab to poison first
    assert run_checked(store, bigger, RETURN)[0] is Exhaustion


# Runs in a fresh interpreter: pytest's faulthandler gives the main thread an alternate
# signal stack, on which CPython's handlers (installed with SA_ONSTACK) would run instead.
SIGNALS_AT_DEPTH = '''
import json, signal, sys
sys.path.insert(0, sys.argv[2])
from stack_margins import deepest_write_below_limit, poison_margins
from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Exhaustion, Store

WAT = """
(module
  (type $ft (func (param i32) (result i32)))
  (type $ct (cont $ft))
  (global $depth (mut i32) (i32.const 0))
  (func $down (param $n i32) (result i32) (local $spin i32)
    (global.set $depth (i32.add (global.get $depth) (i32.const 1)))
    (if (local.get $n)
      (then (return (i32.add (call $down (i32.sub (local.get $n) (i32.const 1))) (i32.const 1)))))
    (local.set $spin (i32.const 100000000))
    (loop $spinning (br_if $spinning (local.tee $spin (i32.sub (local.get $spin) (i32.const 1)))))
    (i32.const 0))
  (elem declare func $down)
  (func (export "run") (param $n i32) (result i32)
    (global.set $depth (i32.const 0))
    (resume $ct (local.get $n) (cont.new $ct (ref.func $down))))
  (func (export "depth") (result i32) (global.get $depth)))
"""
store = Store(switching=sys.argv[1], cont_stack_size=16 << 10)
instance = store.instantiate(load_bytes(WAT.encode(), text=True), {})
for _ in range(3):  # the stack used below has neighbours on both sides
    store.continuations.allocate()
try:
    instance.invoke("run", [0x7FFFFFFF])
except Exhaustion:
    pass
frames = instance.invoke("depth", [])[0]  # as many as fit; the last one spins
poison_margins(store)
delivered = []
signal.signal(signal.SIGALRM, lambda *_: delivered.append(1))
signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
result = instance.invoke("run", [frames - 1])
signal.setitimer(signal.ITIMER_REAL, 0, 0)
print(json.dumps({"ok": result == [frames - 1], "signals": len(delivered),
                  "deepest": deepest_write_below_limit(store), "margin": store.continuations.margin,
                  "damaged": store.continuations.damaged_canaries()}))
'''


@pytest.mark.parametrize("mode", MODES)
def test_signals_at_the_deepest_frame_stay_in_bounds(mode):
    """The kernel writes a signal frame below the interrupted rsp, on whatever stack is
    running: the margin below every limit holds it and the handler's frames."""
    child = subprocess.run([sys.executable, "-c", SIGNALS_AT_DEPTH, mode, str(REPO_ROOT / "tests")],
                           capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    assert report["ok"] and report["signals"] > 0
    # Signal frames were written at the deepest point, inside the margin, and no further.
    assert STUB_BELOW_LIMIT < report["deepest"] <= report["margin"], report
    assert report["damaged"] == []


# Runs in a fresh interpreter (argv[1]: how far above the main stack's low end, in bytes, the
# host code calls back into Wasm): a host function recurses in C (repr of nested lists)
# until its stack pointer is there, then calls back into Wasm.
DEEP_HOST_CALLS_BACK = '''
import ctypes, sys
from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Store, Trap
from stackstitch.engine.frontend.types import FuncType

sys.setrecursionlimit(1_000_000)
libc = ctypes.CDLL(None)
context = ctypes.create_string_buffer(4096)

def stack_pointer():
    """Roughly the C stack pointer here: getcontext saves the registers of its call."""
    libc.getcontext(context)
    return int.from_bytes(context.raw[160:168], "little")  # uc_mcontext.gregs[REG_RSP]

class Leaf:
    def __init__(self, action):
        self.action = action

    def __repr__(self):
        self.result = self.action()
        return "leaf"

def nested(depth, leaf):
    for _ in range(depth):
        leaf = [leaf]
    return leaf

def deep():
    """Calibrates the C stack per level of repr, then calls back in at the asked height."""
    at = {}
    for depth in (200, 400):
        leaf = Leaf(stack_pointer)
        repr(nested(depth, leaf))
        at[depth] = leaf.result
    per_level = (at[200] - at[400]) / 200
    depth = 200 + int((at[200] - (store.stack_lo + int(sys.argv[1]))) / per_level)
    leaf = Leaf(lambda: instance.invoke("one", [])[0])
    repr(nested(depth, leaf))
    return leaf.result

store = Store(stack_size=1 << 20)
WAT = """(module (import "host" "deep" (func $deep (result i32)))
           (func (export "one") (result i32) (i32.const 1))
           (func (export "main") (result i32) (call $deep)))"""
deep_func = store.host_function(FuncType((), ("i32",)), deep, "deep")
instance = store.instantiate(load_bytes(WAT.encode(), text=True), {("host", "deep"): deep_func})
try:
    print(instance.invoke("main", []))
except Trap as trap:
    print(trap.message)
'''


@pytest.mark.parametrize("height, printed", [(600 << 10, "[1]"), (40 << 10, "call stack exhausted")])
def test_host_code_deep_on_the_main_stack_calling_back_into_wasm(height, printed):
    """A nested entry leaves a gap below the host's frames: with the host code 600 KiB above
    the main stack's low end, the Wasm call runs; 40 KiB above, the gap would pass the low
    end, and the call is exhaustion instead of a write below the stack."""
    child = subprocess.run([sys.executable, "-c", DEEP_HOST_CALLS_BACK, str(height)],
                           capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == printed
