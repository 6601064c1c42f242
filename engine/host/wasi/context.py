"""The WASI state of one process, and the calls that are not about descriptors:
arguments, environment, clocks, randomness, exit, and the socket calls (no sockets)."""

from __future__ import annotations

import ctypes
import os
import time

from ... import layout as L
from ...frontend.types import FuncType
from ...runtime.store import HostExit, LinkError, Trap
from .abi import (CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_THREAD_CPUTIME, EBADF, ENOTSOCK,
                  ENOTSUP, ESUCCESS, MODULE, SIGNAL_LAST, SIGNATURES, WasiError,
                  wasi_errno)
from .descriptors import DescriptorTable, Directory, Stream
from .fdcalls import FdCalls, invalid_argument
from .memory import GuestMemory
from .pathcalls import PathCalls
from .poll import PollCalls

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import BinaryIO, Callable

# clock id -> (reading in ns, name for time.get_clock_info)
_CLOCKS = {CLOCK_REALTIME: (time.time_ns, "time"),
           CLOCK_MONOTONIC: (time.monotonic_ns, "monotonic")}


class ProcExit(HostExit):
    """`proc_exit(code)` was called: unwinds out of the Wasm call to the embedder."""

    def __init__(self, code: int):
        super().__init__(f"proc_exit({code})")
        self.code = code


def _functype(signature: str) -> FuncType:
    names = {"i": "i32", "I": "i64"}
    params, results = signature.split(":")
    return FuncType(tuple(names[c] for c in params), tuple(names[c] for c in results))


def _errno_on_failure(name: str, call: Callable, arity: int) -> Callable:
    """The function Wasm calls for an import: `call`, with an OSError or WasiError it
    raises returned as the errno. Its parameters are written out for the import's arity:
    passing them on through `*args` would cost about 200 ns a call, as much as the rest
    of a small WASI call."""
    params = ", ".join(f"a{i}" for i in range(arity))
    source = (f"def {name}({params}):\n"
              f"    try:\n        return call({params})\n"
              "    except OSError as error:\n        return wasi_errno(error)\n"
              "    except WasiError as error:\n        return error.errno\n")
    namespace = {"call": call, "wasi_errno": wasi_errno, "WasiError": WasiError}
    exec(source, namespace)
    return namespace[name]


class Wasi(FdCalls, PathCalls, PollCalls):
    """Arguments, environment, stdio streams and preopened directories of one process.

    Streams are binary file objects; None means the process's own (see
    descriptors.Stream). `preopens` are (host directory, guest name) pairs, opened here:
    an OSError means one cannot be opened. `close()` closes every descriptor's host fd.
    """

    def __init__(self, args: list[str], env: dict[str, str],
                 stdin: BinaryIO | None = None, stdout: BinaryIO | None = None,
                 stderr: BinaryIO | None = None, preopens: list[tuple[str, str]] = ()):
        self.args = [a.encode() for a in args]
        self.env = [f"{k}={v}".encode() for k, v in env.items()]
        # (count, bytes with the NULs) for the *_sizes_get calls
        self._args_sizes = (len(self.args), sum(map(len, self.args)) + len(self.args))
        self._env_sizes = (len(self.env), sum(map(len, self.env)) + len(self.env))
        self.fds = DescriptorTable()
        for number, stream in enumerate((stdin, stdout, stderr)):
            self.fds.add(Stream(number, stream))
        try:
            for host, guest in preopens:
                host_fd = os.open(host, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                self.fds.add(Directory(host_fd, preopen=guest))
        except OSError:
            self.close()
            raise
        self.mem: GuestMemory | None = None
        self._fast_blocks: list = []  # host blocks of the native fast paths (imports)

    def imports(self, store) -> dict:
        """Host functions for every preview1 import, keyed (module, name). fd_read, fd_write
        and fd_seek start in native code (`store.stubs.wasi_fast`), which reads this
        context's descriptor table and, once `bind` has set it, its memory."""
        imports = {}
        for name, signature in SIGNATURES.items():
            functype = _functype(signature)
            call = _errno_on_failure(name, getattr(self, name), len(functype.params))
            fast_path = store.stubs.wasi_fast.get(name)
            func = store.host_function(functype, call, name, fast_path=fast_path)
            if fast_path is not None:
                func.host_block[L.HB_FAST_FDS // 8] = ctypes.addressof(self.fds.native)
                func.host_block[L.HB_FAST_NFDS // 8] = self.fds.NATIVE_FDS
                self._fast_blocks.append(func.host_block)
            imports[(MODULE, name)] = func
        return imports

    def bind(self, instance) -> None:
        """Use the instance's exported `memory` for all pointer arguments."""
        memory = instance.exports.get("memory")
        if memory is None or not hasattr(memory, "base"):
            raise LinkError("WASI module does not export a memory named \"memory\"")
        self.mem = GuestMemory(memory)
        for block in self._fast_blocks:
            block[L.HB_FAST_MEMORY // 8] = memory.record_address

    def close(self) -> None:
        for fd in list(self.fds):
            self.fds.remove(fd).close()

    # -- arguments and environment -----------------------------------------------------

    def _write_strings(self, strings: list[bytes], ptrs: int, buf: int) -> int:
        """NUL-terminated strings laid out at `buf`, their addresses at `ptrs`."""
        address = buf
        for index, string in enumerate(strings):
            self.mem.u32(ptrs + 4 * index, address)
            address += len(string) + 1
        self.mem.write(buf, b"".join(string + b"\0" for string in strings))
        return ESUCCESS

    def args_get(self, argv: int, argv_buf: int) -> int:
        return self._write_strings(self.args, argv, argv_buf)

    def args_sizes_get(self, count_ptr: int, size_ptr: int) -> int:
        count, size = self._args_sizes
        self.mem.u32(count_ptr, count)
        self.mem.u32(size_ptr, size)
        return ESUCCESS

    def environ_get(self, environ: int, environ_buf: int) -> int:
        return self._write_strings(self.env, environ, environ_buf)

    def environ_sizes_get(self, count_ptr: int, size_ptr: int) -> int:
        count, size = self._env_sizes
        self.mem.u32(count_ptr, count)
        self.mem.u32(size_ptr, size)
        return ESUCCESS

    # -- clocks, randomness, process ---------------------------------------------------

    def clock_res_get(self, clock_id: int, result_ptr: int) -> int:
        if clock_id > CLOCK_THREAD_CPUTIME:
            raise invalid_argument("clockid")
        if clock_id not in _CLOCKS:
            return EBADF  # Wasmtime has no CPU-time clocks
        resolution = time.get_clock_info(_CLOCKS[clock_id][1]).resolution
        self.mem.u64(result_ptr, max(1, round(resolution * 1e9)))
        return ESUCCESS

    def clock_time_get(self, clock_id: int, precision: int, result_ptr: int) -> int:
        clock = _CLOCKS.get(clock_id)
        if clock is None:
            if clock_id > CLOCK_THREAD_CPUTIME:
                raise invalid_argument("clockid")
            return EBADF
        self.mem.u64(result_ptr, clock[0]())
        return ESUCCESS

    def random_get(self, buf: int, length: int) -> int:
        self.mem.write(buf, os.urandom(length))
        return ESUCCESS

    def proc_exit(self, code: int) -> None:
        if code >= 126:  # the shell's own statuses (126-255) are not the program's to use
            raise Trap("exit with invalid exit status outside of [0..126)")
        raise ProcExit(code)

    def proc_raise(self, signal: int) -> int:
        if signal > SIGNAL_LAST:
            raise invalid_argument("signal")
        return ENOTSUP

    def sched_yield(self) -> int:
        return ESUCCESS

    # -- sockets: there are none, so any open fd is not one ----------------------------

    def _not_a_socket(self, fd: int) -> int:
        return ENOTSOCK if fd in self.fds else EBADF

    def sock_accept(self, fd: int, flags: int, result_fd_ptr: int) -> int:
        return self._not_a_socket(fd)

    def sock_recv(self, fd: int, ri_data: int, ri_data_len: int, ri_flags: int,
                  ro_datalen_ptr: int, ro_flags_ptr: int) -> int:
        return self._not_a_socket(fd)

    def sock_send(self, fd: int, si_data: int, si_data_len: int, si_flags: int,
                  so_datalen_ptr: int) -> int:
        return self._not_a_socket(fd)

    def sock_shutdown(self, fd: int, how: int) -> int:
        return self._not_a_socket(fd)
