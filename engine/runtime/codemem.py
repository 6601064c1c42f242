"""Native memory mappings: code that is writable while emitted and executable after (never
both), and address ranges reserved up front and committed as they are needed (linear
memories, stacks)."""

from __future__ import annotations

import ctypes
import mmap

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                       ctypes.c_int, ctypes.c_long]
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.mprotect.restype = ctypes.c_int
_MAP_NORESERVE = 0x4000
_MAP_POPULATE = 0x8000
_MAP_FAILED = ctypes.c_void_p(-1).value
PROT_NONE = 0
READ_WRITE = mmap.PROT_READ | mmap.PROT_WRITE


def reserve(size: int, prot: int, populate: bool = False) -> int:
    """Map `size` bytes (not charged against the commit limit); returns the address.
    `populate`: for memory about to be written in full, whose pages the kernel then
    maps in one go (about half the cost of a page fault each)."""
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE | (_MAP_POPULATE if populate else 0)
    address = _libc.mmap(None, size, prot, flags, -1, 0)
    if address in (None, _MAP_FAILED):
        raise MemoryError(f"cannot reserve {size} bytes: errno {ctypes.get_errno()}")
    return address


def protect(address: int, size: int, prot: int):
    if _libc.mprotect(address, size, prot) != 0:
        raise MemoryError(f"mprotect of {size} bytes failed: errno {ctypes.get_errno()}")


def _address_of(m: mmap.mmap) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(m))


class CodeRegion:
    """One mapping holding finished machine code, read-only and executable."""

    def __init__(self, code: bytes):
        size = max(mmap.PAGESIZE, (len(code) + mmap.PAGESIZE - 1) & ~(mmap.PAGESIZE - 1))
        # Private, not mmap's default shared mapping: debuggers cannot plant breakpoints in
        # a shared mapping of /dev/zero.
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS,
                              prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self._map.write(code)
        self.address = _address_of(self._map)
        self.size = len(code)
        protect(self.address, size, mmap.PROT_READ | mmap.PROT_EXEC)
