"""The GDB JIT interface: registering one ELF object per code region with gdb and lldb.

Each object goes into a `jit_code_entry` of the descriptor's doubly linked list in native
memory, then `__jit_debug_register_code` is called; a debugger that has a breakpoint on it
reads the entry the descriptor names. One object per module, never per function: gdb slows
down badly past about a thousand objects.
"""

from __future__ import annotations

import ctypes
import functools
import struct
import sys
import threading
from array import array
from pathlib import Path

from stackstitch.engine.codecache import source_fingerprint

from .elf import jit_object, module_symbols, stub_symbols
from .jitshim import JitCodeEntry, JitInterface, shim_path
from .relocation import PROBE, relocate, relocations

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Callable

JIT_NOACTION, JIT_REGISTER_FN, JIT_UNREGISTER_FN = 0, 1, 2

_interface: JitInterface | None = None
_lock = threading.Lock()


def jit_interface() -> JitInterface:
    """The process's one shim, loaded on first use (several descriptors would only make
    the debuggers read the same process twice)."""
    global _interface
    with _lock:
        if _interface is None:
            _interface = JitInterface(shim_path())
        return _interface


class Registration:
    """One registered object; keeps the entry and the image alive until unregistered."""

    def __init__(self, image: bytes):
        self.image = ctypes.create_string_buffer(image, len(image))
        self.entry = JitCodeEntry(symfile_addr=ctypes.addressof(self.image), symfile_size=len(image))
        self.registered = False


def register(image: bytes) -> Registration:
    """Link a new entry at the head of the list and tell the debugger."""
    jit = jit_interface()
    registration = Registration(image)
    with _lock:
        descriptor = jit.descriptor
        entry = registration.entry
        entry.next = descriptor.first_entry
        if descriptor.first_entry:
            JitCodeEntry.from_address(descriptor.first_entry).prev = ctypes.addressof(entry)
        descriptor.first_entry = ctypes.addressof(entry)
        descriptor.relevant_entry = ctypes.addressof(entry)
        descriptor.action_flag = JIT_REGISTER_FN
        jit.notify()
        descriptor.action_flag = JIT_NOACTION
        registration.registered = True
    return registration


def unregister(registration: Registration) -> None:
    """Unlink the entry, tell the debugger, then let the memory go."""
    if not registration.registered:
        return
    jit = jit_interface()
    with _lock:
        descriptor = jit.descriptor
        entry = registration.entry
        if entry.prev:
            JitCodeEntry.from_address(entry.prev).next = entry.next
        else:
            descriptor.first_entry = entry.next
        if entry.next:
            JitCodeEntry.from_address(entry.next).prev = entry.prev
        descriptor.relevant_entry = ctypes.addressof(entry)
        descriptor.action_flag = JIT_UNREGISTER_FN
        jit.notify()
        descriptor.action_flag = JIT_NOACTION
        descriptor.relevant_entry = 0
        registration.registered = False


class GdbJitRegistrar:
    """A Store code observer that makes JIT code visible to gdb and lldb.

    `store.add_code_observer(registrar)` (or `Store(code_observers=[registrar])`) registers
    the store's stubs at once, so backtraces through the entry, trap and host-call stubs
    unwind, and then every module compiled afterwards. `source_path(module)` names the file
    the line table refers to when the module's own DWARF does not.

    Translating a module's own DWARF costs about 2 s per MB of it, so by default it is done
    only when a debugger traces the process as the module is registered (gdb or lldb
    started it, or attached before): `translate_dwarf` True or False decides instead.
    Without it, the object carries Wasm-level info (`wasmlevel`), unless the code cache
    holds one made with translation (by an earlier run under a debugger, or with
    `--debug-info`).
    """

    def __init__(self, source_path: Callable[[object], str] | None = None, translate_dwarf: bool | None = None):
        self.source_path = source_path or _default_source_path
        self.translate_dwarf = translate_dwarf
        self.registrations: list[Registration] = []
        self._stubs_registered: set[int] = set()
        self._last_object: tuple | None = None  # (compiled, image, translated) until save_payload
        if debugger_attached():
            # gdb 13 no longer resolves pending breakpoints on the functions of a JIT object
            # registered after a shared library has loaded, so under a debugger the modules
            # that load one later load before anything is registered: the debug-info modules
            # (pyelftools loads zlib's) and subprocess (select, fcntl: wasm-tools' runs and
            # WASI, both loaded only when needed, use them).
            import subprocess  # noqa: F401
            from . import debuginfo  # noqa: F401

    def stubs_placed(self, stubs) -> None:
        """Once per stub region."""
        if stubs.region.address in self._stubs_registered:
            return
        self._stubs_registered.add(stubs.region.address)
        image = jit_object(stubs.region.address, stubs.region.size, stub_symbols(stubs))
        self.registrations.append(register(image))

    def __call__(self, module, compiled, region) -> None:
        translate = self._translating()
        image = self._module_object(module, compiled, region.address, region.size, translate)
        self._last_object = (compiled, image, translate)
        self.registrations.append(register(image))

    def _translating(self) -> bool:
        return self.translate_dwarf if self.translate_dwarf is not None else debugger_attached()

    def _module_object(self, module, compiled, address: int, size: int, translate: bool,
                       warn=None) -> bytes:
        from .debuginfo import module_debug_sections  # pyelftools: not for a cached object
        source_path = self.source_path(module)
        debug = module_debug_sections(module, compiled, address, source_path, translate, warn or _warn)
        return jit_object(address, size, module_symbols(module, compiled), debug, source_path)

    def _object_settings(self, module, translate: bool) -> bytes:
        """What the object depends on besides the code and its address: a cached object
        made with other settings (another source path; DWARF translated or not) is not
        reused."""
        return self.source_path(module).encode() + (b"\0dwarf" if translate else b"\0wasm")

    # The code cache keeps each module's object (see Store.add_code_observer), so that a
    # cached run registers it without building it again: the object is the same bytes
    # with its address fields moved to where the code lies now (`relocation`).
    cache_payload_name = "gdb-jit-object"

    def save_payload(self, module, compiled, region) -> bytes | None:
        """The object just registered for `compiled`, with its address fields."""
        last, self._last_object = self._last_object, None
        if last is None or last[0] is not compiled:
            return None
        _, image, translate = last
        probed = self._module_object(module, compiled, region.address + PROBE, region.size,
                                     translate, warn=lambda _message: None)
        offsets = relocations(image, probed)
        if offsets is None:
            return None
        settings = self._object_settings(module, translate)
        return (_PAYLOAD.pack(_payload_version(), region.address, region.size, len(settings),
                              len(offsets)) + settings + offsets.tobytes() + image)

    def load_payload(self, module, compiled, region, payload: bytes) -> bool:
        """Register a cached object, if this code made it with these settings; an object
        with translated DWARF serves a run that would not translate too (it only adds)."""
        if len(payload) < _PAYLOAD.size:
            return False
        version, address, size, settings_length, count = _PAYLOAD.unpack_from(payload)
        at = _PAYLOAD.size + settings_length
        settings = payload[_PAYLOAD.size:at]
        usable = {self._object_settings(module, True)}
        if not self._translating():
            usable.add(self._object_settings(module, False))
        if (version, size) != (_payload_version(), region.size) or settings not in usable:
            return False
        offsets = array("Q")
        offsets.frombytes(payload[at:at + 8 * count])
        image = payload[at + 8 * count:]
        if len(offsets) != count or (offsets and max(offsets) + 8 > len(image)):
            return False
        self.registrations.append(register(relocate(image, offsets, region.address - address)))
        return True

    def close(self) -> None:
        """Unregister every object: the store's code is going away."""
        while self.registrations:
            unregister(self.registrations.pop())
        self._stubs_registered.clear()


def _warn(message: str) -> None:
    print(f"stackstitch: warning: {message}", file=sys.stderr)


def debugger_attached() -> bool:
    """Whether a debugger traces this process (Linux: TracerPid in /proc/self/status)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1]) != 0
    except (OSError, ValueError, IndexError):
        pass
    return False
# A cached object's header: the version of the code that built it, the code's address and
# size then, the length of its settings and the number of address fields that follow.
_PAYLOAD = struct.Struct("<32sQQII")


@functools.cache
def _payload_version() -> bytes:
    """Objects built by other code (an edited `unwind`) are not reused."""
    return source_fingerprint(Path(__file__).parent)


def _default_source_path(module) -> str:
    return f"{module.name or 'wasm-module'}.wasm"


def support_debuggers(store, source_path: Callable[[object], str] | None = None,
                      translate_dwarf: bool | None = None) -> GdbJitRegistrar:
    """Everything `stackstitch run` does for debuggers: register the store's code with gdb
    and lldb, and publish its debug root (for the gdb plugin) through the shim."""
    registrar = GdbJitRegistrar(source_path, translate_dwarf)
    store.add_code_observer(registrar)
    store.publish_debug_root(jit_interface().debug_root)
    return registrar
