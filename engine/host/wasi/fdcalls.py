"""The fd_* calls: reading, writing, seeking, metadata and directory listings of open
descriptors.

Which errno each misuse gets follows Wasmtime 49 (measured with tests/data/wasi_fs.c):
seeking or positioned I/O on stdio is ESPIPE, any other operation on the wrong kind of
descriptor is EBADF. Reads and writes gather and scatter all iovecs in one system call
(Wasmtime transfers only the first non-empty buffer per call; both are valid short I/O).
"""

from __future__ import annotations

import fcntl
import os
import stat

from ...runtime.store import Trap
from .abi import (ADVICE_LAST, ALL_RIGHTS, DIRENT, EBADF, EINVAL, ENAMETOOLONG, ENOTDIR,
                  ENOTSUP, ESPIPE, ESUCCESS, FDFLAG_APPEND, FDFLAG_DSYNC, FDFLAG_NONBLOCK,
                  FDFLAG_RSYNC, FDFLAG_SYNC, FDFLAGS_ALL, FDSTAT, FILESTAT, FILETYPE_BLOCK_DEVICE,
                  FILETYPE_CHARACTER_DEVICE, FILETYPE_DIRECTORY, FILETYPE_REGULAR_FILE,
                  FILETYPE_SOCKET_STREAM, FILETYPE_SYMBOLIC_LINK, FILETYPE_UNKNOWN, FSTFLAGS_ALL,
                  PREOPENTYPE_DIR, PRESTAT, WasiError)
from .descriptors import Directory, File, Stream
from .hostcalls import new_times, set_times

_SIGN = 1 << 63
_FADVISE = (os.POSIX_FADV_NORMAL, os.POSIX_FADV_SEQUENTIAL, os.POSIX_FADV_RANDOM,
            os.POSIX_FADV_WILLNEED, os.POSIX_FADV_DONTNEED, os.POSIX_FADV_NOREUSE)
_FILETYPES = {stat.S_IFREG: FILETYPE_REGULAR_FILE, stat.S_IFDIR: FILETYPE_DIRECTORY,
              stat.S_IFLNK: FILETYPE_SYMBOLIC_LINK, stat.S_IFCHR: FILETYPE_CHARACTER_DEVICE,
              stat.S_IFBLK: FILETYPE_BLOCK_DEVICE, stat.S_IFSOCK: FILETYPE_SOCKET_STREAM}


def invalid_argument(what: str) -> Trap:
    """An enum or flags argument out of range: Wasmtime traps while converting it."""
    return Trap(f"WASI: invalid {what}")


def filetype(mode: int) -> int:
    return _FILETYPES.get(stat.S_IFMT(mode), FILETYPE_UNKNOWN)


def filestat(result: os.stat_result) -> tuple:
    """The filestat fields; times before 1970 (negative) read as 0."""
    return (result.st_dev, result.st_ino, filetype(result.st_mode), result.st_nlink,
            result.st_size, max(0, result.st_atime_ns), max(0, result.st_mtime_ns),
            max(0, result.st_ctime_ns))


def read_stream(stream: Stream, buffers: list[memoryview]) -> int:
    if stream.stream is None:
        return os.readv(0, buffers)
    # At most one read of the underlying file per buffer (raw files have only readinto).
    read_into = getattr(stream.stream, "readinto1", None) or stream.stream.readinto
    total = 0
    for buffer in buffers:
        n = read_into(buffer) or 0
        total += n
        if n < len(buffer):
            break
    return total


def write_stream(stream: Stream, buffers: list[memoryview]) -> int:
    output = stream.output()
    total = 0
    for buffer in buffers:
        total += output.write(buffer)
    output.flush()
    return total


class FdCalls:
    """Mixin of the Wasi class: `fds` is its DescriptorTable, `mem` its GuestMemory."""

    def _file(self, fd: int) -> File:
        descriptor = self.fds.get(fd)
        if type(descriptor) is not File:
            raise WasiError(EBADF)
        return descriptor

    def _directory(self, fd: int) -> Directory:
        descriptor = self.fds.get(fd)
        if type(descriptor) is not Directory:
            raise WasiError(EBADF)
        return descriptor

    def _host_fd(self, fd: int) -> int:
        """A file's or directory's host fd (stdio has none: EBADF)."""
        descriptor = self.fds.get(fd)
        if descriptor is None or type(descriptor) is Stream:
            raise WasiError(EBADF)
        return descriptor.host_fd

    # -- data --------------------------------------------------------------------------

    def fd_read(self, fd: int, iovs: int, iovs_len: int, nread_ptr: int) -> int:
        buffers = self.mem.buffers(iovs, iovs_len)
        descriptor = self.fds.get(fd)
        if type(descriptor) is File:
            n = os.readv(descriptor.host_fd, buffers)
        elif type(descriptor) is Stream and descriptor.readable:
            n = read_stream(descriptor, buffers)
        else:
            return EBADF
        self.mem.u32(nread_ptr, n)
        return ESUCCESS

    def fd_write(self, fd: int, iovs: int, iovs_len: int, nwritten_ptr: int) -> int:
        buffers = self.mem.buffers(iovs, iovs_len)
        descriptor = self.fds.get(fd)
        if type(descriptor) is File:
            n = os.writev(descriptor.host_fd, buffers)
        elif type(descriptor) is Stream and not descriptor.readable:
            n = write_stream(descriptor, buffers)
        else:
            return EBADF
        self.mem.u32(nwritten_ptr, n)
        return ESUCCESS

    def fd_pread(self, fd: int, iovs: int, iovs_len: int, offset: int, nread_ptr: int) -> int:
        buffers = self.mem.buffers(iovs, iovs_len)
        descriptor = self.fds.get(fd)
        if type(descriptor) is Stream and descriptor.readable:
            return ESPIPE
        if offset >= _SIGN:
            return EINVAL
        n = os.preadv(self._file(fd).host_fd, buffers, offset)
        self.mem.u32(nread_ptr, n)
        return ESUCCESS

    def fd_pwrite(self, fd: int, iovs: int, iovs_len: int, offset: int, nwritten_ptr: int) -> int:
        buffers = self.mem.buffers(iovs, iovs_len)
        descriptor = self.fds.get(fd)
        if type(descriptor) is Stream and not descriptor.readable:
            return ESPIPE
        if offset >= _SIGN:
            return EINVAL
        n = os.pwritev(self._file(fd).host_fd, buffers, offset)
        self.mem.u32(nwritten_ptr, n)
        return ESUCCESS

    def fd_seek(self, fd: int, offset: int, whence: int, newoffset_ptr: int) -> int:
        if whence > 2:
            raise invalid_argument("whence")
        descriptor = self.fds.get(fd)
        if type(descriptor) is not File:
            return ESPIPE if type(descriptor) is Stream else EBADF
        signed_offset = offset - (offset & _SIGN) * 2
        self.mem.u64(newoffset_ptr, os.lseek(descriptor.host_fd, signed_offset, whence))
        return ESUCCESS

    def fd_tell(self, fd: int, offset_ptr: int) -> int:
        descriptor = self.fds.get(fd)
        if type(descriptor) is not File:
            return ESPIPE if type(descriptor) is Stream else EBADF
        self.mem.u64(offset_ptr, os.lseek(descriptor.host_fd, 0, os.SEEK_CUR))
        return ESUCCESS

    # -- the descriptor itself ---------------------------------------------------------

    def fd_close(self, fd: int) -> int:
        self.fds.remove(fd).close()
        return ESUCCESS

    def fd_renumber(self, fd: int, to: int) -> int:
        self.fds.renumber(fd, to)
        return ESUCCESS

    def fd_fdstat_get(self, fd: int, result_ptr: int) -> int:
        descriptor = self.fds.get(fd)
        if descriptor is None:
            return EBADF
        self.mem.pack(FDSTAT, result_ptr, *descriptor.fdstat())
        return ESUCCESS

    def fd_fdstat_set_flags(self, fd: int, flags: int) -> int:
        if flags & ~FDFLAGS_ALL:
            raise invalid_argument("fdflags")
        file = self._file(fd)
        if flags & (FDFLAG_DSYNC | FDFLAG_RSYNC | FDFLAG_SYNC):
            return EINVAL  # only APPEND and NONBLOCK can change
        current = fcntl.fcntl(file.host_fd, fcntl.F_GETFL)
        wanted = current | os.O_APPEND if flags & FDFLAG_APPEND else current & ~os.O_APPEND
        if wanted != current:
            fcntl.fcntl(file.host_fd, fcntl.F_SETFL, wanted)
        # NONBLOCK is reported, not applied: reads and writes of files block anyway.
        file.fdflags = (file.fdflags & ~(FDFLAG_APPEND | FDFLAG_NONBLOCK)) | \
            (flags & (FDFLAG_APPEND | FDFLAG_NONBLOCK))
        return ESUCCESS

    def fd_fdstat_set_rights(self, fd: int, rights_base: int, rights_inheriting: int) -> int:
        if (rights_base | rights_inheriting) & ~ALL_RIGHTS:
            raise invalid_argument("rights")
        self._host_fd(fd)
        return ENOTSUP

    def fd_filestat_get(self, fd: int, result_ptr: int) -> int:
        descriptor = self.fds.get(fd)
        if descriptor is None:
            return EBADF
        if type(descriptor) is Stream:
            values = (0, 0, descriptor.fdstat()[0], 0, 0, 0, 0, 0)
        else:
            values = filestat(os.fstat(descriptor.host_fd))
        self.mem.pack(FILESTAT, result_ptr, *values)
        return ESUCCESS

    def fd_filestat_set_size(self, fd: int, size: int) -> int:
        file = self._file(fd)
        if size >= _SIGN:
            return EINVAL
        os.ftruncate(file.host_fd, size)
        return ESUCCESS

    def fd_filestat_set_times(self, fd: int, atim: int, mtim: int, fst_flags: int) -> int:
        if fst_flags & ~FSTFLAGS_ALL:
            raise invalid_argument("fstflags")
        times = new_times(atim, mtim, fst_flags)
        set_times(times, self._host_fd(fd))
        return ESUCCESS

    def fd_advise(self, fd: int, offset: int, length: int, advice: int) -> int:
        if advice > ADVICE_LAST:
            raise invalid_argument("advice")
        file = self._file(fd)
        if offset >= _SIGN or length >= _SIGN:
            return EINVAL
        os.posix_fadvise(file.host_fd, offset, length, _FADVISE[advice])
        return ESUCCESS

    def fd_allocate(self, fd: int, offset: int, length: int) -> int:
        self._file(fd)
        return ENOTSUP

    def fd_datasync(self, fd: int) -> int:
        os.fdatasync(self._file(fd).host_fd)
        return ESUCCESS

    def fd_sync(self, fd: int) -> int:
        os.fsync(self._file(fd).host_fd)
        return ESUCCESS

    # -- directories -------------------------------------------------------------------

    def fd_readdir(self, fd: int, buf: int, buf_len: int, cookie: int, bufused_ptr: int) -> int:
        directory = self._directory(fd)
        if cookie == 0 or directory.listing is None:
            directory.listing = list_directory(directory.host_fd)
        data = b"".join(directory.listing[cookie:])[:buf_len]
        self.mem.write(buf, data)
        self.mem.u32(bufused_ptr, len(data))
        return ESUCCESS

    def fd_prestat_get(self, fd: int, result_ptr: int) -> int:
        descriptor = self.fds.get(fd)
        if type(descriptor) is not Directory or descriptor.preopen is None:
            return EBADF
        self.mem.pack(PRESTAT, result_ptr, PREOPENTYPE_DIR, len(descriptor.preopen.encode()))
        return ESUCCESS

    def fd_prestat_dir_name(self, fd: int, path: int, path_len: int) -> int:
        descriptor = self.fds.get(fd)
        if descriptor is None:
            return EBADF
        if type(descriptor) is not Directory or descriptor.preopen is None:
            return ENOTDIR
        name = descriptor.preopen.encode()
        if len(name) > path_len:
            return ENAMETOOLONG
        self.mem.write(path, name)
        return ESUCCESS


def list_directory(host_fd: int) -> list[bytes]:
    """fd_readdir's entries, each a dirent and its name: `.` and `..` first, as Wasmtime
    lists them, then the host's entries in the host's order; d_next is the next cookie."""
    inode = os.fstat(host_fd).st_ino
    entries = [DIRENT.pack(1, inode, 1, FILETYPE_DIRECTORY) + b".",
               DIRENT.pack(2, inode, 2, FILETYPE_DIRECTORY) + b".."]
    with os.scandir(host_fd) as listing:
        for entry in listing:
            if entry.is_symlink():
                kind = FILETYPE_SYMBOLIC_LINK
            elif entry.is_dir(follow_symlinks=False):
                kind = FILETYPE_DIRECTORY
            elif entry.is_file(follow_symlinks=False):
                kind = FILETYPE_REGULAR_FILE
            else:
                kind = filetype(entry.stat(follow_symlinks=False).st_mode)
            name = os.fsencode(entry.name)
            entries.append(DIRENT.pack(len(entries) + 1, entry.inode(), len(name), kind) + name)
    return entries
