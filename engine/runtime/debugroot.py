"""The debug root: native tables from which a reader outside the engine (the gdb and lldb
plugins, a core-file reader) finds stores, modules, instances (with their memories, tables
and globals), functions, address maps, event sites and continuations without Python's
help. The layout is in DEBUG_ROOT.md; `debugrootreader.DebugRootReader` reads it back.
"""

from __future__ import annotations

import ctypes
import struct
from array import array
from itertools import accumulate

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
