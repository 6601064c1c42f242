"""The `stackstitch` command line: `run` a module, `compile` one into the code cache, or run
`wast` conformance scripts; `perf`, `trace`, `gdb` and `lldb` are handed to their packages.

Exit statuses (as in the README): 0 success, 1 a module that cannot be loaded, validated or
linked, 2 a usage error, 134 a trap or an unhandled suspension (Wasmtime's convention), n
for a WASI `proc_exit(n)`, 70 an internal error. Errors are one line on stderr, never a
traceback. Engine modules are imported only by the command that needs them, so `--help`
and usage errors work (and are fast) whatever state the engine is in.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path

from .host import WASI_MODULE
from .options import COMMANDS, build_parser, command_parser, parse_subcommand

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERNAL, EXIT_TRAP = 0, 1, 2, 70, 134
EXIT_BROKEN_PIPE = 141  # as a shell reports a program that SIGPIPE ended


class UsageError(Exception):
    """The command line is wrong in a way argparse cannot see (exit status 2)."""


class RunError(Exception):
    """The module cannot be run as asked (exit status 1)."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    if argv[:1] and argv[0] in COMMANDS:  # only that command's parser: less to build
        return parse_subcommand(None, {argv[0]: command_parser(argv[0])}, argv, "command")
    return parse_subcommand(*build_parser(), argv, "command")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `stackstitch` console script; returns the exit status. Without
    `argv`, main is the program (the process ends when it returns)."""
    try:
        return dispatch(argv)
    except BrokenPipeError:  # `stackstitch ... | head` stopped reading: nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nor at exit's flush
        return EXIT_BROKEN_PIPE


def dispatch(argv: list[str] | None) -> int:
    program = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["perf"]:
        from stackstitch.perf_map.cli import main as perf_main
        return perf_main(argv[1:])
    if argv[:1] == ["gdb"]:
        from stackstitch.gdb_plugin.launcher import main as gdb_main
        return gdb_main(argv[1:])
    if argv[:1] == ["trace"]:
        from stackstitch.perf_map.trace_cli import main as trace_main
        return trace_main(argv[1:])
    if argv[:1] == ["lldb"]:
        from stackstitch.lldb_plugin.launcher import main as lldb_main
        return lldb_main(argv[1:])
    try:
        args = parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2), already printed
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    if args.command == "wast":
        from .wast import run_files
        return guarded(lambda: run_files(args.files, verbose=args.verbose, timeout=args.timeout,
                                         jobs=args.jobs, switching=args.switching), "wast")
    if args.command == "compile":
        return guarded(lambda: compile_module(args), "compile")
    return guarded(lambda: run_module(args, program=program), "run")


def guarded(command, name: str) -> int:
    """`command()`'s exit status, with its errors as exit statuses and one line on stderr;
    `name` is the subcommand a usage error points to the help of."""
    try:
        return command()
    except UsageError as e:
        return fail(f"error: {e} (see `stackstitch {name} --help`)", EXIT_USAGE)
    except RunError as e:
        return fail(f"error: {e}", EXIT_ERROR)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        raise
    except Exception as e:  # a bug of ours: one line, no traceback
        return fail(f"internal error: {type(e).__name__}: {one_line(e)}", EXIT_INTERNAL)


def fail(message: str, status: int) -> int:
    print(f"stackstitch: {message}", file=sys.stderr)
    return status


def one_line(error: object) -> str:
    return " ".join(str(error).split())


def open_cache(args: argparse.Namespace):
    """The code cache, unless --no-cache; a directory that cannot be used is left alone
    with a warning, and the run goes on without it."""
    if args.no_cache:
        return None
    from .codecache import CacheUnusable, CodeCache
    try:
        return CodeCache.open()
    except CacheUnusable as e:
        print(f"stackstitch: warning: code cache not used: {e}", file=sys.stderr)
        return None


def new_store(args: argparse.Namespace, cache, store_options: dict | None = None, **observers):
    from .runtime.store import Store
    options = {name: value for name, value in
               (("cont_stack_size", args.stack_size), ("switching", args.switching))
               if value is not None}
    options.update(store_options or {})
    return Store(**options, code_cache=cache, **observers)


def load(path: str, store, cache):
    """The module at `path`, validated unless the cache holds its code for this store's
    options."""
    from .frontend.loader import LoadError, load_module
    try:
        return load_module(path, cache, store.code_options)
    except LoadError as e:
        raise RunError(one_line(e)) from None


def run_module(args: argparse.Namespace, store_options: dict | None = None, finish=None,
               program: bool = False) -> int:
    """`stackstitch run`: load, set up the store and its observers, run, clean up.
    `store_options` add to the store's; `finish(store)` runs after the module has (even
    after a trap), before the store closes: `stackstitch trace record` writes its trace
    there. Starting makes many long-lived objects and no cycles: the cyclic garbage
    collector waits until the module runs, and then leaves those objects alone (frozen:
    they live as long as the run, and a `program` ends with it)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        return start_and_run(args, store_options, finish, collecting)
    finally:
        if not program:
            gc.unfreeze()
        if collecting:
            gc.enable()


def start_and_run(args: argparse.Namespace, store_options: dict | None, finish,
                  collect: bool) -> int:
    from . import values

    cache = open_cache(args)
    store = new_store(args, cache, store_options, trap_observers=[capture_backtrace])
    try:
        module = load(args.module, store, cache)
        preloads = [(name, load(path, store, cache))
                    for name, path in map(preload_setting, args.preload)]
        if not args.no_gdb_jit:
            from stackstitch.unwind.gdbjit import support_debuggers
            support_debuggers(store, source_path=lambda _module: args.module,
                              translate_dwarf=args.debug_info or None)
        if args.perf_map or args.jitdump is not None:  # imported only when asked: no cost otherwise
            from stackstitch.perf_map.observers import ProfilingSetupError, observers_from_args
            try:
                for observer in observers_from_args(args.perf_map, args.jitdump, Path(args.module).name):
                    store.add_code_observer(observer)
            except ProfilingSetupError as e:
                raise RunError(str(e)) from None
        return run_in_store(store, module, preloads, args, values, collect)
    finally:
        try:
            if finish is not None:
                finish(store)
        finally:
            store.close()


def capture_backtrace(store, error) -> None:
    """Traps carry stitched backtraces (`stackstitch.backtrace`, loaded at the first trap)."""
    from stackstitch.backtrace import capture
    capture(store, error)


def compile_module(args: argparse.Namespace) -> int:
    """`stackstitch compile`: what `run` with these options would compile, into the cache,
    with the debugger object `run` registers (unless --no-gdb-jit)."""
    from .codecache import CacheUnusable, CodeCache
    from .compiler.common import CompileError

    if args.no_cache:
        raise UsageError("compile fills the code cache; --no-cache leaves it nothing to do")
    try:
        cache = CodeCache.open()
    except CacheUnusable as e:
        raise RunError(f"cannot use the code cache: {e}") from None
    store = new_store(args, cache)
    try:
        module = load(args.module, store, cache)
        if not args.no_gdb_jit:
            from stackstitch.unwind.gdbjit import GdbJitRegistrar
            store.add_code_observer(GdbJitRegistrar(source_path=lambda _module: args.module,
                                                    translate_dwarf=args.debug_info or None))
        try:
            compiled, _ = store.compile(module)
        except CompileError as e:
            raise RunError(one_line(e)) from None
        entry = cache.path(cache.entry(module.data, store.code_options).key, "code")
        if not entry.is_file():
            raise RunError(f"cannot write the code cache in {cache.directory}")
        print(f"{args.module}: {len(compiled.functions)} functions, {len(compiled.code)} bytes "
              f"of code in {entry}")
        return EXIT_OK
    finally:
        store.close()


def run_in_store(store, module, preloads: list, args: argparse.Namespace, values,
                 collect: bool = True) -> int:
    """Link with WASI and the preloaded modules, call the entry point, print results or
    report how it ended; the cyclic garbage collector runs while the module does if
    `collect` (not over what starting made: frozen)."""
    from .compiler.common import CompileError
    from .runtime.store import HostExit, LinkError, Trap, WasmException

    wasi = new_wasi(args) if args.dir or args.env or any(
        imports_wasi(m) for m in [module, *(preload for _, preload in preloads)]) else None
    try:
        imports = wasi.imports(store) if wasi is not None else {}
        for name, preload in preloads:
            exported = store.instantiate(preload, imports, name=name).exports
            imports = {**imports, **{(name, export): value for export, value in exported.items()}}
        instance = store.instantiate(module, imports, name=Path(args.module).stem)
        if imports_wasi(module):
            wasi.bind(instance)
        func, raw_args = entry_point(instance, args, values)
        if collect:
            gc.freeze()
            gc.enable()
        results = func(*raw_args) if func is not None else []
    except (LinkError, CompileError) as e:
        raise RunError(one_line(e)) from None
    except HostExit as e:  # WASI's proc_exit (ProcExit): the run's only host functions are WASI's
        sys.stdout.flush()
        return e.code
    except (Trap, WasmException) as e:
        return report_trap(e, args.trap_format, color=False if args.no_color else None)
    finally:
        if wasi is not None:
            wasi.close()
    for raw, valtype in zip(results, func.type.results if func is not None else ()):
        print(values.format_result(raw, valtype))
    return EXIT_OK


def imports_wasi(module) -> bool:
    return any(imp.module == WASI_MODULE for imp in module.imports)


def new_wasi(args: argparse.Namespace):
    """The WASI state of the run: its arguments, environment and preopened directories.
    Made only when a module imports WASI or a WASI option is given, so that other modules
    load none of WASI's code."""
    from .host.wasi import Wasi
    preopens = [preopened_dir(value) for value in args.dir]
    try:
        return Wasi(args=[Path(args.module).name, *args.args], env=wasi_environment(args.env),
                    preopens=preopens)
    except OSError as e:
        raise RunError(f"--dir {e.filename}: {e.strerror}") from None


def preload_setting(setting: str) -> tuple[str, str]:
    """`--preload NAME=MODULE`."""
    name, equals, path = setting.partition("=")
    if not name or not equals or not path:
        raise UsageError(f"invalid --preload {setting!r}: expected NAME=MODULE")
    return name, path


def preopened_dir(value: str) -> tuple[str, str]:
    """`--dir HOST_DIR[::GUEST_DIR]`, split as Wasmtime splits it: the guest name defaults
    to the host path as written."""
    host, *guest = value.split("::")
    return host, guest[0] if guest else host


def wasi_environment(settings: list[str]) -> dict[str, str]:
    """`--env` values: NAME=VALUE, or NAME alone to pass the host's value through."""
    env = {}
    for setting in settings:
        name, equals, value = setting.partition("=")
        if not name:
            raise UsageError(f"invalid --env {setting!r}: expected NAME=VALUE")
        if equals:
            env[name] = value
        elif name in os.environ:
            env[name] = os.environ[name]
    return env


def entry_point(instance, args: argparse.Namespace, values):
    """The function to call and its raw arguments: `--invoke NAME`, else `_start`, else
    nothing (instantiation already ran the start function)."""
    if args.invoke is None:
        start = instance.exports.get("_start")
        return (start, []) if start is not None and hasattr(start, "type") else (None, [])
    func = instance.exports.get(args.invoke)
    if func is None or not hasattr(func, "type") or not hasattr(func.type, "params"):
        raise RunError(f"no exported function named {args.invoke!r}")
    params = func.type.params
    if len(args.args) != len(params):
        raise UsageError(f"{args.invoke} takes {len(params)} arguments "
                         f"({', '.join(map(str, params)) or 'none'}), {len(args.args)} given")
    try:
        return func, [values.parse_arg(text, valtype) for text, valtype in zip(args.args, params)]
    except ValueError as e:
        raise UsageError(f"invalid argument for {args.invoke}: {e}") from None


def report_trap(error, trap_format: str, color: bool | None) -> int:
    """Print the trap report (see `stackstitch.backtrace`) on stderr; exit status 134.

    The runtime attaches the walked stacks to the error as `backtrace`; without it the
    report has the message alone."""
    from stackstitch.backtrace import UNCAUGHT_EXCEPTION, Backtrace, print_text, render_json
    from .runtime.store import Trap

    sys.stdout.flush()
    trace = getattr(error, "backtrace", None)
    if not isinstance(trace, Backtrace):  # the runtime did not walk the stacks
        trace = (Backtrace(message=error.message) if isinstance(error, Trap)
                 else Backtrace(kind=UNCAUGHT_EXCEPTION, message="uncaught exception"))
    if trap_format == "json":
        sys.stderr.write(render_json(trace) + "\n")
    else:
        print_text(trace, sys.stderr, color=color)
    return EXIT_TRAP


if __name__ == "__main__":
    sys.exit(main())
