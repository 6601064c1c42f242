"""Linear memory as the WASI calls see it.

One memoryview spans the memory's whole reservation (its base never moves), so a call
reads and writes guest bytes with `struct.pack_into`/`unpack_from` and hands slices of
it to `os.readv`/`os.writev` without copying. Everything past the current size is
unmapped, so each access is checked against `size_bytes` first. A pointer outside the
memory, or not aligned for what it points to, traps, as in Wasmtime (preview1 says a
function given such a pointer shall trap).
"""

from __future__ import annotations

import ctypes
import os

from ...runtime.store import Trap
from .abi import EILSEQ, EINVAL, IOVEC, U32, U64, Layout, WasiError


IOV_MAX = os.sysconf("SC_IOV_MAX")
_pack_u32, _pack_u64, _unpack_iovec = U32.pack_into, U64.pack_into, IOVEC.unpack_from


def out_of_bounds() -> Trap:
    return Trap("WASI argument points outside linear memory or is misaligned")


class GuestMemory:
    def __init__(self, memory):
        self.memory = memory
        reservation = (ctypes.c_char * memory.reserved).from_address(memory.base)
        self.view = memoryview(reservation).cast("B")

    def u32(self, ptr: int, value: int) -> None:
        if ptr + 4 > self.memory.size_bytes or ptr & 3:
            raise out_of_bounds()
        _pack_u32(self.view, ptr, value)

    def u64(self, ptr: int, value: int) -> None:
        if ptr + 8 > self.memory.size_bytes or ptr & 7:
            raise out_of_bounds()
        _pack_u64(self.view, ptr, value)

    def pack(self, layout: Layout, ptr: int, *values) -> None:
        if ptr + layout.size > self.memory.size_bytes or ptr & layout.align_mask:
            raise out_of_bounds()
        layout.pack_into(self.view, ptr, *values)

    def unpack(self, layout: Layout, ptr: int) -> tuple:
        if ptr + layout.size > self.memory.size_bytes or ptr & layout.align_mask:
            raise out_of_bounds()
        return layout.unpack_from(self.view, ptr)

    def slice(self, ptr: int, length: int) -> memoryview:
        """The guest bytes [ptr, ptr+length), in place."""
        if ptr + length > self.memory.size_bytes:
            raise out_of_bounds()
        return self.view[ptr:ptr + length]

    def write(self, ptr: int, data: bytes) -> None:
        if ptr + len(data) > self.memory.size_bytes:
            raise out_of_bounds()
        self.view[ptr:ptr + len(data)] = data

    def path(self, ptr: int, length: int) -> bytes:
        """A path argument: UTF-8 (else EILSEQ) without NULs (else EINVAL), as bytes for
        the os functions."""
        raw = bytes(self.slice(ptr, length))
        if b"\0" in raw:
            raise WasiError(EINVAL)
        if not raw.isascii():
            try:
                raw.decode()
            except UnicodeDecodeError:
                raise WasiError(EILSEQ) from None
        return raw

    def buffers(self, iovs: int, count: int) -> list[memoryview]:
        """The regions an iovec/ciovec array names, as slices of the memory. Past the
        host's IOV_MAX the rest is left out: a shorter transfer, which readv and writev
        allow."""
        if not count:
            return []
        count = min(count, IOV_MAX)
        size = self.memory.size_bytes
        if iovs + 8 * count > size or iovs & 3:
            raise out_of_bounds()
        view = self.view
        if count == 1:  # what most calls pass
            buf, length = _unpack_iovec(view, iovs)
            if buf + length > size:
                raise out_of_bounds()
            return [view[buf:buf + length]]
        regions = []
        for buf, length in IOVEC.iter_unpack(view[iovs:iovs + 8 * count]):
            if buf + length > size:
                raise out_of_bounds()
            regions.append(view[buf:buf + length])
        return regions
