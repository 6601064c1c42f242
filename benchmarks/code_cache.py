"""Code cache benchmarks: cold and cached runs, stackstitch against the Wasmtime CLI.

Two modules, each run as a fresh process by both tools, cold (stackstitch `--no-cache`,
Wasmtime `-C cache=n`) and cached (each tool's cache, in a private directory, filled by
one run first), best of N wall-clock times: the trivial module (start-up) and the
generated 4,000-function module of the compile benchmark. Then stackstitch's in-process
instantiation of the big module, cold and cached (benchmarks/cache_instantiate.py).

    python benchmarks/code_cache.py [--repeat N] [--markdown]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from run import (CHILD_ENV, KERNELS, WASMTIME_FLAGS, HarnessError, Timing, best_time,
                 first_line, parse_arguments, report, seconds, venv_tool, wasmtime_binary,
                 wat_to_wasm)

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- cache:begin -->", "<!-- cache:end -->"


def commands(wasm: Path, export: str, args: list[str]) -> dict[str, dict[str, list[str]]]:
    """For each tool, its cold and its cached command line."""
    stackstitch = [venv_tool("stackstitch"), "run", str(wasm), "--invoke", export, *args]
    wasmtime = [wasmtime_binary(), "run", *WASMTIME_FLAGS, "--invoke", export]
    return {
        "wasmtime": {"cold": [*wasmtime[:2], "-C", "cache=n", *wasmtime[2:], str(wasm), *args],
                     "cached": [*wasmtime, str(wasm), *args]},
        "stackstitch": {"cold": [*stackstitch, "--no-cache"], "cached": stackstitch},
    }


def measure_runs(name: str, wasm: Path, export: str, args: list[str], repeat: int,
                 timeout: float) -> list[list[str]]:
    rows = []
    for tool, runs in commands(wasm, export, args).items():
        best_time(runs["cached"], 1, timeout)  # fills the cache
        cold, cached = (best_time(runs[kind], repeat, timeout) for kind in ("cold", "cached"))
        rows.append([name, tool, seconds(cold), seconds(cached), speedup(cold, cached)])
    return rows


def speedup(cold: Timing, cached: Timing) -> str:
    if cold.error or cached.error or not cached.seconds:
        return "n/a"
    return f"{cold.seconds / cached.seconds:.1f}x"


def measure_instantiation(wasm: Path, repeat: int, timeout: float) -> list[list[str]]:
    child = subprocess.run([sys.executable, str(HERE / "cache_instantiate.py"), str(wasm),
                            "--repeat", str(repeat)], capture_output=True, text=True,
                           timeout=timeout * repeat * 4, env=CHILD_ENV)
    if child.returncode != 0:
        raise HarnessError(f"cache_instantiate.py: {first_line(child.stderr)}")
    table = [["stackstitch, in-process", "cold", "cached", "cold / cached"]]
    for name, times in json.loads(child.stdout).items():
        cold, cached = Timing(times["cold"]), Timing(times["cached"])
        table.append([name, seconds(cold), seconds(cached), speedup(cold, cached)])
    return table


def main() -> int:
    _, args, _ = parse_arguments("Benchmark cold and cached runs against Wasmtime.", ["cache"])

    def measure() -> list:
        with tempfile.TemporaryDirectory(prefix="stackstitch-cache-bench-") as tmp:
            workdir = Path(tmp)
            CHILD_ENV["XDG_CACHE_HOME"] = str(workdir / "cache")  # both tools' caches
            big_wat = workdir / "compile.wat"
            generated = subprocess.run([sys.executable, str(HERE / "gen_compile_module.py"),
                                        str(big_wat)], capture_output=True, text=True)
            if generated.returncode != 0:
                raise HarnessError(f"gen_compile_module.py: {first_line(generated.stderr)}")
            big = wat_to_wasm(big_wat, workdir / "compile.wasm")
            trivial = wat_to_wasm(KERNELS / "startup.wat", workdir / "startup.wasm")
            runs = [["module", "tool", "cold", "cached", "cold / cached"]]
            runs += measure_runs("trivial (start-up)", trivial, "one", [], args.repeat, args.timeout)
            runs += measure_runs("4,000 functions", big, "run", ["1", "2"], args.repeat,
                                 args.timeout)
            return [runs, measure_instantiation(big, args.repeat, args.timeout)]

    return report("code_cache.py", measure, args, f"best of {args.repeat} runs", BEGIN, END)


if __name__ == "__main__":
    sys.exit(main())
