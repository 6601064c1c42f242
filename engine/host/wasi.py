"""A WASI preview1 subset: enough for a C program's stdio, arguments, environment and exit.

Every preview1 function is offered, so that any WASI module links; the ones this subset does
not implement return the errno the spec prescribes instead of trapping. There are no
preopened directories, so the file system is empty: only fds 0, 1 and 2 exist.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from typing import BinaryIO, Callable

from ..runtime.store import HostExit, LinkError
from ..frontend.types import FuncType

MODULE = "wasi_snapshot_preview1"

# errno values, in the order of the preview1 `errno` enum.
ESUCCESS = 0
EBADF = 8
EFAULT = 21
EINVAL = 28
EIO = 29
ENOSYS = 52
ESPIPE = 70

# filetype and rights values used by fdstat/filestat.
FILETYPE_CHARACTER_DEVICE = 2
RIGHT_FD_READ = 1 << 1
RIGHT_FD_WRITE = 1 << 6
RIGHT_POLL_FD_READWRITE = 1 << 27

CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME, CLOCK_THREAD_CPUTIME = range(4)
_CLOCKS = {
    CLOCK_REALTIME: (time.time_ns, "time"),
    CLOCK_MONOTONIC: (time.monotonic_ns, "monotonic"),
    CLOCK_PROCESS_CPUTIME: (time.process_time_ns, "process_time"),
    CLOCK_THREAD_CPUTIME: (time.thread_time_ns, "thread_time"),
}

# Lowered signatures of all preview1 functions: "params:results", i = i32, I = i64.
SIGNATURES = {
    "args_get": "ii:i", "args_sizes_get": "ii:i",
    "environ_get": "ii:i", "environ_sizes_get": "ii:i",
    "clock_res_get": "ii:i", "clock_time_get": "iIi:i",
    "fd_advise": "iIIi:i", "fd_allocate": "iII:i", "fd_close": "i:i", "fd_datasync": "i:i",
    "fd_fdstat_get": "ii:i", "fd_fdstat_set_flags": "ii:i", "fd_fdstat_set_rights": "iII:i",
    "fd_filestat_get": "ii:i", "fd_filestat_set_size": "iI:i", "fd_filestat_set_times": "iIIi:i",
    "fd_pread": "iiiIi:i", "fd_prestat_get": "ii:i", "fd_prestat_dir_name": "iii:i",
    "fd_pwrite": "iiiIi:i", "fd_read": "iiii:i", "fd_readdir": "iiiIi:i",
    "fd_renumber": "ii:i", "fd_seek": "iIii:i", "fd_sync": "i:i", "fd_tell": "ii:i",
    "fd_write": "iiii:i",
    "path_create_directory": "iii:i", "path_filestat_get": "iiiii:i",
    "path_filestat_set_times": "iiiiIIi:i", "path_link": "iiiiiii:i",
    "path_open": "iiiiiIIii:i", "path_readlink": "iiiiii:i",
    "path_remove_directory": "iii:i", "path_rename": "iiiiii:i",
    "path_symlink": "iiiii:i", "path_unlink_file": "iii:i",
    "poll_oneoff": "iiii:i", "proc_exit": "i:", "proc_raise": "i:i", "sched_yield": ":i",
    "random_get": "ii:i",
    "sock_accept": "iii:i", "sock_recv": "iiiiii:i", "sock_send": "iiiii:i",
    "sock_shutdown": "ii:i",
}

# Unimplemented functions whose first parameter is an fd: with no files but stdio, the
# honest answer for any other fd is EBADF (a path_* fd would have to be a preopen).
_FD_FIRST = {name for name in SIGNATURES if name.startswith(("fd_", "path_", "sock_"))}


class ProcExit(HostExit):
    """`proc_exit(code)` was called: unwinds out of the Wasm call to the embedder."""

    def __init__(self, code: int):
        super().__init__(f"proc_exit({code})")
        self.code = code


class _Fault(Exception):
    """A pointer argument lies outside linear memory (reported to Wasm as EFAULT)."""


def _functype(signature: str) -> FuncType:
    names = {"i": "i32", "I": "i64"}
    params, results = signature.split(":")
    return FuncType(tuple(names[c] for c in params), tuple(names[c] for c in results))


class Wasi:
    """The WASI state of one process: arguments, environment, stdio streams, open fds.

    Streams are binary file objects; `None` means the interpreter's own stdio at call time,
    so output redirected by the embedder (or captured by pytest) goes where expected.
    """

    def __init__(self, args: list[str], env: dict[str, str],
                 stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
                 stderr: BinaryIO | None = None):
        self.args = list(args)
        self.env = dict(env)
        self._streams = {0: stdin, 1: stdout, 2: stderr}
        self._open_fds = {0, 1, 2}
        self._memory = None

    # -- embedding ------------------------------------------------------------------------

    def imports(self, store) -> dict:
        """Host functions for every preview1 import, keyed (module, name)."""
        return {(MODULE, name): store.host_function(_functype(sig), self._entry(name), name)
                for name, sig in SIGNATURES.items()}

    def bind(self, instance) -> None:
        """Use the instance's exported `memory` for all pointer arguments."""
        memory = instance.exports.get("memory")
        if memory is None or not hasattr(memory, "read"):
            raise LinkError("WASI module does not export a memory named \"memory\"")
        self._memory = memory

    def _entry(self, name: str) -> Callable:
        """The Python callable behind one import: dispatches and maps faults to EFAULT."""
        handler = getattr(self, name, None)
        if handler is None:
            return lambda *raw: self._unsupported(name, raw)

        def call(*raw):
            try:
                return handler(*raw)
            except _Fault:
                return EFAULT
        call.__name__ = name
        return call

    def _unsupported(self, name: str, raw: tuple) -> int:
        if name in _FD_FIRST and raw[0] not in self._open_fds:
            return EBADF
        return ENOSYS

    # -- memory access --------------------------------------------------------------------

    def _mem(self):
        if self._memory is None:
            raise RuntimeError("WASI called before Wasi.bind(instance)")
        return self._memory

    def _read(self, addr: int, n: int) -> bytes:
        memory = self._mem()
        if addr + n > memory.size_bytes:
            raise _Fault
        return memory.read(addr, n)

    def _write(self, addr: int, data: bytes) -> None:
        memory = self._mem()
        if addr + len(data) > memory.size_bytes:
            raise _Fault
        memory.write(addr, data)

    def _iovecs(self, iovs: int, count: int) -> list[tuple[int, int]]:
        """(buf, len) pairs of an iovec/ciovec array (two u32 each)."""
        raw = self._read(iovs, 8 * count)
        return [struct.unpack_from("<II", raw, 8 * i) for i in range(count)]

    def _stream(self, fd: int) -> BinaryIO:
        stream = self._streams[fd]
        if stream is not None:
            return stream
        return (sys.stdin, sys.stdout, sys.stderr)[fd].buffer

    # -- args and environment -------------------------------------------------------------

    def _write_strings(self, strings: list[bytes], ptrs: int, buf: int) -> int:
        """Lay out NUL-terminated strings at `buf` and their addresses at `ptrs`."""
        addresses, offset = [], buf
        for s in strings:
            addresses.append(offset)
            offset += len(s) + 1
        self._write(buf, b"".join(s + b"\0" for s in strings))
        self._write(ptrs, struct.pack(f"<{len(addresses)}I", *addresses))
        return ESUCCESS

    def _write_sizes(self, strings: list[bytes], count_ptr: int, size_ptr: int) -> int:
        self._write(count_ptr, struct.pack("<I", len(strings)))
        self._write(size_ptr, struct.pack("<I", sum(len(s) + 1 for s in strings)))
        return ESUCCESS

    def _arg_bytes(self) -> list[bytes]:
        return [a.encode() for a in self.args]

    def _env_bytes(self) -> list[bytes]:
        return [f"{k}={v}".encode() for k, v in self.env.items()]

    def args_get(self, argv: int, argv_buf: int) -> int:
        return self._write_strings(self._arg_bytes(), argv, argv_buf)

    def args_sizes_get(self, count_ptr: int, size_ptr: int) -> int:
        return self._write_sizes(self._arg_bytes(), count_ptr, size_ptr)

    def environ_get(self, environ: int, environ_buf: int) -> int:
        return self._write_strings(self._env_bytes(), environ, environ_buf)

    def environ_sizes_get(self, count_ptr: int, size_ptr: int) -> int:
        return self._write_sizes(self._env_bytes(), count_ptr, size_ptr)

    # -- clocks, randomness, process ------------------------------------------------------

    def clock_res_get(self, clock_id: int, result_ptr: int) -> int:
        if clock_id not in _CLOCKS:
            return EINVAL
        resolution = time.get_clock_info(_CLOCKS[clock_id][1]).resolution
        self._write(result_ptr, struct.pack("<Q", max(1, round(resolution * 1e9))))
        return ESUCCESS

    def clock_time_get(self, clock_id: int, precision: int, result_ptr: int) -> int:
        if clock_id not in _CLOCKS:
            return EINVAL
        self._write(result_ptr, struct.pack("<Q", _CLOCKS[clock_id][0]()))
        return ESUCCESS

    def random_get(self, buf: int, length: int) -> int:
        self._write(buf, os.urandom(length))
        return ESUCCESS

    def proc_exit(self, code: int) -> None:
        raise ProcExit(code)

    def sched_yield(self) -> int:
        return ESUCCESS

    # -- file descriptors -----------------------------------------------------------------

    def fd_write(self, fd: int, iovs: int, iovs_len: int, nwritten_ptr: int) -> int:
        if fd not in self._open_fds:
            return EBADF
        if fd == 0:
            return EBADF  # stdin is not open for writing
        data = b"".join(self._read(buf, n) for buf, n in self._iovecs(iovs, iovs_len))
        try:
            stream = self._stream(fd)
            stream.write(data)
            stream.flush()
        except OSError:
            return EIO
        self._write(nwritten_ptr, struct.pack("<I", len(data)))
        return ESUCCESS

    def fd_read(self, fd: int, iovs: int, iovs_len: int, nread_ptr: int) -> int:
        if fd != 0 or fd not in self._open_fds:
            return EBADF
        stream = self._stream(0)
        read = getattr(stream, "read1", stream.read)
        total = 0
        try:
            for buf, n in self._iovecs(iovs, iovs_len):
                data = read(n) if n else b""
                self._write(buf, data)
                total += len(data)
                if len(data) < n:
                    break
        except OSError:
            return EIO
        self._write(nread_ptr, struct.pack("<I", total))
        return ESUCCESS

    def fd_close(self, fd: int) -> int:
        if fd not in self._open_fds:
            return EBADF
        self._open_fds.discard(fd)
        return ESUCCESS

    def fd_fdstat_get(self, fd: int, result_ptr: int) -> int:
        if fd not in self._open_fds:
            return EBADF
        rights = (RIGHT_FD_READ if fd == 0 else RIGHT_FD_WRITE) | RIGHT_POLL_FD_READWRITE
        # fdstat: filetype u8 @0, fdflags u16 @2, rights_base u64 @8, rights_inheriting u64 @16
        self._write(result_ptr, struct.pack("<BxHxxxxQQ", FILETYPE_CHARACTER_DEVICE, 0, rights, 0))
        return ESUCCESS

    def fd_filestat_get(self, fd: int, result_ptr: int) -> int:
        if fd not in self._open_fds:
            return EBADF
        # filestat: dev, ino u64; filetype u8 @16; nlink, size, atim, mtim, ctim u64 @24..
        self._write(result_ptr, struct.pack("<QQB7xQQQQQ", 0, 0, FILETYPE_CHARACTER_DEVICE,
                                            1, 0, 0, 0, 0))
        return ESUCCESS

    def fd_seek(self, fd: int, offset: int, whence: int, newoffset_ptr: int) -> int:
        if fd not in self._open_fds:
            return EBADF
        if whence > 2:
            return EINVAL
        return ESPIPE  # stdio streams are not seekable

    def fd_tell(self, fd: int, offset_ptr: int) -> int:
        if fd not in self._open_fds:
            return EBADF
        return ESPIPE

    def fd_prestat_get(self, fd: int, result_ptr: int) -> int:
        return EBADF  # no preopened directories

    def fd_prestat_dir_name(self, fd: int, path: int, path_len: int) -> int:
        return EBADF
