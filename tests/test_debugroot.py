"""The debug root, read back from raw memory the way an out-of-process reader does: a
child process runs a generator and stops with continuations suspended; this process
reads the child's memory through /proc/PID/mem."""

import os
import subprocess
import sys

from stackstitch.engine import layout as L
from stackstitch.engine.runtime.debugrootreader import DebugRootReader
from stackstitch.engine.runtime.memories import TABLE_LIMIT

CHILD = r"""
import os, sys
from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Store
from stackstitch.engine.frontend.types import FuncType
from stackstitch.unwind.gdbjit import jit_interface

WAT = '''
(module $gens
  (type $ft (func))
  (type $ct (cont $ft))
  (import "host" "pause" (func $pause))
  (memory $heap (export "heap") 2 5)
  (table $funcs 3 funcref)
  (global $counter (mut i64) (i64.const -7))
  (global (export "answer") f64 (f64.const 2.5))
  (tag $yield (export "yield"))
  (func $gen (suspend $yield))
  (func $main (export "main")
    (local $a (ref null $ct)) (local $b (ref null $ct)) (local $c (ref null $ct))
    (block $h1 (result (ref $ct))
      (resume $ct (on $yield $h1) (cont.new $ct (ref.func $gen))) (return))
    (local.set $a)
    (block $h2 (result (ref $ct))
      (resume $ct (on $yield $h2) (cont.new $ct (ref.func $gen))) (return))
    (local.set $b)
    (local.set $c (cont.new $ct (ref.func $gen)))
    (call $pause))
  (elem declare func $gen))
'''

def pause():
    print(jit_interface().debug_root.value, flush=True)
    sys.stdin.readline()

store = Store()
store.publish_debug_root(jit_interface().debug_root)
module = load_bytes(WAT.encode(), "gens.wat")
pause_func = store.host_function(FuncType((), ()), pause, "pause")
store.instantiate(module, {("host", "pause"): pause_func}, name="gens").invoke("main", [])
"""


def test_debug_root_read_from_another_process():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        root = int(child.stdout.readline())
        with open(f"/proc/{child.pid}/mem", "rb") as mem:
            def read(address, size):
                return os.pread(mem.fileno(), size, address)

            reader = DebugRootReader(read, root)
            (store,) = reader.stores()
            (instance,) = reader.instances(store)
            assert instance.name == "gens"
            names = {reader.string(f.name_address): f for f in reader.functions(instance.module)}
            assert {"gen", "main"} <= set(names)
            for function in reader.functions(instance.module):
                pairs = reader.address_map(function)
                assert pairs and all(function.start <= a < function.end for a, _ in pairs)
                assert [a for a, _ in pairs] == sorted(a for a, _ in pairs)
            # The module, published when compiled, with its event sites: three cont.new,
            # two resume, all inside main.
            (module,) = reader.modules(store)
            assert module == instance.module and module.code_size > 0
            events = reader.events(module)
            main = names["main"]
            assert sorted(kind for _, kind in events) == [L.EVENT_CONT_NEW] * 3 + [L.EVENT_RESUME] * 2
            assert all(main.start < address < main.end for address, _ in events)
            # Memories, tables and globals, with what a debugger shows of them.
            (memory,) = reader.memories(instance)
            base, size = reader.words(memory.base_word, 1)[0], reader.words(memory.size_word, 1)[0]
            assert (memory.name, size, memory.maximum, memory.flags) == ("heap", 2 * 65536, 5 * 65536, 0)
            assert base and read(base, 4) == bytes(4)
            (table,) = reader.tables(instance)
            assert (table.name, table.element_type) == ("funcs", "(ref null func)")
            # No declared maximum: the engine's limit, where table.grow starts to fail.
            assert reader.words(table.record + L.TB_SIZE, 2) == (3, TABLE_LIMIT)
            counter, answer = reader.globals(instance)
            assert (counter.name, counter.value_type, counter.flags) == ("counter", "i64", 1)
            assert reader.words(counter.cell, 1)[0] == (1 << 64) - 7
            assert (answer.name, answer.value_type, answer.flags) == ("answer", "f64", 0)
            # The fresh one (not resumed) is listed first: a record in a fresh slab, with
            # its id and function, and no stack. Its record is the one the first two had
            # before their first resume moved them onto stacks.
            fresh, *conts = reader.continuations(store)
            assert (fresh.id, fresh.state, fresh.stack_lo, fresh.stack_hi) == (3, L.CONT_FRESH, 0, 0)
            assert reader.words(fresh.func + L.FR_CODE, 1)[0] == names["gen"].start
            assert store.fresh_slab_count == 1 and fresh.record == reader.words(store.fresh_slabs, 1)[0]
            assert len(conts) == 2
            assert all(c.state == L.CONT_SUSPENDED for c in conts)
            assert {c.id for c in conts} == {1, 2}
            gen = names["gen"]
            assert list(instance.tags.values()) == ["yield"]
            for c in conts:  # suspended inside $gen, on its own stack, with the tag
                assert gen.start <= c.pc < gen.end
                assert instance.tags.get(c.tag) == "yield"
                assert c.stack_lo <= c.fp < c.stack_hi
    finally:
        child.communicate("\n", timeout=30)
    assert child.returncode == 0


# ---- the one stack walker, in process and out of process ---------------------------------------

NESTED_CHILD = r"""
import ctypes, json, sys
from stackstitch.backtrace import Walker
from stackstitch.engine.runtime.debugrootreader import DebugRootReader
from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Store
from stackstitch.engine.frontend.types import FuncType
from stackstitch.unwind.gdbjit import jit_interface

WAT = '''
(module $nest
  (type $ft (func)) (type $ct (cont $ft))
  (import "host" "pause" (func $pause))
  (tag $yield (export "yield")) (tag $inner_tag)
  (func $leaf (suspend $yield))
  (func $middle (call $leaf))
  (func $inner (call $middle))
  (func $outer
    (block $h (result (ref $ct))
      (resume $ct (on $inner_tag $h) (cont.new $ct (ref.func $inner))) (return))
    (drop))
  (func $main (export "main") (local $k (ref null $ct))
    (block $h (result (ref $ct))
      (resume $ct (on $yield $h) (cont.new $ct (ref.func $outer))) (return))
    (local.set $k)
    (block $h2 (result (ref $ct))
      (resume $ct (on $yield $h2) (cont.new $ct (ref.func $leaf))) (return))
    (drop)
    (call $pause))
  (elem declare func $outer $inner $leaf))
'''

def pause():
    root = jit_interface().debug_root.value
    reader = DebugRootReader(ctypes.string_at, root)
    walker = Walker(store)
    walks = {}
    for c in reader.continuations(reader.stores()[0]):
        trace = walker.suspended(c.record)
        if not trace.note:
            walks[c.id] = [[f.func_name, f.wasm_offset] for f in trace.frames]
    print(json.dumps({"root": root, "walks": walks}), flush=True)
    sys.stdin.readline()

store = Store()
store.publish_debug_root(jit_interface().debug_root)
pause_func = store.host_function(FuncType((), ()), pause, "pause")
store.instantiate(load_bytes(WAT.encode(), "nest.wat"), {("host", "pause"): pause_func},
                  name="nest").invoke("main", [])
"""


def test_one_walker_in_process_and_out_of_process():
    """The trap-report walker in the child and the plugin's view of /proc/PID/mem walk the
    same frames for every suspended continuation; a corrupted link ends a walk with a note."""
    import json

    from stackstitch.engine.runtime.stackwalk import Boundary, StackWalk
    from stackstitch.gdb_plugin.view import READ_ERRORS, ProcessView

    child = subprocess.Popen([sys.executable, "-c", NESTED_CHILD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        report = json.loads(child.stdout.readline())
        in_process = {int(k): v for k, v in report["walks"].items()}
        assert sorted(map(len, in_process.values())) == [1, 4]  # leaf; leaf middle inner outer
        with open(f"/proc/{child.pid}/mem", "rb") as mem:
            def read(address, size):
                return os.pread(mem.fileno(), size, address)

            (store,) = ProcessView(read, report["root"]).stores
            walked = {}
            for c in store.continuations():
                if c.raw_state != L.CONT_SUSPENDED:
                    continue
                walk = StackWalk(store, *store.saved_context(c.resume_record), stop_record=c.record)
                items = list(walk)
                assert walk.note is None and isinstance(items[-1], Boundary)
                walked[c.id] = [[loc.func_name, loc.wasm_offset] for loc in
                                (store.code.locate(i.pc) for i in items if not isinstance(i, Boundary))]
            assert walked == in_process

            # What `info continuations` lists, without gdb: inner was resumed by outer and
            # suspended with it; both continue in leaf.
            listed = {c.func_name: (c.label, c.state, c.parent, c.where) for c in store.continuations()}
            outer_label = listed["outer"][0]
            assert listed["outer"][1:3] == ("suspended", "-") and listed["leaf"][1:3] == ("suspended", "-")
            assert listed["inner"][1:3] == ("suspended", outer_label), listed
            assert listed["outer"][3].startswith("leaf @ ") and "on tag yield" in listed["outer"][3]
            assert f"(in continuation {listed['inner'][0]})" in listed["outer"][3], listed

            outer = next(c for c in store.continuations() if c.func_name == "outer")
            pc, fp = store.saved_context(outer.resume_record)
            inner_base = L.base_frame(next(c for c in store.continuations() if c.func_name == "inner").record)

            def corrupt(address, size):  # the inner stack's base frame links to itself
                data = bytearray(read(address, size))
                if address <= inner_base < address + size:
                    data[inner_base - address:inner_base - address + 8] = inner_base.to_bytes(8, "little")
                return bytes(data)

            (bad_store,) = ProcessView(corrupt, report["root"]).stores
            walk = StackWalk(bad_store, pc, fp, stop_record=outer.record)
            try:
                items = list(walk)
            except READ_ERRORS as e:  # acceptable too: a one-line read error
                items, walk.note = [], str(e)
            assert walk.note and len([i for i in items if not isinstance(i, Boundary)]) == 3
    finally:
        child.communicate("\n", timeout=30)
    assert child.returncode == 0
