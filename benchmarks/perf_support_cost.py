"""What `--perf-map` and `--jitdump` cost: the observers' time per module and per
function, against the instantiation (compilation) they ride on, plus the bytes written.

Each module is compiled once; the observers are then timed on that compile result
directly (best of --repeat), which isolates their cost from the noise of compiling.
Runs without either flag have no observers at all (see tests/test_perf.py).

    python benchmarks/perf_support_cost.py [--sizes 10,100,1000] [--repeat 7]
    python benchmarks/perf_support_cost.py --dwarf MODULE.wasm [--repeat 3]

`--dwarf` times the jitdump observer on a WASI module with DWARF (C built with `-g`):
DEBUG_INFO records with its source lines, against Wasm offsets as lines (DWARF hidden).
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


def dwarf_cost(path: str, repeat: int) -> str:
    """The jitdump observer on `path`, with its DWARF's source lines and without."""
    from stackstitch.engine.frontend.loader import load_module
    from stackstitch.engine.host.wasi import Wasi
    from stackstitch.engine.runtime.store import Store
    from stackstitch.perf_map.jitdump import JitdumpWriter

    placed = []
    store = Store(code_observers=[lambda *args: placed.append(args)])
    module = load_module(path)
    store.instantiate(module, Wasi([path], {}).imports(store))
    module, compiled, region = placed[0]
    dwarf_bytes = sum(end - start for name, (start, end) in module.custom_sections.items()
                      if name.startswith(".debug_"))
    times = {}
    with tempfile.TemporaryDirectory() as scratch:
        writer = JitdumpWriter(scratch, os.path.basename(path))
        sections = module.custom_sections
        for lines, visible in (("source lines", sections),
                               ("Wasm offsets", {k: v for k, v in sections.items() if k != ".debug_info"})):
            module.custom_sections = visible
            before = os.path.getsize(writer.path)
            times[lines] = (best_of(repeat, lambda: writer(module, compiled, region)),
                            (os.path.getsize(writer.path) - before) // repeat)
        module.custom_sections = sections
        writer.close()
    return (f"{os.path.basename(path)}: {len(compiled.functions)} functions, {dwarf_bytes} bytes of DWARF; "
            + "; ".join(f"jitdump with {what}: {seconds * 1e3:.0f} ms, {size} bytes"
                        for what, (seconds, size) in times.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000",
                        help="functions per generated module, comma-separated")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dwarf", metavar="MODULE")
    args = parser.parse_args()
    if args.dwarf:
        try:
            print(dwarf_cost(args.dwarf, max(1, min(args.repeat, 3))))
        except Exception as e:  # one line
            print(f"perf_support_cost: {type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
            return 1
        return 0
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
