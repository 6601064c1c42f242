"""Executable memory that is writable while emitted and executable after, never both."""

from __future__ import annotations

import ctypes
import mmap

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.mprotect.restype = ctypes.c_int


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
        if _libc.mprotect(self.address, size, mmap.PROT_READ | mmap.PROT_EXEC) != 0:
            raise OSError(ctypes.get_errno(), "mprotect of JIT code failed")
