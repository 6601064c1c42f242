"""What making JIT code visible to gdb costs: per module, the time to build and register its
one ELF object, the object's size, and the number of objects, for modules of F functions.

    python benchmarks/gdbjit_cost.py [--functions 10,100,1000] [--modules 20] [--under-gdb]

`--under-gdb` reruns the measurement inside `gdb --batch`, where each registration stops at
gdb's JIT breakpoint and gdb reads the object: the cost a debugging session sees.
Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time


def module_text(functions: int) -> str:
    """A chain of small functions, each calling the next."""
    bodies = [f"(func $f{k} (param i32) (result i32) local.get 0 i32.const {k} i32.add call $f{k + 1})"
              for k in range(functions - 1)]
    bodies.append(f"(func $f{functions - 1} (param i32) (result i32) local.get 0)")
    return "(module " + " ".join(bodies) + ")"


def measure(functions: int, modules: int) -> str:
    from stackstitch.engine.frontend.loader import load_bytes
    from stackstitch.engine.runtime.store import Store
    from stackstitch.unwind.gdbjit import GdbJitRegistrar

    captured = []
    Store(code_observers=[lambda *placed: captured.append(placed)]).instantiate(
        load_bytes(module_text(functions).encode(), f"chain{functions}.wat"), {})
    module, compiled, region = captured[0]
    registrar = GdbJitRegistrar()
    start = time.perf_counter()
    for _ in range(modules):
        registrar(module, compiled, region)
    per_module = (time.perf_counter() - start) / modules
    size = len(registrar.registrations[0].image.raw)
    registrar.close()
    return (f"{functions:>6} functions: {per_module * 1e3:8.3f} ms/module, 1 object/module, "
            f"{size} bytes/object ({size / functions:.0f} bytes/function)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", default="10,100,1000")
    parser.add_argument("--modules", type=int, default=20)
    parser.add_argument("--under-gdb", action="store_true")
    args = parser.parse_args()
    try:
        counts = [int(n) for n in args.functions.split(",")]
        if args.under_gdb:
            gdb = shutil.which("gdb")
            if gdb is None:
                raise RuntimeError("gdb is not installed")
            command = [gdb, "-nx", "--batch", "-ex", "run", "--args", sys.executable, __file__,
                       "--functions", args.functions, "--modules", str(args.modules)]
            result = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in result.stdout.splitlines() if "functions:" in line]
            if len(lines) != len(counts):
                raise RuntimeError("the run under gdb did not finish")
            print("under gdb:")
            print("\n".join(lines))
            return 0
        for n in counts:
            print(measure(n, args.modules), flush=True)
    except Exception as e:  # report any failure as one line
        print(f"{type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
