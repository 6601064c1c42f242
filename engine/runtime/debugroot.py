"""The debug root: native tables from which a reader outside the engine (the gdb and lldb
plugins, a core-file reader) finds stores, modules, instances (with their memories, tables
and globals), functions, address maps, event sites and continuations without Python's
help. The layout is in DEBUG_ROOT.md; `DebugRootReader` reads it back through any
`read(address, size) -> bytes`, and imports only the standard library.
"""

from __future__ import annotations

import ctypes
import struct
from array import array
from itertools import accumulate
from dataclasses import dataclass

from .. import layout as L

MAGIC = int.from_bytes(b"SSDBGRT1", "little")
VERSION = 3

# Root
RO_MAGIC, RO_VERSION, RO_FIRST_STORE = 0, 8, 16
# Store record
SR_NEXT, SR_RUNTIME, SR_FIRST_INSTANCE, SR_SLABS, SR_SLAB_COUNT, SR_STACK_SIZE, \
    SR_STACKS_PER_SLAB, SR_MAIN_LO, SR_MAIN_HI, SR_STUBS, SR_STUBS_SIZE, SR_ENTRY_RETURN, \
    SR_START_RETURN, SR_START_STUB, SR_FIBER_RETURN, SR_FIRST_MODULE, SR_FRESH_SLABS, \
    SR_FRESH_SLAB_COUNT, SR_FRESH_SLAB_SIZE = range(0, 152, 8)
STORE_RECORD_WORDS = 19
# Instance record
IR_NEXT, IR_VMCTX, IR_NAME, IR_MODULE, IR_TAG_COUNT, IR_TAGS, IR_MEMORY_COUNT, IR_MEMORIES, \
    IR_TABLE_COUNT, IR_TABLES, IR_GLOBAL_COUNT, IR_GLOBALS = range(0, 96, 8)
INSTANCE_RECORD_WORDS = 12
# Module record (shared by the instances of one compiled module)
MR_NEXT, MR_CODE, MR_CODE_SIZE, MR_FUNCTION_COUNT, MR_FUNCTIONS, MR_SOURCE, MR_EVENT_COUNT, \
    MR_EVENTS = range(0, 64, 8)
MODULE_RECORD_WORDS = 8
# Function entry
FE_INDEX, FE_START, FE_END, FE_NAME, FE_ADDR_MAP, FE_ADDR_MAP_COUNT = 0, 8, 16, 24, 32, 40
FUNCTION_ENTRY_WORDS = 6
# Memory, table and global entries of an instance record
MEMORY_ENTRY_WORDS = 5   # name, address of the base word, of the size word, maximum, flags
TABLE_ENTRY_WORDS = 3    # name, table record (layout.TB_*), element type
GLOBAL_ENTRY_WORDS = 4   # name, value cell, value type, flags
NO_MAXIMUM = (1 << 64) - 1
MEMORY_64, MEMORY_SHARED, IMPORTED = 1, 2, 4  # flags (IMPORTED for globals too)
GLOBAL_MUTABLE = 1


def _words(values) -> ctypes.Array:
    return (ctypes.c_uint64 * max(len(values), 1))(*values)


def _string(text: str) -> ctypes.Array:
    return ctypes.create_string_buffer(text.encode("utf-8", "replace"))


def _absolute_pairs(pairs: array, base: int) -> bytes:
    """An address map's 32-bit (code offset, Wasm offset) pairs as 64-bit words with `base`
    added to the code offsets. Widened by interleaving zero bytes (little-endian), then one
    big-integer addition for the whole table: no word overflows, so no carry crosses into
    the next."""
    narrow = pairs.tobytes()
    if not narrow:
        return bytes(8)
    wide = bytearray(2 * len(narrow))
    for k in range(4):
        wide[k::8] = narrow[k::4]
    addend = struct.pack("<QQ", base, 0) * (len(pairs) // 2)
    total = int.from_bytes(wide, "little") + int.from_bytes(addend, "little")
    return total.to_bytes(len(wide), "little")


_roots: dict[int, "DebugRoot"] = {}  # by the address of the pointer that publishes it


def publish(store, root_pointer: ctypes.c_uint64) -> "StoreRecord":
    """Publish `store` in the process's debug root, whose address goes into `root_pointer`
    (the GDB JIT shim's `stackstitch_debug_root`, see unwind/gdbjit.py) on first use."""
    key = ctypes.addressof(root_pointer)
    if key not in _roots:
        _roots[key] = DebugRoot(root_pointer)
    return _roots[key].add_store(store)


class DebugRoot:
    """The process's root; its address is in the shim's `stackstitch_debug_root`."""

    def __init__(self, root_pointer: ctypes.c_uint64):
        self.root = _words([MAGIC, VERSION, 0])
        root_pointer.value = ctypes.addressof(self.root)

    def add_store(self, store) -> "StoreRecord":
        record = StoreRecord(store, next_record=self.root[RO_FIRST_STORE // 8])
        self.root[RO_FIRST_STORE // 8] = ctypes.addressof(record.words)
        return record


class StoreRecord:
    """One store's record; keeps everything it points at alive."""

    def __init__(self, store, next_record: int):
        stubs = store.stubs
        pool = store.continuations
        self.words = (ctypes.c_uint64 * STORE_RECORD_WORDS)()
        w = self.words
        w[SR_NEXT // 8] = next_record
        w[SR_RUNTIME // 8] = store.runtime_address
        w[SR_STACK_SIZE // 8] = pool.stack_size
        w[SR_STACKS_PER_SLAB // 8] = pool.STACKS_PER_SLAB
        w[SR_MAIN_LO // 8] = store.stack_lo
        w[SR_MAIN_HI // 8] = store.stack_lo + store.stack_size
        w[SR_STUBS // 8] = stubs.region.address
        w[SR_STUBS_SIZE // 8] = stubs.region.size
        w[SR_ENTRY_RETURN // 8] = stubs.entry_return_address
        w[SR_START_RETURN // 8] = stubs.start_return_address
        w[SR_START_STUB // 8] = stubs.start_stub
        w[SR_FIBER_RETURN // 8] = stubs.fiber_return
        w[SR_FRESH_SLAB_SIZE // 8] = pool.FRESH_SLAB_SIZE
        self.keep: list = []
        self.modules: dict[int, int] = {}  # id(compiled) -> module record address
        self.slab_tables = None
        self.slabs_changed(pool.slabs, pool.fresh_slabs)

    def slabs_changed(self, slabs: list[int], fresh_slabs: list[int]):
        stacks, fresh = self.slab_tables = _words(slabs), _words(fresh_slabs)
        w = self.words
        w[SR_SLABS // 8], w[SR_SLAB_COUNT // 8] = ctypes.addressof(stacks), len(slabs)
        w[SR_FRESH_SLABS // 8], w[SR_FRESH_SLAB_COUNT // 8] = ctypes.addressof(fresh), len(fresh_slabs)

    def _table(self, values: list[int]) -> int:
        table = _words(values)
        self.keep.append(table)
        return ctypes.addressof(table)

    def _name(self, text: str) -> int:
        name = _string(text)
        self.keep.append(name)
        return ctypes.addressof(name)

    def add_instance(self, instance):
        module = instance.module
        module_record = self.add_module(module, instance.compiled, instance.code_region)
        tags = self._table([v for k, tag in enumerate(instance.tags)
                            for v in (tag.address, self._name(module.tag_name(k)))])
        imported = {kind: len(module.imports_of(kind)) for kind in ("memory", "global")}
        layout = instance.vm_layout
        memories = []
        for k, memory in enumerate(instance.memories):
            limits = memory.type.limits
            flags = (MEMORY_64 * limits.is64 | MEMORY_SHARED * limits.shared
                     | IMPORTED * (k < imported["memory"]))
            maximum = NO_MAXIMUM if limits.maximum is None else limits.maximum * 65536
            memories += [self._name(module.entity_name("memory", k)),
                         instance.vmctx_address + layout.memory_base(k),
                         instance.vmctx_address + layout.memory_size(k), maximum, flags]
        tables = []
        for k, table in enumerate(instance.tables):
            tables += [self._name(module.entity_name("table", k)), ctypes.addressof(table.record),
                       self._name(str(table.type.element))]
        globals_ = []
        for k, global_ in enumerate(instance.globals):
            flags = GLOBAL_MUTABLE * global_.type.mutable | IMPORTED * (k < imported["global"])
            globals_ += [self._name(module.entity_name("global", k)), ctypes.addressof(global_.cell),
                         self._name(str(global_.type.valtype)), flags]
        words = _words([self.words[SR_FIRST_INSTANCE // 8], instance.vmctx_address,
                        self._name(instance.name or ""), module_record,
                        len(instance.tags), tags, len(instance.memories), self._table(memories),
                        len(instance.tables), self._table(tables),
                        len(instance.globals), self._table(globals_)])
        self.keep.append(words)
        self.words[SR_FIRST_INSTANCE // 8] = ctypes.addressof(words)

    def add_module(self, module, compiled, region) -> int:
        """The record of a compiled module, made on first use: the store publishes it as soon
        as the code is placed, before debuggers learn of the code (so a debugger that stops
        there finds its event sites), or else when an instance of it is added."""
        if id(compiled) in self.modules:
            return self.modules[id(compiled)]
        base = region.address
        functions = compiled.functions
        # One array of address-map pairs and one buffer of names for the whole module, each
        # function's entry pointing into them: a few allocations, however many functions.
        pairs = compiled.address_pairs()
        addr_map = (ctypes.c_uint64 * max(len(pairs), 1)).from_buffer_copy(_absolute_pairs(pairs, base))
        names = [module.func_name(f.index).encode("utf-8", "replace") + b"\0" for f in functions]
        name_buffer = ctypes.create_string_buffer(b"".join(names), sum(map(len, names)) or 1)
        counts = [len(f.addr_map) for f in functions]
        name_at = list(accumulate(map(len, names), initial=ctypes.addressof(name_buffer)))[:-1]
        pairs_at = list(accumulate((16 * n for n in counts), initial=ctypes.addressof(addr_map)))[:-1]
        # The function entries, filled a column at a time.
        entries = array("Q", bytes(8 * FUNCTION_ENTRY_WORDS * len(functions)))
        for word, column in ((FE_INDEX, [f.index for f in functions]),
                             (FE_START, [base + f.start for f in functions]),
                             (FE_END, [base + f.end for f in functions]),
                             (FE_NAME, name_at), (FE_ADDR_MAP, pairs_at), (FE_ADDR_MAP_COUNT, counts)):
            entries[word // 8::FUNCTION_ENTRY_WORDS] = array("Q", column)
        table = (ctypes.c_uint64 * max(len(entries), 1)).from_buffer_copy(entries.tobytes() or bytes(8))
        events = [v for f in functions for native, kind in f.events for v in (base + native, kind)]
        record = _words([self.words[SR_FIRST_MODULE // 8], base, region.size, len(functions),
                         ctypes.addressof(table), self._name(module.name or ""), len(events) // 2,
                         self._table(events)])
        self.keep += [addr_map, name_buffer, table, record]
        self.modules[id(compiled)] = ctypes.addressof(record)
        self.words[SR_FIRST_MODULE // 8] = ctypes.addressof(record)
        return ctypes.addressof(record)


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
