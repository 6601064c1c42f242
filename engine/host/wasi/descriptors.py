"""The guest's file descriptors: what each number is, and which number comes next.

Numbering follows Wasmtime's: stdio is 0-2, preopens follow in command-line order, and a
new descriptor takes the highest number freed by `fd_close` (or `fd_renumber`), else one
past the highest in use. Programs that print descriptor numbers see the same ones.
"""

from __future__ import annotations

import ctypes
import os
import sys

from .abi import (ALL_RIGHTS, DIRECTORY_RIGHTS, EBADF, FILETYPE_CHARACTER_DEVICE,
                  FILETYPE_DIRECTORY, FILETYPE_UNKNOWN, PREOPEN_INHERITING, PREOPEN_RIGHTS,
                  RIGHT_FD_READ, RIGHT_FD_READDIR, RIGHT_FD_WRITE, WasiError)

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import BinaryIO


class Stream:
    """Stdin, stdout or stderr. `stream` is a binary file object, or None for the process's
    own: fd 0 read unbuffered (so poll_oneoff sees what a read would get), sys.stdout and
    sys.stderr looked up at each write (so redirections by the embedder apply)."""

    def __init__(self, number: int, stream: BinaryIO | None):
        self.number = number
        self.stream = stream
        self.readable = number == 0
        if stream is None:
            self.tty = os.isatty(number)
        else:
            self.tty = bool(getattr(stream, "isatty", lambda: False)())

    def output(self) -> BinaryIO:
        if self.stream is not None:
            return self.stream
        return (sys.stdout if self.number == 1 else sys.stderr).buffer

    def fdstat(self) -> tuple:
        rights = RIGHT_FD_READ if self.readable else RIGHT_FD_WRITE
        filetype = FILETYPE_CHARACTER_DEVICE if self.tty else FILETYPE_UNKNOWN
        return filetype, 0, rights, rights

    def close(self) -> None:
        """The stream stays open for the embedder; only the guest's number goes."""


class File:
    """A file opened with path_open: a host fd whose offset is the guest's position."""

    def __init__(self, host_fd: int, filetype: int, readable: bool, writable: bool,
                 fdflags: int):
        self.host_fd = host_fd
        self.filetype = filetype
        self.readable = readable
        self.writable = writable
        self.fdflags = fdflags  # APPEND mirrors the host's O_APPEND; the sync flags are the host's

    def fdstat(self) -> tuple:
        rights = ALL_RIGHTS
        if not self.readable:
            rights &= ~(RIGHT_FD_READ | RIGHT_FD_READDIR)
        if not self.writable:
            rights &= ~RIGHT_FD_WRITE
        return self.filetype, self.fdflags, rights, rights

    def close(self) -> None:
        os.close(self.host_fd)


class Directory:
    """A directory: a preopen (`preopen` is its guest name) or one opened beneath one.
    `listing` keeps fd_readdir's last listing, so reading on from a cookie does not list
    the directory again."""

    def __init__(self, host_fd: int, preopen: str | None = None, readable: bool = True):
        self.host_fd = host_fd
        self.preopen = preopen
        self.readable = readable
        self.listing: list[bytes] | None = None

    def fdstat(self) -> tuple:
        if self.preopen is not None:
            return FILETYPE_DIRECTORY, 0, PREOPEN_RIGHTS, PREOPEN_INHERITING
        rights = DIRECTORY_RIGHTS & ~RIGHT_FD_WRITE
        if not self.readable:
            rights &= ~(RIGHT_FD_READ | RIGHT_FD_READDIR)
        return FILETYPE_DIRECTORY, 0, rights, rights

    def close(self) -> None:
        os.close(self.host_fd)


Descriptor = Stream | File | Directory


class DescriptorTable(dict):
    """fd -> Descriptor, with Wasmtime's numbering (see the module docstring).

    `native` mirrors it for the native fast paths of fd_read, fd_write and fd_seek
    (compiler/wasistubs.py): the host fd of each File numbered below NATIVE_FDS, -1 for
    every other number."""

    NATIVE_FDS = 1024

    def __init__(self):
        super().__init__()
        self.freed: set[int] = set()
        self.native = (ctypes.c_int64 * self.NATIVE_FDS)(*[-1] * self.NATIVE_FDS)

    def add(self, descriptor: Descriptor) -> int:
        if self.freed:
            fd = max(self.freed)
            self.freed.discard(fd)
        else:
            fd = max(self, default=-1) + 1
        self._set(fd, descriptor)
        return fd

    def remove(self, fd: int) -> Descriptor:
        descriptor = self.pop(fd, None)
        if descriptor is None:
            raise WasiError(EBADF)
        self._mirror(fd, None)
        self.freed.add(fd)
        return descriptor

    def renumber(self, source: int, target: int) -> None:
        """fd_renumber: `target` must be open too; its old descriptor is closed."""
        if target not in self or source not in self:
            raise WasiError(EBADF)
        if source != target:
            replaced = self[target]
            self._set(target, self.pop(source))
            self._mirror(source, None)
            self.freed.add(source)
            replaced.close()

    def _set(self, fd: int, descriptor: Descriptor) -> None:
        self[fd] = descriptor
        self._mirror(fd, descriptor)

    def _mirror(self, fd: int, descriptor: Descriptor | None) -> None:
        if fd < self.NATIVE_FDS:
            self.native[fd] = descriptor.host_fd if type(descriptor) is File else -1
