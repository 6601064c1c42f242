"""WASI preview1, in process: every call through a tiny Wasm module that forwards to the
imports, and path resolution beneath a directory checked on a real tree. The C programs
compared with Wasmtime are in test_wasi_programs.py."""

from __future__ import annotations

import io
import os
import struct
import time
from pathlib import Path

import pytest

from stackstitch.engine.host import wasi
from stackstitch.engine.host.wasi.paths import open_beneath, stat_beneath
from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import LinkError, Store, Trap


# -- a module that forwards to each import ---------------------------------------------

def wat_signature(name: str) -> tuple[str, int]:
    """The WAT params/results of a preview1 function, and its parameter count."""
    types = {"i": "i32", "I": "i64"}
    params, results = wasi.SIGNATURES[name].split(":")
    text = "".join(f" (param {types[c]})" for c in params)
    return text + "".join(f" (result {types[c]})" for c in results), len(params)


def forwarding_module() -> str:
    """WAT that imports every preview1 function and exports a Wasm function calling it."""
    lines = ["(module"]
    for name in wasi.SIGNATURES:
        sig, _ = wat_signature(name)
        lines.append(f'  (import "wasi_snapshot_preview1" "{name}" (func ${name}{sig}))')
    lines.append('  (memory (export "memory") 1)')
    for name in wasi.SIGNATURES:
        sig, arity = wat_signature(name)
        args = " ".join(f"(local.get {i})" for i in range(arity))
        lines.append(f'  (func (export "{name}"){sig} (call ${name} {args}))')
    lines.append(")")
    return "\n".join(lines)


FORWARDING = forwarding_module()


class Process:
    """One instantiated forwarding module with its WASI state and captured stdio."""

    def __init__(self, args=("prog",), env=None, stdin=b"", preopens=(), context=wasi.Wasi):
        self.stdout, self.stderr = io.BytesIO(), io.BytesIO()
        stdin = io.BytesIO(stdin) if isinstance(stdin, bytes) else stdin
        self.wasi = context(list(args), env or {}, stdin=stdin, stdout=self.stdout,
                            stderr=self.stderr, preopens=list(preopens))
        store = Store()
        self.instance = store.instantiate(load_bytes(FORWARDING.encode(), text=True),
                                          self.wasi.imports(store))
        self.wasi.bind(self.instance)
        self.memory = self.instance.exports["memory"]

    def call(self, name: str, *args: int) -> int:
        return self.instance.invoke(name, list(args))[0]

    def u32(self, addr: int) -> int:
        return struct.unpack("<I", self.memory.read(addr, 4))[0]

    def u64(self, addr: int) -> int:
        return struct.unpack("<Q", self.memory.read(addr, 8))[0]

    def iovecs(self, addr: int, regions: list[tuple[int, int]]) -> None:
        self.memory.write(addr, b"".join(struct.pack("<II", b, n) for b, n in regions))

    def text(self, addr: int, data: bytes) -> tuple[int, int]:
        """Put `data` at `addr`; (addr, len) as a path argument."""
        self.memory.write(addr, data)
        return addr, len(data)

    def open(self, dirfd: int, path: bytes, oflags=0, rights=wasi.RIGHT_FD_READ,
             follow=True) -> int:
        """path_open; the new fd, or the errno negated."""
        errno = self.call("path_open", dirfd, int(follow), *self.text(1000, path), oflags,
                          rights, rights, 0, 8)
        return self.u32(8) if errno == wasi.ESUCCESS else -errno


# -- stdio, arguments, environment, clocks ---------------------------------------------

def test_fd_write_gathers_iovecs_to_stdout_and_stderr():
    p = Process()
    p.memory.write(100, b"hello, wasi\n")
    p.iovecs(0, [(100, 7), (107, 5)])
    assert p.call("fd_write", 1, 0, 2, 200) == wasi.ESUCCESS
    assert p.u32(200) == 12
    assert p.stdout.getvalue() == b"hello, wasi\n"
    assert p.call("fd_write", 2, 0, 1, 200) == wasi.ESUCCESS
    assert p.stderr.getvalue() == b"hello, "


def test_fd_write_to_bad_fds():
    p = Process()
    assert p.call("fd_write", 0, 0, 0, 200) == wasi.EBADF
    assert p.call("fd_write", 5, 0, 0, 200) == wasi.EBADF
    assert p.call("fd_close", 1) == wasi.ESUCCESS
    assert p.call("fd_write", 1, 0, 0, 200) == wasi.EBADF
    assert p.call("fd_close", 1) == wasi.EBADF


def test_a_pointer_outside_memory_or_misaligned_traps():
    p = Process()
    p.iovecs(0, [(65530, 100)])
    with pytest.raises(Trap, match="outside linear memory"):
        p.call("fd_write", 1, 0, 1, 200)
    with pytest.raises(Trap, match="outside linear memory"):
        p.call("args_sizes_get", 65535, 0)
    with pytest.raises(Trap, match="misaligned"):
        p.call("clock_time_get", wasi.CLOCK_MONOTONIC, 0, 4)  # a u64 result at 4


def test_enum_and_flag_arguments_out_of_range_trap():
    p = Process()
    with pytest.raises(Trap, match="invalid clockid"):
        p.call("clock_time_get", 4, 0, 8)
    with pytest.raises(Trap, match="invalid whence"):
        p.call("fd_seek", 1, 0, 3, 8)
    with pytest.raises(Trap, match="invalid oflags"):
        p.call("path_open", 3, 0, 0, 1, 16, 0, 0, 0, 8)
    with pytest.raises(Trap, match="invalid exit status"):
        p.call("proc_exit", 126)


def test_fd_read_scatters_stdin_until_eof():
    p = Process(stdin=b"abcdefgh")
    p.iovecs(0, [(100, 3), (200, 10)])
    assert p.call("fd_read", 0, 0, 2, 16) == wasi.ESUCCESS
    assert p.u32(16) == 8
    assert p.memory.read(100, 3) == b"abc" and p.memory.read(200, 5) == b"defgh"
    assert p.call("fd_read", 0, 0, 2, 16) == wasi.ESUCCESS
    assert p.u32(16) == 0
    assert p.call("fd_read", 1, 0, 2, 16) == wasi.EBADF


def test_args_and_environ_layout():
    p = Process(args=["prog", "a", "two words"], env={"GREETING": "hi", "X": ""})
    assert p.call("args_sizes_get", 0, 4) == wasi.ESUCCESS
    assert (p.u32(0), p.u32(4)) == (3, len("prog\0a\0two words\0"))
    assert p.call("args_get", 100, 200) == wasi.ESUCCESS
    assert [p.u32(100 + 4 * i) for i in range(3)] == [200, 205, 207]
    assert p.memory.read(200, 17) == b"prog\0a\0two words\0"
    assert p.call("environ_sizes_get", 0, 4) == wasi.ESUCCESS
    assert (p.u32(0), p.u32(4)) == (2, len("GREETING=hi\0X=\0"))
    assert p.call("environ_get", 300, 400) == wasi.ESUCCESS
    assert [p.u32(300), p.u32(304)] == [400, 412]
    assert p.memory.read(400, 15) == b"GREETING=hi\0X=\0"


def test_clocks():
    p = Process()
    before = time.time_ns()
    assert p.call("clock_time_get", wasi.CLOCK_REALTIME, 0, 8) == wasi.ESUCCESS
    assert abs(p.u64(8) - before) < 10**9
    assert p.call("clock_time_get", wasi.CLOCK_MONOTONIC, 0, 8) == wasi.ESUCCESS
    first = p.u64(8)
    assert p.call("clock_time_get", wasi.CLOCK_MONOTONIC, 0, 8) == wasi.ESUCCESS
    assert p.u64(8) >= first
    assert p.call("clock_res_get", wasi.CLOCK_MONOTONIC, 8) == wasi.ESUCCESS
    assert p.u64(8) > 0
    # Wasmtime offers no CPU-time clocks.
    assert p.call("clock_time_get", wasi.CLOCK_PROCESS_CPUTIME, 0, 8) == wasi.EBADF
    assert p.call("clock_res_get", wasi.CLOCK_THREAD_CPUTIME, 8) == wasi.EBADF


def test_random_get_fills_the_buffer():
    p = Process()
    assert p.call("random_get", 100, 32) == wasi.ESUCCESS
    assert p.call("random_get", 200, 32) == wasi.ESUCCESS
    assert p.memory.read(100, 32) != p.memory.read(200, 32)


def test_fdstat_of_stdio_that_is_not_a_terminal():
    p = Process()
    assert p.call("fd_fdstat_get", 1, 8) == wasi.ESUCCESS
    assert struct.unpack("<BxHxxxxQQ", p.memory.read(8, 24)) == \
        (wasi.FILETYPE_UNKNOWN, 0, wasi.RIGHT_FD_WRITE, wasi.RIGHT_FD_WRITE)
    assert p.call("fd_fdstat_get", 0, 8) == wasi.ESUCCESS
    assert p.u64(16) == wasi.RIGHT_FD_READ
    assert p.call("fd_fdstat_get", 7, 8) == wasi.EBADF


def test_stdio_cannot_seek_and_sockets_do_not_exist():
    p = Process()
    assert p.call("fd_seek", 1, 0, 0, 8) == wasi.ESPIPE
    assert p.call("fd_seek", 9, 0, 0, 8) == wasi.EBADF
    assert p.call("fd_prestat_get", 1, 8) == wasi.EBADF
    assert p.call("fd_prestat_dir_name", 1, 8, 4) == wasi.ENOTDIR
    assert p.call("path_open", 1, 0, 0, 0, 0, 0, 0, 0, 8) == wasi.EBADF
    assert p.call("sock_shutdown", 1, 0) == wasi.ENOTSOCK
    assert p.call("sock_shutdown", 9, 0) == wasi.EBADF
    assert p.call("sched_yield") == wasi.ESUCCESS


def test_proc_exit_unwinds_with_the_code():
    p = Process()
    with pytest.raises(wasi.ProcExit) as info:
        p.instance.invoke("proc_exit", [42])
    assert info.value.code == 42


def test_bind_needs_an_exported_memory():
    store = Store()
    w = wasi.Wasi(["prog"], {})
    module = load_bytes(b'(module (import "wasi_snapshot_preview1" "sched_yield" '
                        b'(func (result i32))))', text=True)
    instance = store.instantiate(module, w.imports(store))
    with pytest.raises(LinkError):
        w.bind(instance)


# -- poll_oneoff -----------------------------------------------------------------------

def subscription(userdata: int, tag: int, target: int, timeout: int = 0, flags: int = 0) -> bytes:
    return struct.pack("<QB7xIxxxxQQH6x", userdata, tag, target, timeout, 0, flags)


def events(p: Process, out: int, count: int) -> list[tuple[int, int, int]]:
    """(userdata, error, type) of the events poll_oneoff wrote."""
    return [struct.unpack_from("<QHB", p.memory.read(out + 32 * i, 11)) for i in range(count)]


def test_poll_oneoff_waits_for_the_earliest_clock():
    p = Process()
    p.memory.write(0, subscription(1, wasi.EVENTTYPE_CLOCK, wasi.CLOCK_MONOTONIC, 5 * 10**9)
                   + subscription(2, wasi.EVENTTYPE_CLOCK, wasi.CLOCK_MONOTONIC, 10**6))
    start = time.monotonic()
    assert p.call("poll_oneoff", 0, 200, 2, 400) == wasi.ESUCCESS
    assert time.monotonic() - start < 2
    assert p.u32(400) == 1 and events(p, 200, 1) == [(2, 0, wasi.EVENTTYPE_CLOCK)]
    assert p.call("poll_oneoff", 0, 200, 0, 400) == wasi.EINVAL


def test_poll_oneoff_sees_stdin_readiness():
    read_end, write_end = os.pipe()
    with open(read_end, "rb", buffering=0) as stdin:
        p = Process(stdin=stdin)
        p.memory.write(0, subscription(7, wasi.EVENTTYPE_FD_READ, 0)
                       + subscription(8, wasi.EVENTTYPE_CLOCK, wasi.CLOCK_MONOTONIC, 10**7))
        assert p.call("poll_oneoff", 0, 200, 2, 400) == wasi.ESUCCESS
        assert events(p, 200, p.u32(400)) == [(8, 0, wasi.EVENTTYPE_CLOCK)]  # nothing to read
        os.write(write_end, b"x")
        assert p.call("poll_oneoff", 0, 200, 2, 400) == wasi.ESUCCESS
        assert events(p, 200, p.u32(400)) == [(7, 0, wasi.EVENTTYPE_FD_READ)]
        p.iovecs(0, [(100, 16)])
        assert p.call("fd_read", 0, 0, 1, 8) == wasi.ESUCCESS
        assert (p.u32(8), p.memory.read(100, 1)) == (1, b"x")
    os.close(write_end)


# -- files and directories beneath a preopen -------------------------------------------

@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/sandbox (the preopen) with a file, a subdirectory and symlinks of every kind
    that must not lead out, and root/outside/secret.txt that nothing may reach."""
    sandbox, outside = tmp_path / "sandbox", tmp_path / "outside"
    (sandbox / "sub").mkdir(parents=True)
    outside.mkdir()
    (sandbox / "seed.txt").write_text("seed\n")
    (sandbox / "sub" / "inner.txt").write_text("inner\n")
    (outside / "secret.txt").write_text("secret\n")
    links = {"abs": str(outside / "secret.txt"), "up": "../outside/secret.txt",
             "chain": "up", "dir_up": "../outside", "back_in": "../sandbox/seed.txt",
             "loop_a": "loop_b", "loop_b": "loop_a", "in": "sub/inner.txt", "dir_in": "sub",
             "sub/up2": "../../outside/secret.txt", "sub/seed": "../seed.txt"}
    for name, target in links.items():
        (sandbox / name).symlink_to(target)
    return tmp_path


ESCAPES = ["..", "../outside/secret.txt", "sub/../../outside/secret.txt", "/etc/passwd",
           "abs", "up", "chain", "dir_up/secret.txt", "back_in", "sub/up2", "sub/../.."]
INSIDE = {"seed.txt": b"seed\n", "in": b"inner\n", "sub/seed": b"seed\n",
          "dir_in/inner.txt": b"inner\n", "sub/../seed.txt": b"seed\n",
          "./sub//inner.txt": b"inner\n"}


@pytest.mark.parametrize("path", ESCAPES)
def test_no_path_leads_out_of_the_base(tree, path):
    base = os.open(tree / "sandbox", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for attempt in (lambda: open_beneath(base, path.encode(), os.O_RDONLY, True),
                        lambda: stat_beneath(base, path.encode(), True)):
            with pytest.raises(wasi.WasiError) as info:
                attempt()
            assert info.value.errno == wasi.EPERM
    finally:
        os.close(base)


@pytest.mark.parametrize("path, content", INSIDE.items())
def test_paths_that_stay_inside_resolve(tree, path, content):
    base = os.open(tree / "sandbox", os.O_RDONLY | os.O_DIRECTORY)
    try:
        fd = open_beneath(base, path.encode(), os.O_RDONLY, True)
        assert os.read(fd, 100) == content
        os.close(fd)
    finally:
        os.close(base)


def test_symlink_loops_and_final_links_without_follow(tree):
    p = Process(preopens=[(str(tree / "sandbox"), "sandbox")])
    assert p.open(3, b"loop_a") == -wasi.ELOOP
    assert p.open(3, b"in", follow=False) == -wasi.ELOOP
    assert p.open(3, b"up", follow=False) == -wasi.ELOOP  # not followed, so not an escape
    assert p.call("path_filestat_get", 3, 0, *p.text(1000, b"up"), 64) == wasi.ESUCCESS
    assert p.memory.read(64 + 16, 1)[0] == wasi.FILETYPE_SYMBOLIC_LINK
    assert p.call("path_filestat_get", 3, 1, *p.text(1000, b"up"), 64) == wasi.EPERM


def test_mutations_cannot_reach_outside(tree):
    p = Process(preopens=[(str(tree / "sandbox"), "sandbox")])
    outside = sorted((tree / "outside").iterdir())
    assert p.call("path_create_directory", 3, *p.text(1000, b"dir_up/new")) == wasi.EPERM
    assert p.call("path_unlink_file", 3, *p.text(1000, b"../outside/secret.txt")) == wasi.EPERM
    assert p.call("path_remove_directory", 3, *p.text(1000, b"dir_up")) == wasi.ENOTDIR
    assert p.call("path_rename", 3, *p.text(1000, b"seed.txt"), 3,
                  *p.text(2000, b"dir_up/stolen")) == wasi.EPERM
    assert p.call("path_symlink", *p.text(1000, b"/etc"), 3, *p.text(2000, b"x")) == wasi.EPERM
    assert p.open(3, b"dir_up/new.txt", oflags=wasi.OFLAG_CREAT,
                  rights=wasi.RIGHT_FD_WRITE) == -wasi.EPERM
    assert p.open(3, b"up", oflags=wasi.OFLAG_CREAT | wasi.OFLAG_TRUNC,
                  rights=wasi.RIGHT_FD_WRITE) == -wasi.EPERM
    assert sorted((tree / "outside").iterdir()) == outside
    assert (tree / "outside" / "secret.txt").read_text() == "secret\n"


def test_files_read_write_seek_and_stat(tree):
    p = Process(preopens=[(str(tree / "sandbox"), "sandbox")])
    rights = wasi.RIGHT_FD_READ | wasi.RIGHT_FD_WRITE
    fd = p.open(3, b"new.txt", oflags=wasi.OFLAG_CREAT | wasi.OFLAG_EXCL, rights=rights)
    assert fd == 4
    p.memory.write(100, b"0123456789")
    p.iovecs(0, [(100, 4), (104, 6)])
    assert p.call("fd_write", fd, 0, 2, 8) == wasi.ESUCCESS and p.u32(8) == 10
    assert p.call("fd_seek", fd, (-3) & (2**64 - 1), wasi.WHENCE_END, 16) == wasi.ESUCCESS
    assert p.u64(16) == 7
    p.iovecs(0, [(200, 2), (300, 8)])
    assert p.call("fd_read", fd, 0, 2, 8) == wasi.ESUCCESS and p.u32(8) == 3
    assert p.memory.read(200, 2) == b"78" and p.memory.read(300, 1) == b"9"
    assert p.call("fd_pread", fd, 0, 1, 1, 8) == wasi.ESUCCESS
    assert p.memory.read(200, 2) == b"12"
    assert p.call("fd_tell", fd, 16) == wasi.ESUCCESS and p.u64(16) == 10
    assert p.call("fd_filestat_get", fd, 64) == wasi.ESUCCESS
    assert struct.unpack_from("<QQB7xQQ", p.memory.read(64, 40))[2:] == \
        (wasi.FILETYPE_REGULAR_FILE, 1, 10)
    assert (tree / "sandbox" / "new.txt").read_bytes() == b"0123456789"
    assert p.call("fd_readdir", fd, 0, 100, 0, 8) == wasi.EBADF
    assert p.call("fd_close", fd) == wasi.ESUCCESS


def test_descriptor_numbers_reuse_the_highest_freed_first(tree):
    p = Process(preopens=[(str(tree / "sandbox"), "sandbox")])
    a, b, c = (p.open(3, b"seed.txt") for _ in range(3))
    assert (a, b, c) == (4, 5, 6)
    assert p.call("fd_close", a) == p.call("fd_close", b) == wasi.ESUCCESS
    assert [p.open(3, b"seed.txt") for _ in range(3)] == [5, 4, 7]
    assert p.call("fd_renumber", 7, 9) == wasi.EBADF  # the target must be open
    assert p.call("fd_renumber", 7, c) == wasi.ESUCCESS
    assert p.open(3, b"seed.txt") == 7


def test_fd_readdir_lists_dot_entries_first_and_resumes_at_a_cookie(tree):
    p = Process(preopens=[(str(tree / "sandbox"), "sandbox")])
    fd = p.open(3, b"sub", oflags=wasi.OFLAG_DIRECTORY)
    assert p.call("fd_readdir", fd, 0, 4096, 0, 8000) == wasi.ESUCCESS
    data, entries, position = p.memory.read(0, p.u32(8000)), [], 0
    while position < len(data):
        d_next, _, namlen, d_type = struct.unpack_from("<QQIB", data, position)
        entries.append((d_next, data[position + 24:position + 24 + namlen], d_type))
        position += 24 + namlen
    assert entries[:2] == [(1, b".", wasi.FILETYPE_DIRECTORY), (2, b"..", wasi.FILETYPE_DIRECTORY)]
    assert {name: kind for _, name, kind in entries[2:]} == {
        b"inner.txt": wasi.FILETYPE_REGULAR_FILE, b"seed": wasi.FILETYPE_SYMBOLIC_LINK,
        b"up2": wasi.FILETYPE_SYMBOLIC_LINK}
    assert [e[0] for e in entries] == [1, 2, 3, 4, 5]
    third = entries[2]
    assert p.call("fd_readdir", fd, 0, 24 + 2, 2, 8000) == wasi.ESUCCESS  # truncated
    assert p.u32(8000) == 26 and p.memory.read(24, 2) == third[1][:2]
    assert p.call("fd_readdir", fd, 0, 4096, 5, 8000) == wasi.ESUCCESS and p.u32(8000) == 0


def test_preopens_describe_themselves(tree):
    p = Process(preopens=[(str(tree / "sandbox"), "/sandbox")])
    assert p.call("fd_prestat_get", 3, 8) == wasi.ESUCCESS
    assert struct.unpack("<B3xI", p.memory.read(8, 8)) == (0, 8)
    assert p.call("fd_prestat_dir_name", 3, 100, 7) == wasi.ENAMETOOLONG
    assert p.call("fd_prestat_dir_name", 3, 100, 8) == wasi.ESUCCESS
    assert p.memory.read(100, 8) == b"/sandbox"
    assert p.call("fd_prestat_get", 4, 8) == wasi.EBADF


def test_close_closes_every_host_fd(tree):
    before = set(os.listdir("/proc/self/fd"))
    w = wasi.Wasi(["prog"], {}, preopens=[(str(tree / "sandbox"), "a"), (str(tree), "b")])
    assert len(set(os.listdir("/proc/self/fd")) - before) == 2
    w.close()
    assert set(os.listdir("/proc/self/fd")) == before
    with pytest.raises(FileNotFoundError):
        wasi.Wasi(["prog"], {}, preopens=[(str(tree / "sandbox"), "a"), (str(tree / "no"), "b")])
    assert set(os.listdir("/proc/self/fd")) == before


# -- the native fast paths of fd_read, fd_write and fd_seek -------------------------------

class CountingWasi(wasi.Wasi):
    """A WASI context whose Python fd_read, fd_write and fd_seek note their calls: a call
    the native fast path completes never reaches them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.python_calls = []

    def fd_read(self, *args):
        self.python_calls.append("fd_read")
        return super().fd_read(*args)

    def fd_write(self, *args):
        self.python_calls.append("fd_write")
        return super().fd_write(*args)

    def fd_seek(self, *args):
        self.python_calls.append("fd_seek")
        return super().fd_seek(*args)


class CountingProcess(Process):
    def __init__(self, preopens):
        super().__init__(preopens=preopens, context=CountingWasi)
        self.python_calls = self.wasi.python_calls


def test_file_calls_stay_native_and_fall_back_to_python_exactly(tree):
    p = CountingProcess(preopens=[(str(tree / "sandbox"), "sandbox")])
    rights = wasi.RIGHT_FD_READ | wasi.RIGHT_FD_WRITE
    fd = p.open(3, b"fast.txt", oflags=wasi.OFLAG_CREAT, rights=rights)
    p.memory.write(100, b"abcdefghij")
    p.iovecs(0, [(100, 3), (103, 3), (106, 4)])
    assert p.call("fd_write", fd, 0, 3, 8) == wasi.ESUCCESS and p.u32(8) == 10
    assert p.call("fd_seek", fd, 2, wasi.WHENCE_SET, 16) == wasi.ESUCCESS and p.u64(16) == 2
    p.iovecs(0, [(200, 1)] * 4)
    assert p.call("fd_read", fd, 0, 4, 8) == wasi.ESUCCESS and p.u32(8) == 4
    assert p.memory.read(200, 1) == b"f" and p.python_calls == []  # all native, last byte wins

    # What the native path leaves to Python: more than 4 pieces, no pieces, a failing
    # system call, a closed descriptor, stdio, bad pointers (traps), a bad whence (trap).
    p.iovecs(0, [(300 + i, 1) for i in range(5)])
    assert p.call("fd_read", fd, 0, 5, 8) == wasi.ESUCCESS and p.u32(8) == 4
    assert p.memory.read(300, 4) == b"ghij"
    assert p.call("fd_read", fd, 0, 0, 8) == wasi.ESUCCESS and p.u32(8) == 0
    assert p.call("fd_seek", fd, (-20) & (2**64 - 1), wasi.WHENCE_CUR, 16) == wasi.EINVAL
    with pytest.raises(Trap, match="misaligned"):
        p.call("fd_seek", fd, 0, wasi.WHENCE_SET, 20)
    with pytest.raises(Trap, match="invalid whence"):
        p.call("fd_seek", fd, 0, 3, 16)
    p.iovecs(0, [(65530, 10)])
    with pytest.raises(Trap, match="outside linear memory"):
        p.call("fd_write", fd, 0, 1, 8)
    p.memory.write(500, b"XY")
    p.iovecs(0, [(500, 2)])
    with pytest.raises(Trap, match="misaligned"):  # after writing, at 0 (the trapping seek's)
        p.call("fd_write", fd, 0, 1, 10)
    assert p.call("fd_write", 1, 0, 1, 8) == wasi.ESUCCESS and p.stdout.getvalue() == b"XY"
    assert p.python_calls == ["fd_read", "fd_read", "fd_seek", "fd_seek", "fd_seek", "fd_write", "fd_write",
                              "fd_write"]

    # The table the native path reads follows closes and renumbering.
    other = p.open(3, b"seed.txt", rights=rights)
    assert p.call("fd_renumber", other, fd) == wasi.ESUCCESS  # fd now names seed.txt
    p.python_calls.clear()
    p.iovecs(0, [(400, 4)])
    assert p.call("fd_read", fd, 0, 1, 8) == wasi.ESUCCESS and p.memory.read(400, p.u32(8)) == b"seed"[:p.u32(8)]
    assert p.python_calls == []
    assert p.call("fd_read", other, 0, 1, 8) == wasi.EBADF and p.python_calls == ["fd_read"]
    assert p.call("fd_close", fd) == wasi.ESUCCESS
    assert p.call("fd_seek", fd, 0, wasi.WHENCE_SET, 16) == wasi.EBADF
    assert (tree / "sandbox" / "fast.txt").read_bytes() == b"XYcdefghij"
