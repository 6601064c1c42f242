"""A small ELF64 (x86-64, little-endian) image writer: sections, symbol tables, segments.

Used for the JIT object of each module and for the GDB JIT interface shim; both are
written by Python so that no C compiler is needed at install or run time. Every run writes
some (the shim, the stubs' object): its records are plain classes and named tuples, which
cost less to define than dataclasses.
"""

from __future__ import annotations

import struct

from stackstitch.engine.records import record

ET_REL = 1
ET_DYN = 3
EM_X86_64 = 62

SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_HASH = 5
SHT_DYNAMIC = 6
SHT_NOBITS = 8
SHT_DYNSYM = 11
SHT_X86_64_UNWIND = 0x70000001

SHF_WRITE = 0x1
SHF_ALLOC = 0x2
SHF_EXECINSTR = 0x4

PT_LOAD = 1
PT_DYNAMIC = 2
PT_GNU_STACK = 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4

STB_LOCAL, STB_GLOBAL = 0, 1
STT_OBJECT, STT_FUNC, STT_FILE = 1, 2, 4
SHN_ABS = 0xFFF1

_EHDR_SIZE = 64
_PHDR_SIZE = 56
_SHDR_SIZE = 64
SYMBOL_SIZE = 24


class Section:
    """One section of an image being built; its fields are set as the image is laid out."""

    def __init__(self, name: str, type: int, data: bytes = b"", flags: int = 0, address: int = 0,
                 size: int | None = None, link: str | None = None, info: int = 0, align: int = 1,
                 entsize: int = 0, offset: int | None = None):
        self.name = name
        self.type = type
        self.data = data
        self.flags = flags
        self.address = address
        self.size = size  # defaults to len(data); the memory size of a NOBITS section
        self.link = link  # the name of the linked section
        self.info = info
        self.align = align
        self.entsize = entsize
        self.offset = offset  # a required file offset (loadable sections of a shared object)


@record
class Segment:
    """One program header of an image being built."""

    type: int
    flags: int
    sections: list[str]  # names of the consecutive sections it spans; none for PT_GNU_STACK
    align: int = 0x1000
    include_headers: bool = False  # start at file offset 0 (the first PT_LOAD of an ET_DYN)


class StringTable:
    """An ELF string table; offset 0 is the empty string."""

    def __init__(self):
        self.data = bytearray(b"\0")
        self._offsets: dict[str, int] = {"": 0}

    def add(self, text: str) -> int:
        offset = self._offsets.get(text)
        if offset is None:
            offset = self._offsets[text] = len(self.data)
            self.data += text.encode() + b"\0"
        return offset


class Symbol:
    """One symbol table entry (its value may be set once the image is laid out)."""

    def __init__(self, name: str, value: int, size: int = 0, type: int = STT_FUNC,
                 bind: int = STB_GLOBAL, section: str | int = SHN_ABS):
        self.name = name
        self.value = value
        self.size = size
        self.type = type
        self.bind = bind
        self.section = section  # a section name, or a special index such as SHN_ABS


def symbol_table(symbols: list[Symbol], strings: StringTable, section_index: dict[str, int]) -> tuple[bytes, int]:
    """(.symtab or .dynsym bytes, sh_info = index of the first non-local symbol).

    Locals must come first; a null symbol is prepended."""
    ordered = sorted(symbols, key=lambda s: s.bind != STB_LOCAL)
    out = bytearray(SYMBOL_SIZE)
    for s in ordered:
        shndx = section_index[s.section] if isinstance(s.section, str) else s.section
        out += struct.pack("<IBBHQQ", strings.add(s.name), (s.bind << 4) | s.type, 0, shndx,
                           s.value, s.size)
    first_global = 1 + sum(1 for s in ordered if s.bind == STB_LOCAL)
    return bytes(out), first_global


class ElfImage:
    """An ELF image being built: its sections and segments, laid out by `build`."""

    def __init__(self, elf_type: int, sections: list[Section] | None = None,
                 segments: list[Segment] | None = None):
        self.elf_type = elf_type
        self.sections = sections if sections is not None else []
        self.segments = segments if segments is not None else []

    def index(self) -> dict[str, int]:
        """Section name -> section header index (the null section is 0)."""
        return {s.name: i + 1 for i, s in enumerate(self.sections)}

    def build(self) -> bytes:
        """The complete file: header, program headers, section contents, section headers."""
        names = StringTable()
        sections = self.sections + [Section(".shstrtab", SHT_STRTAB)]
        name_offsets = [names.add(s.name) for s in sections]
        sections[-1].data = bytes(names.data)
        index = self.index() | {".shstrtab": len(sections)}

        out = bytearray(_EHDR_SIZE + _PHDR_SIZE * len(self.segments))
        offsets = []
        for s in sections:
            at = s.offset if s.offset is not None else -(-len(out) // s.align) * s.align
            if at < len(out):
                raise ValueError(f"section {s.name} at 0x{at:x} overlaps what precedes it")
            out += bytes(at - len(out))
            offsets.append(at)
            if s.type != SHT_NOBITS:
                out += s.data
        shoff = -(-len(out) // 8) * 8
        out += bytes(shoff - len(out))
        out += bytes(_SHDR_SIZE)
        for s, name, at in zip(sections, name_offsets, offsets):
            size = s.size if s.size is not None else len(s.data)
            link = index[s.link] if s.link else 0
            out += struct.pack("<IIQQQQIIQQ", name, s.type, s.flags, s.address, at, size,
                               link, s.info, s.align, s.entsize)

        struct.pack_into("<4sBBBBB7sHHIQQQIHHHHHH", out, 0, b"\x7fELF", 2, 1, 1, 0, 0, b"",
                         self.elf_type, EM_X86_64, 1, 0,
                         _EHDR_SIZE if self.segments else 0, shoff, 0,
                         _EHDR_SIZE, _PHDR_SIZE, len(self.segments),
                         _SHDR_SIZE, len(sections) + 1, len(sections))
        by_name = {s.name: (s, at) for s, at in zip(sections, offsets)}
        for k, seg in enumerate(self.segments):
            if not seg.sections:
                struct.pack_into("<II", out, _EHDR_SIZE + k * _PHDR_SIZE, seg.type, seg.flags)
                continue
            first, first_at = by_name[seg.sections[0]]
            last, last_at = by_name[seg.sections[-1]]
            start_at, start_addr = (0, first.address - first_at) if seg.include_headers else (first_at, first.address)
            end_file = last_at + (0 if last.type == SHT_NOBITS else len(last.data))
            end_addr = last.address + (last.size if last.size is not None else len(last.data))
            struct.pack_into("<IIQQQQQQ", out, _EHDR_SIZE + k * _PHDR_SIZE, seg.type, seg.flags,
                             start_at, start_addr, start_addr, end_file - start_at,
                             end_addr - start_addr, seg.align)
        return bytes(out)
