"""The host system calls Python's os module lacks: utimensat and futimens with per-time
UTIME_NOW / UTIME_OMIT, which WASI's fstflags need (os.utime sets both times or none)."""

from __future__ import annotations

import ctypes
import os

from .abi import EINVAL, FST_ATIM, FST_ATIM_NOW, FST_MTIM, FST_MTIM_NOW, WasiError

UTIME_NOW, UTIME_OMIT = (1 << 30) - 1, (1 << 30) - 2
AT_SYMLINK_NOFOLLOW = 0x100

_libc = ctypes.CDLL(None, use_errno=True)


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _timespec(timestamp: int, fstflags: int, set_flag: int, now_flag: int) -> _Timespec:
    if fstflags & set_flag and fstflags & now_flag:
        raise WasiError(EINVAL)
    if fstflags & set_flag:
        return _Timespec(timestamp // 1_000_000_000, timestamp % 1_000_000_000)
    return _Timespec(0, UTIME_NOW if fstflags & now_flag else UTIME_OMIT)


def new_times(atim: int, mtim: int, fstflags: int):
    """The timespec pair for fst_flags (EINVAL if a time is both given and `now`)."""
    return (_Timespec * 2)(_timespec(atim, fstflags, FST_ATIM, FST_ATIM_NOW),
                           _timespec(mtim, fstflags, FST_MTIM, FST_MTIM_NOW))


def set_times(times, fd: int, name: bytes | None = None) -> None:
    """futimens(fd), or utimensat(fd, name) without following a final symlink."""
    if name is None:
        result = _libc.futimens(fd, times)
    else:
        result = _libc.utimensat(fd, name, times, AT_SYMLINK_NOFOLLOW)
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
