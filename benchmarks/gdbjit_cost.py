"""What making JIT code visible to gdb costs: per module, the time to build and register its
one ELF object, the object's size, and the number of objects, for modules of F functions.

    python benchmarks/gdbjit_cost.py [--functions 10,100,1000] [--modules 20] [--under-gdb]
                                     [--dwarf [MODULE.wasm]]

`--under-gdb` reruns the measurement inside `gdb --batch`, where each registration stops at
gdb's JIT breakpoint and gdb reads the object: the cost a debugging session sees.
`--dwarf` measures a module with DWARF instead: translating it (what a debugged process
pays) against Wasm-level info only, and the debug info emitted. Without MODULE it builds
tests/data/debug/list.c with `zig cc -g -O0` (the ziglang wheel), which with wasi-libc's
own DWARF carries about 1.2 MB of it.
Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEBUG_PROGRAM = Path(__file__).resolve().parent.parent / "tests" / "data" / "debug" / "list.c"


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


def build_debug_program(directory: str) -> Path:
    out = Path(directory) / "list-O0.wasm"
    build = subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-wasi", "-g", "-O0",
                            str(DEBUG_PROGRAM), "-o", str(out)], capture_output=True, text=True)
    if build.returncode != 0:
        raise RuntimeError(f"zig cc failed: {build.stderr.strip() or 'is the ziglang wheel installed?'}")
    return out


def measure_dwarf(path: Path, modules: int) -> list[str]:
    """Registration of a module with DWARF, translated and not; sizes of what is emitted."""
    from stackstitch.engine.frontend.loader import load_module
    from stackstitch.engine.runtime.store import Store
    from stackstitch.engine.host.wasi import Wasi
    from stackstitch.unwind.debuginfo import module_debug_sections
    from stackstitch.unwind.gdbjit import GdbJitRegistrar

    captured = []
    store = Store(code_observers=[lambda *placed: captured.append(placed)])
    module = load_module(path)
    store.instantiate(module, Wasi([path.name], {}).imports(store))
    module, compiled, region = captured[0]
    dwarf_bytes = sum(end - start for name, (start, end) in module.custom_sections.items()
                      if name.startswith(".debug_"))
    lines = [f"{path.name}: {len(module.data)} bytes, {dwarf_bytes} bytes of DWARF, "
             f"{len(compiled.functions)} functions"]
    for translate in (True, False):
        registrar = GdbJitRegistrar(translate_dwarf=translate)
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(modules):
            registrar(module, compiled, region)
        per_module = (time.perf_counter() - start) / modules
        per_module_cpu = (time.process_time() - start_cpu) / modules
        size = len(registrar.registrations[0].image.raw)
        registrar.close()
        start_cpu = time.process_time()
        debug = module_debug_sections(module, compiled, region.address, path.name, translate)
        debug_cpu = time.process_time() - start_cpu
        what = "its DWARF translated" if translate else "Wasm-level info only"
        lines.append(f"  {what:>22}: {per_module * 1e3:8.1f} ms/module ({per_module_cpu * 1e3:.1f} ms CPU), "
                     f"object {size} bytes, of which debug sections {sum(map(len, debug.values()))} bytes "
                     f"({debug_cpu * 1e3:.1f} ms CPU to make): "
                     + ", ".join(f"{name} {len(data)}" for name, data in sorted(debug.items())))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", default="10,100,1000")
    parser.add_argument("--modules", type=int, default=20)
    parser.add_argument("--under-gdb", action="store_true")
    parser.add_argument("--dwarf", nargs="?", const="", default=None, metavar="MODULE")
    args = parser.parse_args()
    try:
        counts = [int(n) for n in args.functions.split(",")]
        if args.under_gdb:
            gdb = shutil.which("gdb")
            if gdb is None:
                raise RuntimeError("gdb is not installed")
            command = [gdb, "-nx", "--batch", "-ex", "run", "--args", sys.executable, __file__,
                       "--functions", args.functions, "--modules", str(args.modules)]
            if args.dwarf is not None:
                command += ["--dwarf", args.dwarf]
            result = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in result.stdout.splitlines() if "functions" in line or "ms/module" in line]
            if not lines:
                raise RuntimeError("the run under gdb did not finish")
            print("under gdb:")
            print("\n".join(lines))
            return 0
        if args.dwarf is not None:
            with tempfile.TemporaryDirectory() as directory:
                path = Path(args.dwarf) if args.dwarf else build_debug_program(directory)
                print("\n".join(measure_dwarf(path, min(args.modules, 5))), flush=True)
            return 0
        for n in counts:
            print(measure(n, args.modules), flush=True)
    except Exception as e:  # report any failure as one line
        print(f"{type(e).__name__}: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
