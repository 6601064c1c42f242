"""How long a stitched backtrace takes: walking and rendering 10,000 frames spread over
1,000 nested continuations (target: under 100 ms).

    python benchmarks/backtrace_walk.py [--continuations 1000] [--depth 10] [--repeat 20]

Each continuation runs `depth` frames and resumes the next one; the innermost calls a host
function, which walks the whole live chain from its caller's frame (the same walk a trap
report does) and renders it as text and as JSON. Times are the best of `--repeat` runs.
Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
import time


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--continuations", type=int, default=1000)
    parser.add_argument("--depth", type=int, default=10, help="frames per continuation (>= 2)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
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
