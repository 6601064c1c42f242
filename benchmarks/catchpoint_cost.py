"""What the gdb plugin's catchpoints cost: the generator kernel (kernels/switch_generator.wat,
`run(n)`: n suspend/resume round trips) run by `stackstitch run` alone, then under gdb with
the plugin and no catchpoint, with `catch wasm-trap` (what `stackstitch gdb` sets by
default), and with a `catch suspend` whose tag never matches (every suspend stops in gdb,
which goes on: what a catchpoint costs once it is set, per event).

Each time is the best of R runs of the kernel's process (under gdb: the time of gdb's
`run`, so that gdb's own start-up does not count), minus the same with n = 1, divided by n.
The configurations take turns, so that a change in the machine's load hits them alike.

    python benchmarks/catchpoint_cost.py [--n 300000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

KERNEL = Path(__file__).resolve().parent / "kernels" / "switch_generator.wat"
SLOW_N = 2_000  # round trips for the configuration that stops at each one


def command(config: str, n: int, gdb: str) -> list[str]:
    run = [str(KERNEL), "--invoke", "run", str(n)]
    if config == "stackstitch run":
        return [sys.executable, "-m", "stackstitch.engine.cli", "run", *run]
    launcher = [sys.executable, "-m", "stackstitch.engine.cli", "gdb"]
    catch = {"gdb, plugin, no catchpoint": ["--no-catch-trap"], "gdb, catch wasm-trap": []}
    extra = [] if config in catch else ["-ex", "catch suspend no-such-tag"]
    return [*launcher, *catch.get(config, ["--no-catch-trap"]), *run, "--", "-nx", "--batch", *extra,
            "-ex", "python import time; started = time.perf_counter()", "-ex", "run",
            "-ex", "python print(f'elapsed {time.perf_counter() - started}')"]


def timed(args: list[str], expect: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    elapsed = time.perf_counter() - start
    if expect not in result.stdout.split():
        raise SystemExit(f"catchpoint_cost: unexpected output of {' '.join(args)}: "
                         f"{(result.stderr or result.stdout).strip().splitlines()[-1:]}")
    reported = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("elapsed ")]
    return float(reported[0]) if reported else elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    gdb = shutil.which("gdb")
    if gdb is None:
        print("catchpoint_cost: gdb is not installed", file=sys.stderr)
        return 1
    configs = ("stackstitch run", "gdb, plugin, no catchpoint", "gdb, catch wasm-trap",
               "gdb, catch suspend never matching")
    sizes = {config: SLOW_N if config.endswith("matching") else args.n for config in configs}
    best = {(config, n): float("inf") for config in configs for n in (1, sizes[config])}
    for _ in range(args.repeat):
        for config, n in best:
            best[config, n] = min(best[config, n], timed(command(config, n, gdb), str(n * (n + 1) // 2)))
    for config in configs:
        n = sizes[config]
        print(f"{config:<36} {(best[config, n] - best[config, 1]) / n * 1e9:10.1f} ns per round trip  (n = {n})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
