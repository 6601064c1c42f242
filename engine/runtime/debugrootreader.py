"""Reads the debug root (DEBUG_ROOT.md, written by `debugroot.py`) back through any
`read(address, size) -> bytes`, for the gdb and lldb plugins and core-file readers.
Standard library only. Kept apart from the writer, which every run imports: a run never
needs the reader or its records.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .. import layout as L
from .debugroot import (FUNCTION_ENTRY_WORDS, GLOBAL_ENTRY_WORDS, INSTANCE_RECORD_WORDS, MAGIC,
                        MEMORY_ENTRY_WORDS, MODULE_RECORD_WORDS, RO_FIRST_STORE,
                        STORE_RECORD_WORDS, TABLE_ENTRY_WORDS, VERSION)


@dataclass(frozen=True)
class StoreFields:
    """A store record (DEBUG_ROOT.md, "Store record")."""

    address: int
    runtime: int
    first_instance: int
    slabs: int
    slab_count: int
    stack_size: int
    stacks_per_slab: int
    main_lo: int
    main_hi: int
    stubs: int
    stubs_size: int
    entry_return: int
    start_return: int
    start_stub: int
    fiber_return: int
    first_module: int
    fresh_slabs: int
    fresh_slab_count: int
    fresh_slab_size: int


@dataclass(frozen=True)
class ModuleFields:
    """A module record: code, function table, event sites."""

    address: int
    code: int
    code_size: int
    function_count: int
    functions: int  # the function table's address
    source: str
    event_count: int
    events: int  # the event table's address


@dataclass(frozen=True)
class InstanceFields:
    """An instance record with its module record and tag table; its memory, table and
    global tables are read on demand (`DebugRootReader.memories` ...)."""

    vmctx: int
    name: str
    module: ModuleFields
    tags: dict  # tag record address -> name
    memory_count: int
    memories: int
    table_count: int
    tables: int
    global_count: int
    globals: int

    @property
    def source(self) -> str:
        return self.module.source


@dataclass(frozen=True)
class MemoryEntry:
    """A memory of an instance (DEBUG_ROOT.md, "Instance record")."""

    name: str
    base_word: int  # where the base address is (in the instance's vmctx)
    size_word: int  # where the current size in bytes is (rewritten on memory.grow)
    maximum: int  # bytes; NO_MAXIMUM if none
    flags: int  # MEMORY_64, MEMORY_SHARED, IMPORTED


@dataclass(frozen=True)
class TableEntry:
    """A table of an instance (DEBUG_ROOT.md, "Instance record")."""

    name: str
    record: int  # layout.TB_ELEMS, TB_SIZE, TB_MAX
    element_type: str


@dataclass(frozen=True)
class GlobalEntry:
    """A global of an instance (DEBUG_ROOT.md, "Instance record")."""

    name: str
    cell: int  # the 8-byte value cell
    value_type: str
    flags: int  # GLOBAL_MUTABLE, IMPORTED


@dataclass(frozen=True)
class FunctionEntry:
    """A function table entry; its name is read on first use (`DebugRootReader.string`)."""

    index: int
    start: int
    end: int
    name_address: int
    addr_map: int
    addr_map_count: int


@dataclass(frozen=True)
class ContinuationFields:
    """A handed-out continuation record's fields (layout.CR_*). A fresh continuation has
    only the first of them (layout.FRESH_RECORD_SIZE) and no stack: the others are 0."""

    record: int
    id: int
    state: int
    parent: int
    top: int
    sp: int
    fp: int
    pc: int
    func: int
    tag: int
    stack_lo: int

    @property
    def stack_hi(self) -> int:
        return self.record + L.CR_SIZE if self.stack_lo else 0


class DebugRootReader:
    """Reads the debug root through `read(address, size)`; every read is bounded."""

    MAX_ITEMS = 1_000_000

    def __init__(self, read, root_address: int):
        self.read = read
        magic, version = self.words(root_address, 2)
        if magic != MAGIC or version != VERSION:
            raise ValueError(f"no stackstitch debug root (version {VERSION}) at {root_address:#x}")
        self.root = root_address

    def words(self, address: int, count: int) -> tuple[int, ...]:
        return struct.unpack(f"<{count}Q", self.read(address, 8 * count))

    def word(self, address: int) -> int:
        return self.words(address, 1)[0]

    def string(self, address: int, limit: int = 512) -> str:
        """A NUL-terminated string, read in growing pieces (most names are short)."""
        data, size = b"", 64
        while b"\0" not in data and len(data) < limit:
            data = self.read(address, min(size, limit))
            size *= 4
        return data.split(b"\0", 1)[0].decode("utf-8", "replace")

    def _chain(self, first: int):
        address, seen = first, 0
        while address and seen < self.MAX_ITEMS:
            yield address
            address = self.word(address)  # every record starts with its `next`
            seen += 1

    def stores(self) -> list[StoreFields]:
        return [StoreFields(a, *self.words(a, STORE_RECORD_WORDS)[1:])
                for a in self._chain(self.word(self.root + RO_FIRST_STORE))]

    def modules(self, store: StoreFields) -> list[ModuleFields]:
        """Every compiled module of the store, most recent first."""
        return [self.module(address) for address in self._chain(store.first_module)]

    def module(self, address: int) -> ModuleFields:
        _, code, size, count, table, source, event_count, events = self.words(address, MODULE_RECORD_WORDS)
        return ModuleFields(address, code, size, count, table, self.string(source), event_count, events)

    def instances(self, store: StoreFields) -> list[InstanceFields]:
        out = []
        for address in self._chain(store.first_instance):
            (_, vmctx, name, module, tag_count, tag_table, memory_count, memories, table_count,
             tables, global_count, globals_) = self.words(address, INSTANCE_RECORD_WORDS)
            flat = self._entries(tag_table, tag_count, 2)
            tags = {flat[k]: self.string(flat[k + 1]) for k in range(0, len(flat), 2)}
            out.append(InstanceFields(vmctx, self.string(name), self.module(module), tags,
                                      memory_count, memories, table_count, tables, global_count,
                                      globals_))
        return out

    def _entries(self, table: int, count: int, width: int) -> tuple[int, ...]:
        count = min(count, self.MAX_ITEMS)
        return self.words(table, width * count) if count else ()

    def functions(self, module: ModuleFields) -> list[FunctionEntry]:
        flat = self._entries(module.functions, module.function_count, FUNCTION_ENTRY_WORDS)
        return [FunctionEntry(*flat[k:k + FUNCTION_ENTRY_WORDS])
                for k in range(0, len(flat), FUNCTION_ENTRY_WORDS)]

    def events(self, module: ModuleFields) -> list[tuple[int, int]]:
        """(native address, layout.EVENT_*) of every event site of the module."""
        flat = self._entries(module.events, module.event_count, 2)
        return list(zip(flat[0::2], flat[1::2]))

    def memories(self, instance: InstanceFields) -> list[MemoryEntry]:
        flat = self._entries(instance.memories, instance.memory_count, MEMORY_ENTRY_WORDS)
        return [MemoryEntry(self.string(flat[k]), *flat[k + 1:k + MEMORY_ENTRY_WORDS])
                for k in range(0, len(flat), MEMORY_ENTRY_WORDS)]

    def tables(self, instance: InstanceFields) -> list[TableEntry]:
        flat = self._entries(instance.tables, instance.table_count, TABLE_ENTRY_WORDS)
        return [TableEntry(self.string(flat[k]), flat[k + 1], self.string(flat[k + 2]))
                for k in range(0, len(flat), TABLE_ENTRY_WORDS)]

    def globals(self, instance: InstanceFields) -> list[GlobalEntry]:
        flat = self._entries(instance.globals, instance.global_count, GLOBAL_ENTRY_WORDS)
        return [GlobalEntry(self.string(flat[k]), flat[k + 1], self.string(flat[k + 2]), flat[k + 3])
                for k in range(0, len(flat), GLOBAL_ENTRY_WORDS)]

    def address_map(self, function: FunctionEntry) -> list[tuple[int, int]]:
        flat = self._entries(function.addr_map, function.addr_map_count, 2)
        return list(zip(flat[0::2], flat[1::2]))

    def continuations(self, store: StoreFields) -> list[ContinuationFields]:
        """Every continuation handed out and not finished, with its record's fields: the
        fresh ones first, then those with a stack."""
        out = []
        fresh_slabs = self._entries(store.fresh_slabs, store.fresh_slab_count, 1)
        size = min(store.fresh_slab_size, 64 << 20) // L.FRESH_RECORD_SIZE * L.FRESH_RECORD_SIZE
        for slab in fresh_slabs:
            w = self.words(slab, size // 8)
            for k in range(0, len(w), L.FRESH_RECORD_SIZE // 8):
                if w[k + L.CR_ID // 8] and w[k + L.CR_STATE // 8] == L.CONT_FRESH:
                    out.append(ContinuationFields(slab + 8 * k, w[k + L.CR_ID // 8], L.CONT_FRESH,
                                                  0, 0, 0, 0, 0, w[k + L.CR_FUNC // 8], 0, 0))
        size, per_slab = store.stack_size, store.stacks_per_slab
        for slab in self._entries(store.slabs, store.slab_count, 1):
            for i in range(per_slab):
                record = L.record_in_slab(slab, i, size)
                w = self.words(record, L.CR_SIZE // 8)
                if w[L.CR_ID // 8] and w[L.CR_STATE // 8] != L.CONT_RETURNED:
                    out.append(ContinuationFields(
                        record, w[L.CR_ID // 8], w[L.CR_STATE // 8], w[L.CR_PARENT // 8],
                        w[L.CR_TOP // 8], w[L.CR_SP // 8], w[L.CR_FP // 8], w[L.CR_PC // 8],
                        w[L.CR_FUNC // 8], w[L.CR_TAG // 8], w[L.CR_STACK_LO // 8]))
        return out
