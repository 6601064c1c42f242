"""Time stackstitch's compilation of one module in-process (instantiation compiles it).

Run as a child of benchmarks/run.py, so that an engine crash costs one table cell, not
the whole run. Prints the best time in seconds on stdout; errors are one line on stderr.

    python benchmarks/compile_time.py MODULE.wasm [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    try:
        from stackstitch.engine.frontend.loader import load_module
        from stackstitch.engine.runtime.store import Store

        module = load_module(args.module)  # decoding and validation are not timed
        best = float("inf")
        for _ in range(max(1, args.repeat)):
            start = time.perf_counter()
            Store().instantiate(module, {})
            best = min(best, time.perf_counter() - start)
    except Exception as e:  # report any engine failure as one line
        print(f"{type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    print(f"{best:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
