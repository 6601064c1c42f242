"""`info wasm`: the instances of every store, with their memories (base, current and
maximum size), tables, globals (with values) and the module each came from; `info wasm
functions [REGEX]`: every compiled function with its native code range. All of it from the
debug root (DEBUG_ROOT.md), so it works on core files too.
"""

from __future__ import annotations

import re
import struct

import gdb

from stackstitch.engine import layout as L
from stackstitch.engine.runtime.debugroot import GLOBAL_MUTABLE, IMPORTED, MEMORY_64, NO_MAXIMUM
from stackstitch.engine.runtime.debugrootreader import GlobalEntry, InstanceFields, ModuleFields

from . import inferior
from .commands import one_line_errors
from .view import StoreView

PAGE = 65536


def module_name(store: StoreView, module: ModuleFields) -> str:
    """The module's file as gdb's line table names it, else its name-section name."""
    functions = store.reader.functions(module)
    if functions:
        try:
            symtab = gdb.find_pc_line(functions[0].start).symtab
        except gdb.error:
            symtab = None
        if symtab is not None:
            return symtab.filename
    return module.source or f"<module at 0x{module.code:x}>"


def size_text(size: int) -> str:
    pages = size // PAGE
    return f"0x{size:x} ({pages} page{'' if pages == 1 else 's'})"


def global_value(store: StoreView, entry: GlobalEntry) -> str:
    """The value as Wasm shows it: integers signed, floats as floats, references as
    addresses (null: 0), naming the continuation a continuation reference refers to."""
    raw = store.reader.word(entry.cell)
    kind = entry.value_type
    if kind == "i32":
        return str(struct.unpack("<i", struct.pack("<I", raw & 0xFFFFFFFF))[0])
    if kind == "i64":
        return str(struct.unpack("<q", struct.pack("<Q", raw))[0])
    if kind == "f32":
        return repr(struct.unpack("<f", struct.pack("<I", raw & 0xFFFFFFFF))[0])
    if kind == "f64":
        return repr(struct.unpack("<d", struct.pack("<Q", raw))[0])
    if raw == 0:
        return "null"
    c = store.by_record(raw & ((1 << L.REVISION_SHIFT) - 1))  # a continuation reference?
    return f"0x{raw:x} (continuation {c.label})" if c is not None else f"0x{raw:x}"


def print_instance(store: StoreView, instance: InstanceFields):
    reader = store.reader
    print(f"Instance {instance.name or '<unnamed>'} (module {module_name(store, instance.module)}, "
          f"vmctx 0x{instance.vmctx:x}):")
    for memory in reader.memories(instance):
        base, size = reader.word(memory.base_word), reader.word(memory.size_word)
        maximum = "none" if memory.maximum == NO_MAXIMUM else size_text(memory.maximum)
        notes = "".join(note for flag, note in ((MEMORY_64, ", 64-bit"), (IMPORTED, ", imported"))
                        if memory.flags & flag)
        print(f"  memory {memory.name}: base 0x{base:x}, size {size_text(size)}, "
              f"maximum {maximum}{notes}")
    for table in reader.tables(instance):
        size, maximum = reader.words(table.record + L.TB_SIZE, 2)
        print(f"  table {table.name}: {size} elements of {table.element_type}, maximum "
              f"{'none' if maximum == 0xFFFFFFFF else maximum}")
    for entry in reader.globals(instance):
        mutable = " mut" if entry.flags & GLOBAL_MUTABLE else ""
        imported = " (imported)" if entry.flags & IMPORTED else ""
        print(f"  global {entry.name}: {entry.value_type}{mutable} = {global_value(store, entry)}{imported}")


class InfoWasm(gdb.Command):
    """The Wasm instances: memories (base, current and maximum size), tables, globals with
their values, and the module each came from.
Usage: info wasm
       info wasm functions [REGEX]   functions (matching REGEX) with their native code
       info wasm catchpoints         catchpoints set with `catch wasm-trap` and the like"""

    def __init__(self):
        super().__init__("info wasm", gdb.COMMAND_STATUS, prefix=True)

    @one_line_errors
    def invoke(self, argument, from_tty):
        if argument.strip():
            raise gdb.GdbError(f"unknown `info wasm` subcommand {argument.split()[0]!r} "
                               "(functions, catchpoints)")
        view = inferior.process_view()
        several = len(view.stores) > 1
        for number, store in enumerate(view.stores, 1):
            if several:
                print(f"Store {number}:")
            for instance in reversed(store.instances):  # in the order they were made
                print_instance(store, instance)
        if not any(store.instances for store in view.stores):
            print("No instances.")


class InfoWasmFunctions(gdb.Command):
    """Compiled Wasm functions with their native code ranges.
Usage: info wasm functions [REGEX]
REGEX (Python syntax) selects functions by name."""

    def __init__(self):
        super().__init__("info wasm functions", gdb.COMMAND_STATUS)

    @one_line_errors
    def invoke(self, argument, from_tty):
        try:
            pattern = re.compile(argument.strip())
        except re.error as e:
            raise gdb.GdbError(f"invalid REGEX {argument.strip()!r}: {e}") from None
        found = 0
        for store in inferior.process_view().stores:
            for module in reversed(store.modules):
                name = module_name(store, module)
                for entry in store.reader.functions(module):
                    function = store.code.function_at(entry.start)
                    if function is None or not pattern.search(function.name):
                        continue
                    found += 1
                    print(f"0x{entry.start:016x}-0x{entry.end:016x}  {function.name}  "
                          f"(function {entry.index}, {name})")
        if not found:
            print("No functions." if not argument.strip() else f"No functions match {argument.strip()!r}.")


def register():
    InfoWasm()
    InfoWasmFunctions()

