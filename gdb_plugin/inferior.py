"""The debuggee as gdb sees it (a live process, an attached one or a core file): bounded
memory reads, and the debug root found through the JIT shim's `stackstitch_debug_root`.
Only reads: registers are never written, so everything works on core files.
"""

from __future__ import annotations

import os
import struct

import gdb

from .view import ProcessView, ReadFailed

MAX_READ = 64 << 20  # larger than any table the debug root describes
USER_SPACE_END = 1 << 47
PAGE = 4096
JIT_SHIM = "jit-interface-"  # the file name of stackstitch's JIT interface (unwind/jitshim.py)


def read(address: int, size: int) -> bytes:
    """`size` bytes at `address`. If the range runs into unreadable memory, the readable
    part up to the first page boundary (a NUL-terminated string may end before it)."""
    if not 0 <= size <= MAX_READ:
        raise ReadFailed(f"refusing to read {size} bytes at 0x{address:x}")
    if not 0 < address < USER_SPACE_END - size:
        raise ReadFailed(f"0x{address:x} is not a user-space address")
    inferior = gdb.selected_inferior()
    try:
        return inferior.read_memory(address, size).tobytes()
    except gdb.error:  # gdb.MemoryError is a gdb.error
        pass
    first_part = min(size, PAGE - address % PAGE)
    if first_part < size:
        try:
            return inferior.read_memory(address, first_part).tobytes()
        except gdb.error:
            pass
    raise ReadFailed(f"cannot read {size} bytes at 0x{address:x}")


def read_word(address: int) -> int:
    return struct.unpack("<Q", read(address, 8))[0]


def debug_root_address() -> int:
    if gdb.selected_thread() is None:
        raise ReadFailed("no process or core file is being debugged")
    try:
        symbol = int(gdb.parse_and_eval("(unsigned long) &stackstitch_debug_root"))
    except gdb.error:
        raise ReadFailed(missing_root_cause()) from None
    root, = struct.unpack("<Q", read(symbol, 8))
    if not root:
        raise ReadFailed("the engine has not published its debug root yet (no store exists)")
    return root


def missing_root_cause() -> str:
    """Why the JIT shim's `stackstitch_debug_root` is not found, as far as gdb can tell."""
    executable = gdb.current_progspace().filename
    if executable is None:
        return ("gdb has no executable file, so it cannot find the process's libraries: give it "
                "the Python interpreter that ran `stackstitch run` itself, not a shell shim "
                "such as pyenv's `python3` (`stackstitch gdb --core CORE` finds it in the core)")
    mapped = mapped_files()
    if mapped and os.path.realpath(mapped[0]) != os.path.realpath(executable):
        return (f"gdb was given {executable}, but the process ran {mapped[0]}: give gdb that "
                "file (`stackstitch gdb --core CORE` finds it in the core)")
    if not any(JIT_SHIM in path for path in mapped + [o.filename or "" for o in gdb.objfiles()]):
        return ("no stackstitch_debug_root symbol: the process has not loaded stackstitch's JIT "
                "interface (not a `stackstitch run` process, run with --no-gdb-jit, or stopped "
                "before the engine loaded)")
    return "no stackstitch_debug_root symbol in stackstitch's JIT interface library"


def mapped_files() -> list[str]:
    """The files the process (or core) maps, its executable first, as `info proc mappings`
    lists them; none if gdb cannot say."""
    try:
        text = gdb.execute("info proc mappings", to_string=True)
    except gdb.error:
        return []
    return [line.split()[-1] for line in text.splitlines()
            if line.strip().startswith("0x") and line.split()[-1].startswith("/")]


_cached: tuple[tuple, ProcessView] | None = None


def process_view() -> ProcessView:
    """The debug root's view of the selected process, read once per stop: kept until the
    process runs or its memory, files or registers change (`forget`)."""
    global _cached
    inferior = gdb.selected_inferior()
    key = (inferior.num, inferior.pid)
    if _cached is None or _cached[0] != key:
        _cached = (key, ProcessView(read, debug_root_address()))
    return _cached[1]


def forget(*_event):
    global _cached
    _cached = None


def register():
    for event in ("cont", "stop", "exited", "new_objfile", "clear_objfiles", "inferior_call",
                  "memory_changed", "register_changed", "new_inferior"):
        getattr(gdb.events, event).connect(forget)
