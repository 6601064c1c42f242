"""Linear memories and tables: the native records generated code and the stubs work on
(layout LM_* and TB_*), and the Python view of them for host functions and the runtime."""

from __future__ import annotations

import ctypes
import mmap

from .. import layout as L
from ..frontend.types import MemoryType, TableType
from .codemem import PROT_NONE, READ_WRITE, protect, reserve
from .errors import Trap

PAGE = 65536
MAX_PAGES = 65536  # 4 GiB, for 64-bit memories too
TABLE_LIMIT = 10_000_000  # elements: table.grow fails beyond this, whatever the type allows


class MemoryLimitError(Exception):
    """A memory's minimum exceeds what the engine can reserve (a link error)."""


class Memory:
    """A linear memory. Its whole maximum is reserved up front, inaccessible, and made
    readable and writable a page range at a time as it grows (by the grow stub, or here),
    so its base never moves and only the accessible part is ever in a core file."""

    def __init__(self, mtype: MemoryType):
        self.type = mtype
        limits = mtype.limits
        max_pages = limits.maximum if limits.maximum is not None else MAX_PAGES
        self.max_pages = min(max_pages, MAX_PAGES)
        if limits.minimum > self.max_pages:
            raise MemoryLimitError("memory size too large")
        self.reserved = max(self.max_pages * PAGE, mmap.PAGESIZE)
        self.base = reserve(self.reserved, PROT_NONE)
        self.record = (ctypes.c_uint64 * (L.MEMORY_RECORD_SIZE // 8))()
        self.record_address = ctypes.addressof(self.record)
        self.record[L.LM_BASE // 8] = self.base
        self.record[L.LM_MAX // 8] = self.max_pages * PAGE
        self._holders: list = []  # vmctx buffers holding a size copy: kept alive while listed
        self._size_fields = None
        self._resize(limits.minimum * PAGE)

    @property
    def size_bytes(self) -> int:
        return self.record[L.LM_SIZE // 8]

    @property
    def pages(self) -> int:
        return self.size_bytes // PAGE

    def attach(self, vmctx, base_offset: int, size_offset: int):
        """Give an instance's vmctx its copies of the base and size; grow keeps the size
        copy current."""
        vmctx[base_offset // 8] = self.base
        vmctx[size_offset // 8] = self.size_bytes
        self._holders.append((vmctx, size_offset))
        fields = [ctypes.addressof(vm) + offset for vm, offset in self._holders]
        self._size_fields = (ctypes.c_uint64 * len(fields))(*fields)
        self.record[L.LM_SIZE_FIELDS // 8] = ctypes.addressof(self._size_fields)
        self.record[L.LM_SIZE_FIELD_COUNT // 8] = len(fields)

    def _resize(self, size: int):
        old = self.size_bytes
        if size > old:
            protect(self.base + old, size - old, READ_WRITE)
        self.record[L.LM_SIZE // 8] = size
        for vm, offset in self._holders:
            vm[offset // 8] = size

    def grow(self, delta: int) -> int:
        """Grow by `delta` pages, as memory.grow does; returns the old size in pages, or -1."""
        old = self.pages
        if delta > self.max_pages - old:
            return -1
        try:
            self._resize((old + delta) * PAGE)
        except MemoryError:
            return -1
        return old

    def check(self, addr: int, n: int):
        if addr + n > self.size_bytes:
            raise Trap("out of bounds memory access")

    def read(self, addr: int, n: int) -> bytes:
        self.check(addr, n)
        return ctypes.string_at(self.base + addr, n)

    def write(self, addr: int, data: bytes):
        self.check(addr, len(data))
        ctypes.memmove(self.base + addr, data, len(data))


class Table:
    """A table of 8-byte references. Its elements have room to grow (TB_CAPACITY), so that
    table.grow reallocates, through the runtime, only when that room runs out."""

    def __init__(self, ttype: TableType, init_raw: int = 0):
        self.type = ttype
        self.record = (ctypes.c_uint64 * (L.TABLE_SIZE // 8))()
        self.max = ttype.limits.maximum if ttype.limits.maximum is not None else 0xFFFFFFFF
        self.record[L.TB_MAX // 8] = min(self.max, TABLE_LIMIT)
        self.elems = None
        size = ttype.limits.minimum
        if not self.reserve(size):
            raise MemoryError(f"table of {size} elements")
        for i in range(size):
            self.elems[i] = init_raw
        self.record[L.TB_SIZE // 8] = size

    @property
    def size(self) -> int:
        return self.record[L.TB_SIZE // 8]

    def reserve(self, size: int) -> bool:
        """Make room for `size` elements (at least doubling); False if that is too many."""
        capacity = self.record[L.TB_CAPACITY // 8]
        if size <= capacity and self.elems is not None:
            return True
        if size > self.record[L.TB_MAX // 8]:
            return False
        capacity = min(max(size, 2 * capacity, 1), self.record[L.TB_MAX // 8])
        new = (ctypes.c_uint64 * max(capacity, 1))()
        if self.elems is not None:
            ctypes.memmove(new, self.elems, 8 * self.size)
        self.elems = new
        self.record[L.TB_ELEMS // 8] = ctypes.addressof(new)
        self.record[L.TB_CAPACITY // 8] = capacity
        return True

    def get(self, i: int) -> int:
        if i >= self.size:
            raise Trap("out of bounds table access")
        return self.elems[i]

    def set(self, i: int, raw: int):
        if i >= self.size:
            raise Trap("out of bounds table access")
        self.elems[i] = raw

    def grow(self, delta: int, init_raw: int) -> int:
        """As table.grow: the old size, or -1."""
        old = self.size
        if delta > self.record[L.TB_MAX // 8] - old or not self.reserve(old + delta):
            return -1
        for i in range(old, old + delta):
            self.elems[i] = init_raw
        self.record[L.TB_SIZE // 8] = old + delta
        return old
