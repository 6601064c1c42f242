"""The stackstitch side of a differential run: load a module in process, call its exports
with several argument sets, and report what happened as a stream of events.

Events are JSON-ready dicts, emitted as they happen so that a crash or a hang in generated
code still leaves everything before it on record (the worker runs this in a forked child):

  {"event": "rejected", "message"}                    the loader refused the module
  {"event": "module", "funcs", "memories", "globals"} what the script will call and check
  {"event": "instantiated", "outcome", "state"}
  {"event": "calling", "call": {"export", "args"}}   then, unless it crashes or hangs:
  {"event": "returned", "outcome", "state"}

An outcome is {"kind": "return", "values"}, {"kind": "trap", "trap": KIND, "message"},
{"kind": "exception"}, or {"kind": "error", "message"} for anything else stackstitch
raised (an internal error, a compile error). A state is the combined checksum the driver
module computes in Wasmtime (see `wast_script`), plus its parts for the report.
"""

from __future__ import annotations

import ctypes
import functools
import random
import struct
import traceback
import zlib
from dataclasses import asdict, dataclass

from stackstitch.engine.compiler.common import CompileError
from stackstitch.engine.frontend.loader import LoadError, load_bytes
from stackstitch.engine.runtime.store import Func, Global, LinkError, Memory, Store, Trap, WasmException
from stackstitch.engine.host.spectest import spectest_imports
from stackstitch.engine.frontend.types import RefType

from .host import host_module
from .trap_kinds import kind_of

FUEL_EXPORT = "fuzz:fuel"  # the exported fuel global of smith's --ensure-termination
MAX_CALLS = 200  # per module: enough to cover every export of a large smith module


@dataclass(frozen=True)
class Recipe:
    """How a module is driven; with the module, enough to replay a run exactly."""

    args_seed: int = 0
    arg_sets: int = 3  # calls per exported function
    fuel: int = 1000  # the fuel global's value before each call, if the module has one


def type_text(valtype) -> str | None:
    """A value type as WAT text, or None for one the script cannot name (a concrete
    reference type, v128)."""
    if isinstance(valtype, RefType):
        if not isinstance(valtype.heap, str):
            return None
        return f"(ref {'null ' if valtype.nullable else ''}{valtype.heap})"
    return valtype if valtype in ("i32", "i64", "f32", "f64") else None


def callable_with_null_refs(functype) -> bool:
    """Arguments are numbers or null references: a non-nullable or unnamed parameter type
    makes the export uncallable from a script."""
    texts = [type_text(t) for t in functype.params]
    return all(t is not None and (not t.startswith("(ref ") or t.startswith("(ref null"))
               for t in texts)


# ---------------------------------------------------------------- arguments

INTERESTING = {
    "i32": [0, 1, 2, 7, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE],
    "i64": [0, 1, 2, 0xFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000,
            0xFFFFFFFFFFFFFFFF, 0xFFFFFFFF, 0x80000000],
    "f32": [0x00000000, 0x80000000, 0x3F800000, 0xBF800000, 0x7F800000, 0xFF800000,
            0x7FC00000, 0x4F000000, 0xCF000001, 0x00000001, 0x7F7FFFFF, 0x3F000000],
    "f64": [0x0, 0x8000000000000000, 0x3FF0000000000000, 0xBFF0000000000000,
            0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000, 0x41E0000000000000,
            0xC1E0000000200000, 0x0000000000000001, 0x43E0000000000000, 0x3FE0000000000000],
}
WIDTH = {"i32": 32, "i64": 64, "f32": 32, "f64": 64}


def argument_sets(recipe: Recipe, export: str, params: tuple) -> list[list[int]]:
    """Set 0 is all zeros, set 1 small values, the others random picks among edge cases
    and random bits; reference arguments are null. Seeded by the recipe and the export."""
    sets = []
    for k in range(recipe.arg_sets):
        rng = random.Random(f"{recipe.args_seed}/{export}/{k}")
        args = []
        for t in params:
            if not isinstance(t, str):
                args.append(0)
            elif k == 0:
                args.append(0)
            elif k == 1:
                args.append(rng.randrange(1, 16) if t in ("i32", "i64") else INTERESTING[t][2])
            elif rng.random() < 0.6:
                args.append(rng.choice(INTERESTING[t]))
            else:
                args.append(rng.getrandbits(WIDTH[t]))
        sets.append(args)
    return sets


# ---------------------------------------------------------------- state

def state_of(globals_: list[Global], memories: list[Memory]) -> dict:
    """Exported globals and memories, checksummed as the driver module does: CRC-32 over
    each global's value as 8 little-endian bytes (a reference as 1 if null, else 0), then
    for each memory its size in pages (8 bytes) and its contents."""
    crc = 0
    values = []
    for g in globals_:
        value = (1 if g.cell.value == 0 else 0) if isinstance(g.type.valtype, RefType) else g.get()
        values.append(value)
        crc = zlib.crc32(struct.pack("<Q", value), crc)
    memories_ = []
    for m in memories:
        contents = ctypes.string_at(m.base, m.size_bytes) if m.size_bytes else b""
        crc = zlib.crc32(struct.pack("<Q", m.pages), crc)
        crc = zlib.crc32(contents, crc)
        memories_.append([m.pages, zlib.crc32(contents)])
    return {"hash": crc, "globals": values, "memories": memories_}


# ---------------------------------------------------------------- running

def outcome_of(call) -> dict:
    """Run `call()` and describe how it ended."""
    try:
        return {"kind": "return", "values": list(call())}
    except Trap as e:
        kind = kind_of(e.message)
        if kind is None:
            return {"kind": "error", "message": f"trap: {e.message}"}
        return {"kind": "trap", "trap": kind, "message": e.message}
    except WasmException:
        return {"kind": "exception"}
    except (LinkError, CompileError) as e:
        return {"kind": "error", "message": f"{type(e).__name__}: {e}{where(e)}"}
    except Exception as e:  # a bug in the engine: reported as such, never fatal here
        return {"kind": "error", "message": f"internal error: {type(e).__name__}: {e}{where(e)}"}


def where(error: Exception) -> str:
    """The innermost engine functions an error passed through, for telling bugs apart."""
    frames = traceback.extract_tb(error.__traceback__)[-4:]
    return " (in " + " < ".join(f.name for f in reversed(frames)) + ")"


def observe(wasm: bytes, recipe: Recipe, emit) -> None:
    """Run the module as the script will, calling `emit(event)` for each event."""
    try:
        module = load_bytes(wasm)
    except LoadError as e:
        emit({"event": "rejected", "message": str(e)})
        return
    funcs, fuel_index = [], None
    # The state compared: the host module's, then what the module exports.
    memories = [{"module": "spectest", "name": "memory", "index": "i32", "min": 1, "max": 2}]
    globals_ = [{"module": "host", "name": "counter", "type": "i64", "mutable": True}]
    for export in module.exports:
        if export.kind == "func":
            ft = module.func_type(export.index)
            if callable_with_null_refs(ft) and all(type_text(t) for t in ft.results):
                funcs.append({"name": export.name, "params": [type_text(t) for t in ft.params],
                              "results": [type_text(t) for t in ft.results]})
        elif export.kind == "memory":
            limits = _memory_type(module, export.index).limits
            memories.append({"module": "m", "name": export.name, "index": "i64" if limits.is64 else "i32",
                             "min": limits.minimum, "max": limits.maximum})
        elif export.kind == "global" and export.name == FUEL_EXPORT:
            fuel_index = export.index
        elif export.kind == "global":
            gtype = _global_type(module, export.index)
            if type_text(gtype.valtype):
                globals_.append({"module": "m", "name": export.name, "type": type_text(gtype.valtype),
                                 "mutable": gtype.mutable})
    emit({"event": "module", "funcs": funcs, "memories": memories, "globals": globals_,
          "fuel": FUEL_EXPORT if fuel_index is not None else None, "recipe": asdict(recipe)})

    store = Store()
    linkable = spectest_imports(store)
    host = store.instantiate(decoded_host_module(), linkable, name="host")
    linkable.update({("host", name): extern for name, extern in host.exports.items()})
    instance = None

    def instantiate():
        nonlocal instance
        instance = store.instantiate(module, linkable)
        return []

    outcome = outcome_of(instantiate)
    if instance is None:
        emit({"event": "instantiated", "outcome": outcome, "state": None})
        return
    instances = {"m": instance.exports, "host": host.exports,
                 "spectest": {name: extern for (_, name), extern in linkable.items()}}
    exported_globals = [instances[g["module"]][g["name"]] for g in globals_]
    exported_memories = [instances[m["module"]][m["name"]] for m in memories]
    fuel = instance.exports.get(FUEL_EXPORT) if fuel_index is not None else None
    emit({"event": "instantiated", "outcome": outcome,
          "state": state_of(exported_globals, exported_memories)})

    calls = 0
    for func in funcs:
        target: Func = instance.exports[func["name"]]
        for args in argument_sets(recipe, func["name"], target.type.params):
            if calls == MAX_CALLS:
                return
            calls += 1
            emit({"event": "calling", "call": {"export": func["name"], "args": args}})
            if fuel is not None:
                fuel.set(recipe.fuel)
            outcome = outcome_of(lambda: target(*args))
            emit({"event": "returned", "outcome": outcome,
                  "state": state_of(exported_globals, exported_memories)})


@functools.cache
def decoded_host_module():
    """The `host` module, decoded once (the worker does it before it forks)."""
    return load_bytes(host_module(), "host")


def _memory_type(module, index: int):
    imported = [i.desc for i in module.imports if i.kind == "memory"]
    return imported[index] if index < len(imported) else module.memories[index - len(imported)]


def _global_type(module, index: int):
    imported = [i.desc for i in module.imports if i.kind == "global"]
    return imported[index] if index < len(imported) else module.globals[index - len(imported)].type
