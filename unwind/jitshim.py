"""The GDB JIT interface's two symbols, without a C compiler: a tiny shared object written
by Python and loaded with ctypes.

gdb and lldb look up `__jit_debug_register_code` (a function they set a breakpoint on) and
`__jit_debug_descriptor` (the head of the list of JIT objects) by name in loaded objects.
What they need from the shim, found by trying: section headers including `.dynsym` and
`.dynstr` (with only the dynamic segment, dlsym works but the debuggers see nothing);
version 1 already in the file's descriptor (gdb checks it at start and at attach); the file
staying on disk while the process lives (so it lives in a cache directory, never deleted).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import struct
from pathlib import Path

from .elffile import (ET_DYN, PF_R, PF_W, PF_X, PT_DYNAMIC, PT_GNU_STACK, PT_LOAD, SHF_ALLOC,
                      SHF_EXECINSTR, SHF_WRITE, SHT_DYNAMIC, SHT_DYNSYM, SHT_HASH, SHT_PROGBITS,
                      SHT_STRTAB, STT_FUNC, STT_OBJECT, SYMBOL_SIZE, ElfImage, Section, Segment,
                      StringTable, Symbol, symbol_table)

REGISTER_CODE = "__jit_debug_register_code"
DESCRIPTOR = "__jit_debug_descriptor"
DEBUG_ROOT = "stackstitch_debug_root"  # the engine's debug root address (engine/DEBUG_ROOT.md)
JIT_DESCRIPTOR_VERSION = 1

DT_NULL, DT_HASH, DT_STRTAB, DT_SYMTAB, DT_STRSZ, DT_SYMENT = 0, 4, 5, 6, 10, 11

# Addresses equal file offsets: read-only/executable data in the first page, writable next.
_RO_START = 0x200
_RW_START = 0x1000


class JitCodeEntry(ctypes.Structure):
    _fields_ = [("next", ctypes.c_uint64), ("prev", ctypes.c_uint64),
                ("symfile_addr", ctypes.c_uint64), ("symfile_size", ctypes.c_uint64)]


class JitDescriptor(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("action_flag", ctypes.c_uint32),
                ("relevant_entry", ctypes.c_uint64), ("first_entry", ctypes.c_uint64)]


def _elf_hash_table(symbol_count: int) -> bytes:
    """A one-bucket SysV hash table: the dynamic loader walks the chain, comparing names."""
    chain = [0] + [k - 1 for k in range(1, symbol_count)]
    return struct.pack(f"<II I {symbol_count}I", 1, symbol_count, symbol_count - 1, *chain)


def build_shim() -> bytes:
    """The shim's bytes: `ret` for the function, a zeroed version-1 descriptor."""
    image = ElfImage(ET_DYN)
    dynsym = Section(".dynsym", SHT_DYNSYM, flags=SHF_ALLOC, link=".dynstr", align=8, entsize=SYMBOL_SIZE)
    dynstr = Section(".dynstr", SHT_STRTAB, flags=SHF_ALLOC)
    text = Section(".text", SHT_PROGBITS, b"\xc3", flags=SHF_ALLOC | SHF_EXECINSTR, align=16)
    dynamic = Section(".dynamic", SHT_DYNAMIC, flags=SHF_ALLOC | SHF_WRITE, link=".dynstr", align=8, entsize=16)
    data = Section(".data", SHT_PROGBITS, bytes(JitDescriptor(version=JIT_DESCRIPTOR_VERSION)) + bytes(8),
                   flags=SHF_ALLOC | SHF_WRITE, align=8)
    hash_table = Section(".hash", SHT_HASH, _elf_hash_table(4), flags=SHF_ALLOC, link=".dynsym", align=8, entsize=4)
    image.sections = [hash_table, dynsym, dynstr, text, dynamic, data]

    # Lay out addresses (= file offsets); .dynsym's contents do not change its size.
    strings = StringTable()
    symbols = [Symbol(REGISTER_CODE, 0, 1, STT_FUNC, section=".text"),
               Symbol(DESCRIPTOR, 0, ctypes.sizeof(JitDescriptor), STT_OBJECT, section=".data"),
               Symbol(DEBUG_ROOT, 0, 8, STT_OBJECT, section=".data")]
    for name in (REGISTER_CODE, DESCRIPTOR, DEBUG_ROOT):
        strings.add(name)
    dynsym.data = bytes(SYMBOL_SIZE * 4)
    dynstr.data = bytes(strings.data)
    dynamic.data = bytes(16 * 6)
    address = _RO_START
    for section in image.sections:
        if section is dynamic:
            address = _RW_START
        address = -(-address // section.align) * section.align
        section.address = section.offset = address
        address += len(section.data)

    symbols[0].value, symbols[1].value = text.address, data.address
    symbols[2].value = data.address + ctypes.sizeof(JitDescriptor)
    dynsym.data, dynsym.info = symbol_table(symbols, strings, image.index())
    dynamic.data = b"".join(struct.pack("<QQ", tag, value) for tag, value in (
        (DT_HASH, hash_table.address), (DT_STRTAB, dynstr.address), (DT_SYMTAB, dynsym.address),
        (DT_STRSZ, len(dynstr.data)), (DT_SYMENT, SYMBOL_SIZE), (DT_NULL, 0)))
    image.segments = [Segment(PT_LOAD, PF_R | PF_X, [".hash", ".text"], include_headers=True),
                      Segment(PT_LOAD, PF_R | PF_W, [".dynamic", ".data"]),
                      Segment(PT_DYNAMIC, PF_R | PF_W, [".dynamic"], align=8),
                      Segment(PT_GNU_STACK, PF_R | PF_W, [], align=0)]
    return image.build()


def _cache_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stackstitch"


def _shim_directories():
    """The cache directory, else a temporary one (tempfile is imported only then)."""
    yield _cache_directory()
    import tempfile
    yield Path(tempfile.gettempdir()) / f"stackstitch-{os.getuid()}"


def shim_path() -> Path:
    """Write the shim once per content into the cache (or temp) directory; the name carries
    a hash of the bytes, so a changed shim never overwrites one a process is using."""
    image = build_shim()
    name = f"jit-interface-{hashlib.sha256(image).hexdigest()[:16]}.so"
    for directory in _shim_directories():
        path = directory / name
        try:
            if path.is_file() and path.read_bytes() == image:
                return path
            directory.mkdir(parents=True, exist_ok=True)
            temporary = directory / f".{name}.{os.getpid()}.{os.urandom(4).hex()}"
            with open(temporary, "xb") as f:
                f.write(image)
            os.replace(temporary, path)
            return path
        except OSError:
            continue
    raise OSError("no writable cache directory for the GDB JIT interface shim")


class JitInterface:
    """The loaded shim: its descriptor, and the notification function to call."""

    def __init__(self, path: Path):
        self.path = path
        self.library = ctypes.CDLL(str(path))
        self.descriptor = JitDescriptor.in_dll(self.library, DESCRIPTOR)
        self.debug_root = ctypes.c_uint64.in_dll(self.library, DEBUG_ROOT)
        self.notify = self.library[REGISTER_CODE]
        self.notify.restype = None
        self.notify.argtypes = []
