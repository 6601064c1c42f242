"""No mapping of the process is writable and executable at once: not the generated code
(written, then made executable), and not host calls, which go through CPython's C API
instead of ctypes callbacks (a libffi closure leaves a writable and executable page).
Checked in fresh processes, in-process embedding and `stackstitch run` alike."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO_ROOT, require_wasm_tools_for_module

require_wasm_tools_for_module()

# Host calls of every kind, from the main stack and from inside a continuation: WASI,
# spectest, a Python function, and a Python function that calls back into Wasm.
IMPORTS_WAT = """
(module
  (type $ft (func (param i32) (result i32)))
  (type $ct (cont $ft))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "spectest" "print_i32" (func $print_i32 (param i32)))
  (import "host" "twice" (func $twice (param i32) (result i32)))
  (import "host" "call_back" (func $call_back (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hi\\n")
  (func $work (param $x i32) (result i32)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $print_i32 (local.get $x))
    (i32.add (call $twice (local.get $x)) (call $call_back (local.get $x))))
  (func (export "inc") (param i32) (result i32) (i32.add (local.get 0) (i32.const 1)))
  (elem declare func $work)
  (func (export "main") (param $x i32) (result i32 i32)
    (call $work (local.get $x))
    (resume $ct (local.get $x) (cont.new $ct (ref.func $work)))))
"""

# Runs in a fresh interpreter: prints the writable and executable mappings after running
# IMPORTS_WAT in both switching modes, then again after making one ctypes callback (which
# shows that the check sees such a page on this machine).
EMBEDDER = """
import ctypes, io, json, sys
from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Store
from stackstitch.engine.host.spectest import spectest_imports
from stackstitch.engine.frontend.types import FuncType
from stackstitch.engine.host.wasi import Wasi

def writable_and_executable():
    with open("/proc/self/maps") as maps:
        return [line.strip() for line in maps if line.split()[1][1:3] == "wx"]

module = load_bytes(sys.stdin.read().encode(), text=True)
report = {"results": [], "stdout": [], "host_calls": 0}
for mode in ("native", "libcall"):
    store = Store(switching=mode)
    stdout = io.BytesIO()
    wasi = Wasi(["prog"], {}, stdout=stdout)
    instance = None

    def twice(x):
        report["host_calls"] += 1
        return 2 * x

    def call_back(x):
        return instance.invoke("inc", [x])[0]

    ft = FuncType(("i32",), ("i32",))
    imports = {**wasi.imports(store), **spectest_imports(store),
               ("host", "twice"): store.host_function(ft, twice, "twice"),
               ("host", "call_back"): store.host_function(ft, call_back, "call_back")}
    instance = store.instantiate(module, imports)
    wasi.bind(instance)
    report["results"].append(instance.invoke("main", [20]))
    report["stdout"].append(stdout.getvalue().decode())
report["wx_after_running"] = writable_and_executable()
keep = ctypes.CFUNCTYPE(ctypes.c_int)(lambda: 1)
report["wx_after_a_ctypes_callback"] = writable_and_executable()
print(json.dumps(report))
"""

# A WASI program that says it is ready, then blocks reading stdin from inside a
# continuation, and echoes what it read.
ECHO_WAT = """
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "ready\\n")
  (func $write (param $buf i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $buf))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $echo
    (i32.store (i32.const 0) (i32.const 100))
    (i32.store (i32.const 4) (i32.const 64))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $write (i32.const 100) (i32.load (i32.const 8))))
  (elem declare func $echo)
  (func (export "_start")
    (call $write (i32.const 16) (i32.const 6))
    (resume $ct (cont.new $ct (ref.func $echo)))))
"""


def writable_and_executable(maps: str) -> list[str]:
    return [line for line in maps.splitlines() if line.split()[1][1:3] == "wx"]


def test_embedding_with_imports_leaves_no_writable_executable_mapping():
    child = subprocess.run([sys.executable, "-c", EMBEDDER], input=IMPORTS_WAT, capture_output=True,
                           text=True, timeout=120, cwd=REPO_ROOT)
    assert child.returncode == 0, child.stderr
    report = json.loads(child.stdout)
    # (twice(20) + call_back(20)) from the main stack, then from a continuation; per mode.
    assert report["results"] == [[61, 61], [61, 61]]
    assert report["stdout"] == ["hi\nhi\n", "hi\nhi\n"]
    assert report["host_calls"] == 4
    assert report["wx_after_running"] == []
    assert report["wx_after_a_ctypes_callback"], "the check must see a libffi closure's page"


def test_stackstitch_run_blocked_in_a_host_call_has_no_writable_executable_mapping(tmp_path):
    program = tmp_path / "echo.wat"
    program.write_text(ECHO_WAT)
    child = subprocess.Popen([sys.executable, "-m", "stackstitch.engine.cli", "run", str(program)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             cwd=REPO_ROOT)
    try:
        assert child.stdout.readline() == b"ready\n"
        # The child now waits in fd_read, a host call made from inside a continuation.
        with open(f"/proc/{child.pid}/maps") as f:
            mapped = f.read()
        out, err = child.communicate(b"ping\n", timeout=60)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == 0, err
    assert out == b"ping\n"
    assert writable_and_executable(mapped) == []
