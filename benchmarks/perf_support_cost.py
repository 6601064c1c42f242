"""What `--perf-map` and `--jitdump` cost: the observers' time per module and per
function, against the instantiation (compilation) they ride on, plus the bytes written.

Each module is compiled once; the observers are then timed on that compile result
directly (best of --repeat), which isolates their cost from the noise of compiling.
Runs without either flag have no observers at all (see tests/test_perf.py).

    python benchmarks/perf_support_cost.py [--sizes 10,100,1000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from gen_compile_module import Generator


def best_of(repeat: int, run) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def compile_once(module, repeat: int):
    """(best instantiation seconds, store, compiled, region) for `module`."""
    from stackstitch.engine.runtime.store import Store
    last = {}

    def instantiate():
        store = Store(code_observers=[lambda m, compiled, region: last.update(
            compiled=compiled, region=region)])
        store.instantiate(module, {})
        last["store"] = store
    seconds = best_of(repeat, instantiate)
    return seconds, last["store"], last["compiled"], last["region"]


def observer_cost(make, module, store, compiled, region, repeat: int) -> tuple[float, float, int]:
    """(setup seconds: create + stubs, seconds for the module, bytes it writes)."""
    observers = []

    def setup():
        observers.append(make())
        observers[-1].stubs_placed(store.stubs)

    def observe():
        observers[-1](module, compiled, region)
    setup_seconds = best_of(repeat, setup)
    before = os.path.getsize(observers[-1].path)
    module_seconds = best_of(repeat, observe)
    written = (os.path.getsize(observers[-1].path) - before) // repeat
    for observer in observers:
        observer.close()
    return setup_seconds, module_seconds, written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000",
                        help="functions per generated module, comma-separated")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes: expected integers, got {args.sizes!r}")
    repeat = max(1, args.repeat)
    from stackstitch.engine.frontend.loader import load_bytes
    from stackstitch.perf_map.jitdump import JitdumpWriter
    from stackstitch.perf_map.perfmap import PerfMapWriter, perf_map_path

    print(f"{'functions':>9} {'instantiate ms':>14} {'observer':>11} {'setup ms':>9} "
          f"{'module ms':>9} {'us/func':>8} {'% of inst.':>10} {'bytes/func':>10}")
    with tempfile.TemporaryDirectory() as scratch:
        observers = {"--perf-map": PerfMapWriter,
                     "--jitdump": lambda: JitdumpWriter(tempfile.mkdtemp(dir=scratch), "m.wasm")}
        for count in sizes:
            module = load_bytes(Generator(1).module(count).encode())
            inst, store, compiled, region = compile_once(module, repeat)
            for name, make in observers.items():
                setup, seconds, written = observer_cost(make, module, store, compiled, region,
                                                        repeat)
                print(f"{count:>9} {inst * 1e3:>14.2f} {name:>11} {setup * 1e3:>9.3f} "
                      f"{seconds * 1e3:>9.2f} {seconds * 1e6 / count:>8.1f} "
                      f"{100 * seconds / inst:>9.1f}% {written // count:>10}")
    if os.path.exists(perf_map_path()):
        os.unlink(perf_map_path())
    return 0


if __name__ == "__main__":
    sys.exit(main())
