"""Path resolution that cannot leave a directory descriptor (a preopen, or one opened
beneath it), done openat-style: the kernel never resolves more than one component, so
it never crosses a symlink or a `..` on its own.

`Lookup.parent()` walks a path to its last component and returns (directory fd, name):
each directory on the way is opened relative to the previous one with O_PATH |
O_NOFOLLOW; a symlink met on the way is read and its target walked in its place; `..`
steps back to the directory the walk came from. Whatever would leave the base fails
with EPERM: an absolute path, an absolute symlink target, a `..` at the base (even one
that would come back in, as Wasmtime rules). More than 40 symlinks fail with ELOOP.

The operation then acts on the name relative to that directory without following it
(O_NOFOLLOW, follow_symlinks=False). An operation that follows a final symlink calls
`expand(name)` when the name turns out to be one, and `parent()` again: the link's
target is walked like the rest of the path.

A trailing slash means what it means to Wasmtime (cap-std): for operations on an entry
(`entry()`: open, unlink, rmdir, readlink, link, symlink, set_times) the whole path is
walked as a directory and the operation applies to its `.`; stat, mkdir and rename
ignore it (rename passes it on to the kernel, which insists on directories).
"""

from __future__ import annotations

import errno
import os
import stat

from .abi import ELOOP, ENOENT, EPERM, WasiError

MAX_SYMLINKS = 40
WALK_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Lookup:
    """One path's walk beneath the directory fd `base` (see the module docstring); a
    context manager that closes the directories it opened."""

    def __init__(self, base: int, path: bytes):
        if not path:
            raise WasiError(ENOENT)
        if path[0] == 0x2F:  # "/"
            raise WasiError(EPERM)
        stripped = path.rstrip(b"/")
        self.trailing_slash = len(stripped) != len(path)
        # Components still to walk, the next one last.
        self.pending = [part for part in reversed(stripped.split(b"/")) if part]
        self.base = self.dir = base
        self.opened: list[int] = []  # directories the walk opened, innermost last
        self.links = 0

    def __enter__(self) -> "Lookup":
        return self

    def __exit__(self, *exc) -> None:
        for fd in self.opened:
            os.close(fd)

    def parent(self) -> tuple[int, bytes]:
        """Walk to the last component: its directory's fd and its name (`.` for the
        directory itself)."""
        pending = self.pending
        while True:
            component = pending.pop()
            last = not pending
            if component == b"..":
                self._up()
                if last:
                    return self.dir, b"."
            elif component == b".":
                if last:
                    return self.dir, b"."
            elif last:
                return self.dir, component
            else:
                self._down(component)

    def entry(self) -> tuple[int, bytes]:
        """`parent()`, except that a path with a trailing slash is walked to the end as a
        directory, whose `.` is then the entry."""
        if self.trailing_slash:
            self.pending.insert(0, b".")
        return self.parent()

    def expand(self, name: bytes) -> None:
        """`name`, in the current directory, is a symlink: walk its target next."""
        self.links += 1
        if self.links > MAX_SYMLINKS:
            raise WasiError(ELOOP)
        target = os.readlink(name, dir_fd=self.dir)
        if target.startswith(b"/"):
            raise WasiError(EPERM)
        self.pending.extend(part for part in reversed(target.split(b"/")) if part)

    def is_link(self, name: bytes) -> bool:
        try:
            return stat.S_ISLNK(os.stat(name, dir_fd=self.dir, follow_symlinks=False).st_mode)
        except OSError:
            return False

    def _down(self, component: bytes) -> None:
        try:
            fd = os.open(component, WALK_FLAGS, dir_fd=self.dir)
        except OSError as error:
            # O_NOFOLLOW | O_DIRECTORY on a symlink fails with ENOTDIR (ELOOP without O_PATH).
            if error.errno in (errno.ENOTDIR, errno.ELOOP) and self.is_link(component):
                self.expand(component)
                return
            raise
        self.opened.append(fd)
        self.dir = fd

    def _up(self) -> None:
        if not self.opened:
            raise WasiError(EPERM)
        os.close(self.opened.pop())
        self.dir = self.opened[-1] if self.opened else self.base


def _plain_name(path: bytes) -> bool:
    """A single component naming an entry of the base itself: the kernel may look it up
    (without following it), no walk needed."""
    return b"/" not in path and path not in (b"", b".", b"..")


def open_beneath(base: int, path: bytes, flags: int, follow: bool) -> int:
    """os.open of `path` beneath `base`; a final symlink is followed only with `follow`
    (else it fails with ELOOP, as O_NOFOLLOW says)."""
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    if _plain_name(path):
        try:
            return os.open(path, flags, 0o666, dir_fd=base)
        except OSError as error:
            if error.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise  # else it may be a symlink: the walk below follows it or says ELOOP
    with Lookup(base, path) as lookup:
        directory, name = lookup.entry()
        while True:
            try:
                return os.open(name, flags, 0o666, dir_fd=directory)
            except OSError as error:
                # A final symlink: ELOOP, or ENOTDIR with O_DIRECTORY.
                if error.errno not in (errno.ELOOP, errno.ENOTDIR) or not lookup.is_link(name):
                    raise
                if not follow:
                    raise WasiError(ELOOP) from None
            lookup.expand(name)
            directory, name = lookup.parent()


def stat_beneath(base: int, path: bytes, follow: bool) -> os.stat_result:
    if _plain_name(path):
        result = os.stat(path, dir_fd=base, follow_symlinks=False)
        if not (follow and stat.S_ISLNK(result.st_mode)):
            return result
    with Lookup(base, path) as lookup:
        while True:
            directory, name = lookup.parent()
            result = os.stat(name, dir_fd=directory, follow_symlinks=False)
            if not (follow and stat.S_ISLNK(result.st_mode)):
                return result
            lookup.expand(name)
