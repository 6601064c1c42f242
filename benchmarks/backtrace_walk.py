"""How long a stitched backtrace takes: walking and rendering 10,000 frames spread over
1,000 nested continuations (target: under 100 ms); with `--sources`, what source positions
add to a trap report.

    python benchmarks/backtrace_walk.py [--continuations 1000] [--depth 10] [--repeat 20]
    python benchmarks/backtrace_walk.py --sources [--repeat 5]

Each continuation runs `depth` frames and resumes the next one; the innermost calls a host
function, which walks the whole live chain from its caller's frame (the same walk a trap
report does) and renders it as text and as JSON. Times are the best of `--repeat` runs.

`--sources` builds tests/data/debug/fibers.c with `zig cc -g -O0` (with wasi-libc's DWARF,
about 1.4 MB of it) and makes it trap three continuations deep, as
`stackstitch run --preload env=fiber.wat fibers.wasm corrupt` does: the time the runtime's
trap hook takes (walk and source positions), the first trap of the process (which imports
pyelftools) and later ones (each reads the DWARF again), against the same walk without
positions. Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEBUG_DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "debug"


def module_text(depth: int) -> str:
    """$step(n) recurses through $pad depth-1 times; the innermost $pad resumes a new
    continuation of $step(n-1), or calls the probe when n is 0."""
    return f"""
    (module
      (type $ft (func (param i32)))
      (type $ct (cont $ft))
      (import "bench" "probe" (func $probe))
      (func $step (param $n i32)
        (call $pad (i32.const {depth - 2}) (local.get $n)))
      (func $pad (param $k i32) (param $n i32)
        (if (local.get $k)
          (then (call $pad (i32.sub (local.get $k) (i32.const 1)) (local.get $n)) (return)))
        (if (i32.eqz (local.get $n)) (then (call $probe) (return)))
        (resume $ct (i32.sub (local.get $n) (i32.const 1)) (cont.new $ct (ref.func $step))))
      (func (export "main") (param $n i32)
        (resume $ct (local.get $n) (cont.new $ct (ref.func $step))))
      (elem declare func $step))
    """


def measure(continuations: int, depth: int, repeat: int) -> dict:
    from stackstitch.backtrace import Walker, render_json, render_text
    from stackstitch.engine.frontend.loader import load_bytes
    from stackstitch.engine.runtime.store import Store
    from stackstitch.engine.frontend.types import FuncType

    store = Store()
    results: dict = {}

    def probe(frame: int):
        """[frame] is the calling Wasm frame's rbp, [frame+8] the return address into it."""
        from stackstitch.engine.runtime.stackwalk import StoreStacks
        fp, pc = StoreStacks.read_words(frame, 2)
        best = {"walk": float("inf"), "text": float("inf"), "json": float("inf")}
        for _ in range(repeat):
            t0 = time.perf_counter()
            trace = Walker(store).walk(pc, fp)
            t1 = time.perf_counter()
            text = render_text(trace)
            t2 = time.perf_counter()
            render_json(trace)
            t3 = time.perf_counter()
            for key, seconds in (("walk", t1 - t0), ("text", t2 - t1), ("json", t3 - t2)):
                best[key] = min(best[key], seconds)
        results.update(best, frames=len(trace.frames), stacks=len(trace.stacks),
                       lines=text.count("\n"), note=trace.note)

    imports = {("bench", "probe"): store.host_function(FuncType((), ()), probe, "probe", frame=True)}
    instance = store.instantiate(load_bytes(module_text(depth).encode(), "backtrace_walk.wat"), imports)
    instance.invoke("main", [continuations - 1])
    return results


def build_fiber_program(directory: str) -> Path:
    out = Path(directory) / "fibers.wasm"
    build = subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-wasi", "-g", "-O0",
                            str(DEBUG_DATA / "fibers.c"), "-Wl,--import-table", "-o", str(out)],
                           capture_output=True, text=True)
    if build.returncode != 0:
        raise RuntimeError(f"zig cc failed: {build.stderr.strip() or 'is the ziglang wheel installed?'}")
    return out


def trap_report_times(program: Path, runs: int) -> list[tuple[float, int]]:
    """(seconds the trap hook took, frames with a source position) of `runs` traps, each in
    a fresh store."""
    from stackstitch.backtrace import capture
    from stackstitch.engine.frontend.loader import load_module
    from stackstitch.engine.host.wasi import Wasi
    from stackstitch.engine.runtime.store import Store, Trap

    primitives, module = load_module(DEBUG_DATA / "fiber.wat"), load_module(program)
    times = []

    def timed_capture(store, error):
        start = time.perf_counter()
        trace = capture(store, error)
        times.append((time.perf_counter() - start, sum(f.file is not None for f in trace.frames)))

    stdout = os.dup(1)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 1)  # the program's printout
        try:
            for _ in range(runs):
                store = Store(trap_observers=[timed_capture])
                wasi = Wasi([program.name, "corrupt"], {})
                imports = wasi.imports(store)
                exported = store.instantiate(primitives, imports, name="env").exports
                imports |= {("env", name): value for name, value in exported.items()}
                instance = store.instantiate(module, imports)
                wasi.bind(instance)
                try:
                    instance.invoke("_start", [])
                except Trap:
                    pass
                store.close()
        finally:
            os.dup2(stdout, 1)
            os.close(stdout)
    if len(times) != runs:
        raise RuntimeError("the program did not trap")
    return times


def measure_sources(repeat: int) -> str:
    from stackstitch.backtrace.symbols import Symbolizer

    with tempfile.TemporaryDirectory() as directory:
        program = build_fiber_program(directory)
        with_sources = trap_report_times(program, repeat + 1)
        positions = Symbolizer.source_positions
        Symbolizer.source_positions = lambda self, code_base, wasm_offset: ()
        try:
            without = trap_report_times(program, repeat)
        finally:
            Symbolizer.source_positions = positions
    first, later = with_sources[0], min(t for t, _ in with_sources[1:])
    return (f"trap report of the C fiber program ({with_sources[0][1]} frames with a source position): "
            f"walk alone {min(t for t, _ in without) * 1e3:.1f} ms; with source positions "
            f"{first[0] * 1e3:.1f} ms for the process's first trap, {later * 1e3:.1f} ms for later ones")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--continuations", type=int, default=1000)
    parser.add_argument("--depth", type=int, default=10, help="frames per continuation (>= 2)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--sources", action="store_true")
    args = parser.parse_args()
    if args.sources:
        try:
            print(measure_sources(min(args.repeat, 5)))
        except Exception as e:
            print(f"backtrace_walk: {type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
            return 1
        return 0
    if args.continuations < 1 or args.depth < 2 or args.repeat < 1:
        print("backtrace_walk: --continuations and --repeat must be >= 1, --depth >= 2",
              file=sys.stderr)
        return 2
    try:
        r = measure(args.continuations, args.depth, args.repeat)
    except Exception as e:
        print(f"backtrace_walk: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    if r.get("note"):
        print(f"backtrace_walk: the walk stopped early: {r['note']}", file=sys.stderr)
        return 1
    total = r["walk"] + r["text"]
    print(f"{r['frames']} frames on {r['stacks']} stacks ({r['lines']} text lines): "
          f"walk {r['walk'] * 1e3:.1f} ms, text {r['text'] * 1e3:.1f} ms, "
          f"walk+text {total * 1e3:.1f} ms (target < 100 ms), json {r['json'] * 1e3:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
