"""Time loading and instantiating one module in-process, without and with the code cache.

Run as a child of benchmarks/code_cache.py. "With observers" is what `stackstitch run`
sets up (the GDB JIT registrar and the debug root); "bare" is `Store().instantiate` alone,
as benchmarks/compile_time.py measures it. The module is read from the file and, without
the cache, validated and compiled each time; with it, found in a private cache filled
once beforehand. Prints one JSON object of best times in seconds.

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

        def instantiate(cache, observers: bool) -> float:
            start = time.perf_counter()
            store = Store(code_cache=cache)
            module = load_module(args.module, cache, store.code_options)
            if observers:
                support_debuggers(store, source_path=lambda _module: args.module)
            store.instantiate(module, {})
            elapsed = time.perf_counter() - start
            store.close()
            return elapsed

        with tempfile.TemporaryDirectory(prefix="stackstitch-cache-") as directory:
            def fresh_cache():
                return CodeCache.open(Path(directory))

            instantiate(fresh_cache(), True)  # fill the cache (code and the debugger object)
            best = {}
            for name, observers in (("with observers", True), ("bare", False)):
                best[name] = {
                    "cold": min(instantiate(None, observers) for _ in range(args.repeat)),
                    "cached": min(instantiate(fresh_cache(), observers) for _ in range(args.repeat)),
                }
    except Exception as e:  # report any engine failure as one line
        print(f"{type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    print(json.dumps(best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
