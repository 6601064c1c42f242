"""Time instantiating one module in-process, without and with the code cache.

Run as a child of benchmarks/code_cache.py. "instantiate" is `Store().instantiate` alone,
timed as benchmarks/compile_time.py times it (the module decoded beforehand): cold it
compiles, cached it reads the cache entry (checked, decoded) and places the code. "load
and instantiate, as run" adds what `stackstitch run` does around it: reading the file,
validating and decoding it (validation skipped when cached), the GDB JIT registrar (the
module's object built, or taken from the cache and moved) and the debug root. The cache
is private, filled once beforehand. Prints one JSON object of best times in seconds.

    python benchmarks/cache_instantiate.py MODULE.wasm [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    try:
        from stackstitch.engine.codecache import CodeCache
        from stackstitch.engine.frontend.loader import load_module
        from stackstitch.engine.runtime.store import Store
        from stackstitch.unwind.gdbjit import support_debuggers

        def instantiate(cache) -> float:
            store = Store(code_cache=cache)
            start = time.perf_counter()
            store.instantiate(module, {})
            elapsed = time.perf_counter() - start
            store.close()
            return elapsed

        def load_and_instantiate(cache) -> float:
            start = time.perf_counter()
            store = Store(code_cache=cache)
            loaded = load_module(args.module, cache, store.code_options)
            support_debuggers(store, source_path=lambda _module: args.module)
            store.instantiate(loaded, {})
            elapsed = time.perf_counter() - start
            store.close()
            return elapsed

        module = load_module(args.module)
        with tempfile.TemporaryDirectory(prefix="stackstitch-cache-") as directory:
            def fresh_cache():  # a new cache object each time: nothing read is remembered
                return CodeCache.open(Path(directory))

            load_and_instantiate(fresh_cache())  # fill the cache (code and debugger object)
            best = {}
            for name, measure in (("instantiate", instantiate),
                                  ("load and instantiate, as run", load_and_instantiate)):
                best[name] = {
                    "cold": min(measure(None) for _ in range(args.repeat)),
                    "cached": min(measure(fresh_cache()) for _ in range(args.repeat)),
                }
    except Exception as e:  # report any engine failure as one line
        print(f"{type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    print(json.dumps(best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
