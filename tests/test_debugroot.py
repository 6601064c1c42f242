"""The debug root, read back from raw memory the way an out-of-process reader does: a
child process runs a generator and stops with continuations suspended; this process
reads the child's memory through /proc/PID/mem."""

import os
import subprocess
import sys

from stackstitch.engine import layout as L
from stackstitch.engine.debugroot import DebugRootReader

CHILD = r"""
import os, sys
from stackstitch.engine.loader import load_bytes
from stackstitch.engine.runtime import Store
from stackstitch.engine.types import FuncType
from stackstitch.unwind.gdbjit import jit_interface

WAT = '''
(module $gens
  (type $ft (func))
  (type $ct (cont $ft))
  (import "host" "pause" (func $pause))
  (tag $yield (export "yield"))
  (func $gen (suspend $yield))
  (func $main (export "main")
    (local $a (ref null $ct)) (local $b (ref null $ct))
    (block $h1 (result (ref $ct))
      (resume $ct (on $yield $h1) (cont.new $ct (ref.func $gen))) (return))
    (local.set $a)
    (block $h2 (result (ref $ct))
      (resume $ct (on $yield $h2) (cont.new $ct (ref.func $gen))) (return))
    (local.set $b)
    (call $pause))
  (elem declare func $gen))
'''

def pause():
    print(jit_interface().debug_root.value, flush=True)
    sys.stdin.readline()

store = Store(debug_root=True)
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
            assert instance["name"] == "gens"
            names = {f["name"] for f in reader.functions(instance)}
            assert {"gen", "main"} <= names
            for function in reader.functions(instance):
                pairs = reader.address_map(function)
                assert pairs and all(function["start"] <= a < function["end"] for a, _ in pairs)
                assert [a for a, _ in pairs] == sorted(a for a, _ in pairs)
            conts = reader.continuations(store)
            assert len(conts) == 2
            assert all(c["state"] == L.CONT_SUSPENDED for c in conts)
            assert len({c["id"] for c in conts}) == 2
            gen = next(f for f in reader.functions(instance) if f["name"] == "gen")
            assert list(instance["tags"].values()) == ["yield"]
            for c in conts:  # suspended inside $gen, on its own stack, with the tag
                assert gen["start"] <= c["pc"] < gen["end"]
                assert instance["tags"].get(c["tag"]) == "yield"
                assert c["stack_lo"] <= c["fp"] < c["stack_hi"]
    finally:
        child.communicate("\n", timeout=30)
    assert child.returncode == 0
