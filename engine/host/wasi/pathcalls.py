"""The path_* calls: every path is resolved beneath its directory descriptor by
paths.Lookup, so none can reach outside a preopen (see paths.py).

Errnos follow Wasmtime 49 where it differs from a plain *at system call: a path_* call on
a descriptor that is not a directory is EBADF (path_open on a file: ENOTDIR), path_link
refuses SYMLINK_FOLLOW with EINVAL, and an absolute symlink target is EPERM.
"""

from __future__ import annotations

import os
import stat

from .abi import (ALL_RIGHTS, EBADF, EINVAL, ENOTDIR, EPERM, ESUCCESS, FDFLAG_APPEND,
                  FDFLAG_DSYNC, FDFLAG_NONBLOCK, FDFLAG_RSYNC, FDFLAG_SYNC, FDFLAGS_ALL, FILESTAT,
                  FSTFLAGS_ALL, LOOKUP_SYMLINK_FOLLOW, OFLAG_CREAT, OFLAG_DIRECTORY, OFLAG_EXCL,
                  OFLAG_TRUNC, OFLAGS_ALL, RIGHT_FD_READ, RIGHT_FD_WRITE)
from .descriptors import Directory, File
from .fdcalls import filestat, filetype, invalid_argument
from .hostcalls import new_times, set_times
from .paths import Lookup, open_beneath, stat_beneath

_OFLAGS = ((OFLAG_CREAT, os.O_CREAT), (OFLAG_DIRECTORY, os.O_DIRECTORY),
           (OFLAG_EXCL, os.O_EXCL), (OFLAG_TRUNC, os.O_TRUNC))
_FDFLAGS = ((FDFLAG_APPEND, os.O_APPEND), (FDFLAG_DSYNC, os.O_DSYNC),
            (FDFLAG_RSYNC, os.O_RSYNC), (FDFLAG_SYNC, os.O_SYNC))


def _lookupflags(flags: int) -> bool:
    """Whether to follow a final symlink; bits beyond SYMLINK_FOLLOW trap."""
    if flags & ~LOOKUP_SYMLINK_FOLLOW:
        raise invalid_argument("lookupflags")
    return bool(flags)


class PathCalls:
    """Mixin of the Wasi class: `fds` is its DescriptorTable, `mem` its GuestMemory."""

    def path_open(self, dirfd: int, dirflags: int, path: int, path_len: int, oflags: int,
                  rights_base: int, rights_inheriting: int, fdflags: int, fd_ptr: int) -> int:
        follow = _lookupflags(dirflags)
        if oflags & ~OFLAGS_ALL:
            raise invalid_argument("oflags")
        if (rights_base | rights_inheriting) & ~ALL_RIGHTS:
            raise invalid_argument("rights")
        if fdflags & ~FDFLAGS_ALL:
            raise invalid_argument("fdflags")
        name = self.mem.path(path, path_len)
        base = self.fds.get(dirfd)
        if type(base) is not Directory:
            return ENOTDIR if type(base) is File else EBADF
        if oflags & OFLAG_DIRECTORY and oflags & (OFLAG_CREAT | OFLAG_EXCL | OFLAG_TRUNC):
            return EINVAL
        readable, writable = bool(rights_base & RIGHT_FD_READ), bool(rights_base & RIGHT_FD_WRITE)
        flags = os.O_RDWR if readable and writable else os.O_WRONLY if writable else os.O_RDONLY
        for wasi_flag, host_flag in _OFLAGS:
            if oflags & wasi_flag:
                flags |= host_flag
        for wasi_flag, host_flag in _FDFLAGS:
            if fdflags & wasi_flag:
                flags |= host_flag
        host_fd = open_beneath(base.host_fd, name, flags, follow)
        try:
            mode = os.fstat(host_fd).st_mode
        except OSError:
            os.close(host_fd)
            raise
        if stat.S_ISDIR(mode):
            opened = Directory(host_fd, readable=readable)
        else:
            kept = FDFLAG_APPEND | FDFLAG_NONBLOCK | FDFLAG_DSYNC | FDFLAG_RSYNC | FDFLAG_SYNC
            opened = File(host_fd, filetype(mode), readable, writable, fdflags & kept)
        self.mem.u32(fd_ptr, self.fds.add(opened))
        return ESUCCESS

    def path_filestat_get(self, fd: int, flags: int, path: int, path_len: int, buf: int) -> int:
        follow = _lookupflags(flags)
        base = self._directory(fd)
        result = stat_beneath(base.host_fd, self.mem.path(path, path_len), follow)
        self.mem.pack(FILESTAT, buf, *filestat(result))
        return ESUCCESS

    def path_filestat_set_times(self, fd: int, flags: int, path: int, path_len: int,
                                atim: int, mtim: int, fst_flags: int) -> int:
        follow = _lookupflags(flags)
        if fst_flags & ~FSTFLAGS_ALL:
            raise invalid_argument("fstflags")
        times = new_times(atim, mtim, fst_flags)
        base = self._directory(fd)
        with Lookup(base.host_fd, self.mem.path(path, path_len)) as lookup:
            directory, name = lookup.entry()
            while follow and lookup.is_link(name):
                lookup.expand(name)
                directory, name = lookup.parent()
            set_times(times, directory, name)
        return ESUCCESS

    def path_create_directory(self, fd: int, path: int, path_len: int) -> int:
        base = self._directory(fd)
        with Lookup(base.host_fd, self.mem.path(path, path_len)) as lookup:
            directory, name = lookup.parent()
            os.mkdir(name, 0o777, dir_fd=directory)
        return ESUCCESS

    def path_remove_directory(self, fd: int, path: int, path_len: int) -> int:
        base = self._directory(fd)
        with Lookup(base.host_fd, self.mem.path(path, path_len)) as lookup:
            directory, name = lookup.entry()
            os.rmdir(name, dir_fd=directory)
        return ESUCCESS

    def path_unlink_file(self, fd: int, path: int, path_len: int) -> int:
        base = self._directory(fd)
        with Lookup(base.host_fd, self.mem.path(path, path_len)) as lookup:
            directory, name = lookup.entry()
            os.unlink(name, dir_fd=directory)
        return ESUCCESS

    def path_readlink(self, fd: int, path: int, path_len: int, buf: int, buf_len: int,
                      bufused_ptr: int) -> int:
        base = self._directory(fd)
        with Lookup(base.host_fd, self.mem.path(path, path_len)) as lookup:
            directory, name = lookup.entry()
            target = os.readlink(name, dir_fd=directory)[:buf_len]
        self.mem.write(buf, target)
        self.mem.u32(bufused_ptr, len(target))
        return ESUCCESS

    def path_symlink(self, old_path: int, old_path_len: int, fd: int, new_path: int,
                     new_path_len: int) -> int:
        base = self._directory(fd)
        target = self.mem.path(old_path, old_path_len)
        link = self.mem.path(new_path, new_path_len)
        if target.startswith(b"/"):
            return EPERM  # it could never be followed beneath a preopen
        with Lookup(base.host_fd, link) as lookup:
            directory, name = lookup.entry()
            os.symlink(target, name, dir_fd=directory)
        return ESUCCESS

    def path_rename(self, fd: int, old_path: int, old_path_len: int, new_fd: int,
                    new_path: int, new_path_len: int) -> int:
        old_base, new_base = self._directory(fd), self._directory(new_fd)
        old = self.mem.path(old_path, old_path_len)
        new = self.mem.path(new_path, new_path_len)
        with Lookup(old_base.host_fd, old) as old_lookup, \
                Lookup(new_base.host_fd, new) as new_lookup:
            old_directory, old_name = old_lookup.parent()
            new_directory, new_name = new_lookup.parent()
            os.rename(old_name + b"/" * old_lookup.trailing_slash,
                      new_name + b"/" * new_lookup.trailing_slash,
                      src_dir_fd=old_directory, dst_dir_fd=new_directory)
        return ESUCCESS

    def path_link(self, old_fd: int, old_flags: int, old_path: int, old_path_len: int,
                  new_fd: int, new_path: int, new_path_len: int) -> int:
        follow = _lookupflags(old_flags)
        old_base, new_base = self._directory(old_fd), self._directory(new_fd)
        old = self.mem.path(old_path, old_path_len)
        new = self.mem.path(new_path, new_path_len)
        if follow:
            return EINVAL
        with Lookup(old_base.host_fd, old) as old_lookup, \
                Lookup(new_base.host_fd, new) as new_lookup:
            old_directory, old_name = old_lookup.entry()
            new_directory, new_name = new_lookup.entry()
            os.link(old_name, new_name, src_dir_fd=old_directory, dst_dir_fd=new_directory,
                    follow_symlinks=False)
        return ESUCCESS
