"""What the gdb plugin adds to `bt`: stopped in a leaf 100 continuations deep, with 10 Wasm
frames on each stack (1,000 frames), the time of gdb's `bt` with the plugin's boundary
lines against plain gdb's `bt -no-filters` on the same stop, both warm (gdb has already
unwound the frames once), and `info continuations`.

    python benchmarks/gdb_plugin_bt.py [--continuations 100] [--frames 10] [--repeat 5]

Prints one line per measurement and the ratio; errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# $body recurses to `frames` Wasm frames, then resumes a fresh continuation of itself
# while the depth global lasts, and calls $leaf (where gdb stops) at the bottom.
MODULE = """
(module
  (type $ft (func)) (type $ct (cont $ft))
  (func $leaf (param i32))
  (global $depth (mut i32) (i32.const {continuations}))
  (func $recurse (param $n i32)
    (if (i32.gt_u (local.get $n) (i32.const 1))
      (then (call $recurse (i32.sub (local.get $n) (i32.const 1))) (return)))
    (global.set $depth (i32.sub (global.get $depth) (i32.const 1)))
    (if (i32.eqz (global.get $depth))
      (then (call $leaf (i32.const 0)) (return)))
    (resume $ct (cont.new $ct (ref.func $body))))
  (func $body (call $recurse (i32.const {frames})))
  (func (export "main") (call $body))
  (elem declare func $body))
"""

# Runs in gdb's own Python at the stop: warm both, then time each `repeat` times.
TIMER = """
import json, time, gdb

def best(command, repeat):
    gdb.execute(command, to_string=True)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        text = gdb.execute(command, to_string=True)
        times.append(time.perf_counter() - start)
    return min(times), text.count("\\n")

def measure(path, repeat):
    results = {}
    for name, command in (("plain bt", "bt -no-filters"), ("plugin bt", "bt"),
                          ("info continuations", "info continuations")):
        seconds, lines = best(command, repeat)
        results[name] = {"seconds": seconds, "lines": lines}
    with open(path, "w") as f:
        json.dump(results, f)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--continuations", type=int, default=100)
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    gdb = shutil.which("gdb")
    if gdb is None:
        print("gdb is not installed", file=sys.stderr)
        return 1
    from stackstitch.gdb_plugin.launcher import plugin_loader

    with tempfile.TemporaryDirectory() as tmp:
        module = Path(tmp) / "deep.wat"
        module.write_text(MODULE.format(continuations=args.continuations, frames=args.frames))
        timer = Path(tmp) / "timer.py"
        timer.write_text(TIMER)
        results = Path(tmp) / "results.json"
        command = [gdb, "-nx", "--batch", "-ex", "set breakpoint pending on",
                   "-x", str(plugin_loader()), "-x", str(timer),
                   "-ex", "break leaf", "-ex", "run",
                   "-ex", f"python measure({str(results)!r}, {args.repeat})", "-ex", "kill",
                   "--args", sys.executable, "-m", "stackstitch.engine.cli", "run",
                   "--stack-size", "64K", str(module), "--invoke", "main"]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if not results.exists():
            lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
            print(f"gdb_plugin_bt: gdb did not stop where expected: {lines[-1]}", file=sys.stderr)
            return 1
        measured = json.loads(results.read_text())
    for name, m in measured.items():
        print(f"{name:<20} {m['seconds'] * 1000:8.2f} ms  ({m['lines']} lines)")
    ratio = measured["plugin bt"]["seconds"] / measured["plain bt"]["seconds"]
    print(f"plugin bt / plain bt: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
