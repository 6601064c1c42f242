"""WASI preview1's numbers and layouts: errno values, flags, rights, and the structs that
cross linear memory, as precompiled `struct` formats (little endian, the ABI's alignment)."""

from __future__ import annotations

import errno as host_errno
import struct

from .. import WASI_MODULE

MODULE = WASI_MODULE

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

# The errno enum, in order (value = position).
ERRNO_NAMES = (
    "SUCCESS 2BIG ACCES ADDRINUSE ADDRNOTAVAIL AFNOSUPPORT AGAIN ALREADY BADF BADMSG BUSY "
    "CANCELED CHILD CONNABORTED CONNREFUSED CONNRESET DEADLK DESTADDRREQ DOM DQUOT EXIST "
    "FAULT FBIG HOSTUNREACH IDRM ILSEQ INPROGRESS INTR INVAL IO ISCONN ISDIR LOOP MFILE "
    "MLINK MSGSIZE MULTIHOP NAMETOOLONG NETDOWN NETRESET NETUNREACH NFILE NOBUFS NODEV "
    "NOENT NOEXEC NOLCK NOLINK NOMEM NOMSG NOPROTOOPT NOSPC NOSYS NOTCONN NOTDIR NOTEMPTY "
    "NOTRECOVERABLE NOTSOCK NOTSUP NOTTY NXIO OVERFLOW OWNERDEAD PERM PIPE PROTO "
    "PROTONOSUPPORT PROTOTYPE RANGE ROFS SPIPE SRCH STALE TIMEDOUT TXTBSY XDEV NOTCAPABLE"
).split()

ESUCCESS, EBADF, EEXIST, EFAULT, EILSEQ, EINVAL, EIO, EISDIR = 0, 8, 20, 21, 25, 28, 29, 31
ELOOP, ENAMETOOLONG, ENOENT, ENOSYS, ENOTDIR, ENOTSOCK, ENOTSUP = 32, 37, 44, 52, 54, 57, 58
EPERM, ESPIPE, ENOTCAPABLE = 63, 70, 76

# Host errno -> WASI errno; host errors WASI has no name for become EIO.
_ERRNO_ALIASES = {"ACCES": "EACCES"}
FROM_HOST_ERRNO = {getattr(host_errno, _ERRNO_ALIASES.get(name, "E" + name)): value
                   for value, name in enumerate(ERRNO_NAMES)
                   if hasattr(host_errno, _ERRNO_ALIASES.get(name, "E" + name))}


def wasi_errno(error: OSError) -> int:
    return FROM_HOST_ERRNO.get(error.errno, EIO)


class WasiError(Exception):
    """A WASI call fails with `errno` (raised deep in a call, returned at its top)."""

    def __init__(self, errno: int):
        super().__init__(ERRNO_NAMES[errno])
        self.errno = errno


# filetype
FILETYPE_UNKNOWN, FILETYPE_BLOCK_DEVICE, FILETYPE_CHARACTER_DEVICE = 0, 1, 2
FILETYPE_DIRECTORY, FILETYPE_REGULAR_FILE = 3, 4
FILETYPE_SOCKET_STREAM, FILETYPE_SYMBOLIC_LINK = 6, 7

# rights (a u64 of 30 defined bits)
RIGHT_FD_DATASYNC, RIGHT_FD_READ, RIGHT_FD_SEEK = 1 << 0, 1 << 1, 1 << 2
RIGHT_FD_FDSTAT_SET_FLAGS, RIGHT_FD_SYNC, RIGHT_FD_TELL = 1 << 3, 1 << 4, 1 << 5
RIGHT_FD_WRITE, RIGHT_FD_ADVISE, RIGHT_FD_ALLOCATE = 1 << 6, 1 << 7, 1 << 8
RIGHT_PATH_CREATE_DIRECTORY, RIGHT_PATH_CREATE_FILE = 1 << 9, 1 << 10
RIGHT_PATH_LINK_SOURCE, RIGHT_PATH_LINK_TARGET, RIGHT_PATH_OPEN = 1 << 11, 1 << 12, 1 << 13
RIGHT_FD_READDIR, RIGHT_PATH_READLINK = 1 << 14, 1 << 15
RIGHT_PATH_RENAME_SOURCE, RIGHT_PATH_RENAME_TARGET = 1 << 16, 1 << 17
RIGHT_PATH_FILESTAT_GET, RIGHT_PATH_FILESTAT_SET_SIZE = 1 << 18, 1 << 19
RIGHT_PATH_FILESTAT_SET_TIMES, RIGHT_FD_FILESTAT_GET = 1 << 20, 1 << 21
RIGHT_FD_FILESTAT_SET_SIZE, RIGHT_FD_FILESTAT_SET_TIMES = 1 << 22, 1 << 23
RIGHT_PATH_SYMLINK, RIGHT_PATH_REMOVE_DIRECTORY = 1 << 24, 1 << 25
RIGHT_PATH_UNLINK_FILE, RIGHT_POLL_FD_READWRITE = 1 << 26, 1 << 27
ALL_RIGHTS = (1 << 30) - 1

# What Wasmtime reports for a preopened directory: the rights userlands expect of one,
# and of what is opened beneath it.
PREOPEN_RIGHTS = (RIGHT_PATH_CREATE_DIRECTORY | RIGHT_PATH_CREATE_FILE | RIGHT_PATH_LINK_SOURCE
                  | RIGHT_PATH_LINK_TARGET | RIGHT_PATH_OPEN | RIGHT_FD_READDIR
                  | RIGHT_PATH_READLINK | RIGHT_PATH_RENAME_SOURCE | RIGHT_PATH_RENAME_TARGET
                  | RIGHT_PATH_SYMLINK | RIGHT_PATH_REMOVE_DIRECTORY | RIGHT_PATH_UNLINK_FILE
                  | RIGHT_PATH_FILESTAT_GET | RIGHT_PATH_FILESTAT_SET_TIMES
                  | RIGHT_FD_FILESTAT_GET | RIGHT_FD_FILESTAT_SET_TIMES)
PREOPEN_INHERITING = (PREOPEN_RIGHTS | RIGHT_FD_DATASYNC | RIGHT_FD_READ | RIGHT_FD_SEEK
                      | RIGHT_FD_FDSTAT_SET_FLAGS | RIGHT_FD_SYNC | RIGHT_FD_TELL
                      | RIGHT_FD_WRITE | RIGHT_FD_ADVISE | RIGHT_FD_ALLOCATE
                      | RIGHT_FD_FILESTAT_GET | RIGHT_FD_FILESTAT_SET_SIZE
                      | RIGHT_FD_FILESTAT_SET_TIMES | RIGHT_POLL_FD_READWRITE)
# A directory opened beneath a preopen: everything but seeking and resizing.
DIRECTORY_RIGHTS = ALL_RIGHTS & ~(RIGHT_FD_SEEK | RIGHT_FD_FILESTAT_SET_SIZE
                                  | RIGHT_PATH_FILESTAT_SET_SIZE)

# fdflags (u16), oflags (u16), lookupflags (u32), fstflags (u16)
FDFLAG_APPEND, FDFLAG_DSYNC, FDFLAG_NONBLOCK, FDFLAG_RSYNC, FDFLAG_SYNC = 1, 2, 4, 8, 16
FDFLAGS_ALL = 0x1F
OFLAG_CREAT, OFLAG_DIRECTORY, OFLAG_EXCL, OFLAG_TRUNC = 1, 2, 4, 8
OFLAGS_ALL = 0xF
LOOKUP_SYMLINK_FOLLOW = 1
FST_ATIM, FST_ATIM_NOW, FST_MTIM, FST_MTIM_NOW = 1, 2, 4, 8
FSTFLAGS_ALL = 0xF

WHENCE_SET, WHENCE_CUR, WHENCE_END = 0, 1, 2
CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME, CLOCK_THREAD_CPUTIME = range(4)
ADVICE_LAST = 5  # normal, sequential, random, willneed, dontneed, noreuse
SIGNAL_LAST = 30

EVENTTYPE_CLOCK, EVENTTYPE_FD_READ, EVENTTYPE_FD_WRITE = 0, 1, 2
SUBCLOCK_ABSTIME = 1
EVENT_FD_READWRITE_HANGUP = 1

PREOPENTYPE_DIR = 0

# Layouts in linear memory.
class Layout(struct.Struct):
    """A struct format with the alignment its pointers must have (a misaligned one traps)."""

    def __init__(self, fmt: str, align: int):
        super().__init__(fmt)
        self.align_mask = align - 1


U32 = Layout("<I", 4)
U64 = Layout("<Q", 8)
IOVEC = Layout("<II", 4)                          # buf, buf_len (iovec and ciovec)
FDSTAT = Layout("<BxHxxxxQQ", 8)                  # filetype, flags, rights_base, rights_inheriting
FILESTAT = Layout("<QQB7xQQQQQ", 8)  # dev, ino, filetype, nlink, size, atim, mtim, ctim
PRESTAT = Layout("<B3xI", 4)                      # tag, pr_name_len
DIRENT = Layout("<QQIB3x", 8)                     # d_next, d_ino, d_namlen, d_type
# userdata, tag, then clock: id, timeout, precision, flags (fd_read/fd_write: the fd at id)
SUBSCRIPTION = Layout("<QB7xIxxxxQQH6x", 8)
EVENT = Layout("<QHBxxxxxQH6x", 8)                # userdata, error, type, nbytes, flags
assert (FDSTAT.size, FILESTAT.size, PRESTAT.size, DIRENT.size, SUBSCRIPTION.size, EVENT.size) \
    == (24, 64, 8, 24, 48, 32)
