"""The in-memory ELF object gdb and lldb read for one code region (a module, or the stubs).

A relocatable object whose `.text` is SHT_NOBITS at `sh_addr` = the real code address (the
debugger reads the code from the process), with one STT_FUNC symbol per function
(section-relative values, as ELF requires for ET_REL), `.eh_frame` + `.eh_frame_hdr` for
unwinding and, for Wasm modules, the DWARF sections `debuginfo` makes.
"""

from __future__ import annotations

from stackstitch.engine.records import record

from .cfi import FrameDescription, build_eh_frame
from .elffile import (ET_REL, SHF_ALLOC, SHF_EXECINSTR, SHT_NOBITS, SHT_PROGBITS, SHT_STRTAB,
                      SHT_SYMTAB, SHT_X86_64_UNWIND, STB_LOCAL, STT_FILE, SYMBOL_SIZE, SHN_ABS,
                      ElfImage, Section, StringTable, Symbol, symbol_table)


@record
class CodeSymbol:
    """One function of a code region; offsets are relative to the region's start."""
    name: str
    start: int
    end: int
    cfi_rows: list  # [(offset, CfaRule)]
    signal_frame: bool = False


def jit_object(code_address: int, code_size: int, symbols: list[CodeSymbol],
               debug_sections: dict[str, bytes] | None = None, source_path: str | None = None) -> bytes:
    """The ELF object describing code placed at `code_address`, with `debug_sections`
    (name -> contents); `source_path` names its STT_FILE symbol."""
    image = ElfImage(ET_REL)
    image.sections.append(Section(".text", SHT_NOBITS, flags=SHF_ALLOC | SHF_EXECINSTR,
                                  address=code_address, size=code_size, align=16))
    frames = build_eh_frame([FrameDescription(code_address + s.start, code_address + s.end,
                                              [(code_address + at, rule) for at, rule in s.cfi_rows],
                                              s.signal_frame)
                             for s in symbols if s.cfi_rows])
    image.sections.append(Section(".eh_frame", SHT_X86_64_UNWIND, frames.eh_frame, align=8))
    image.sections.append(Section(".eh_frame_hdr", SHT_PROGBITS, frames.eh_frame_hdr, align=4))
    for name, data in (debug_sections or {}).items():
        image.sections.append(Section(name, SHT_PROGBITS, data))

    strings = StringTable()
    elf_symbols = [Symbol(source_path or "stackstitch-stubs", 0, type=STT_FILE, bind=STB_LOCAL,
                          section=SHN_ABS)]
    elf_symbols += [Symbol(s.name, s.start, s.end - s.start, section=".text") for s in symbols]
    symtab = Section(".symtab", SHT_SYMTAB, link=".strtab", align=8, entsize=SYMBOL_SIZE)
    strtab = Section(".strtab", SHT_STRTAB)
    image.sections += [symtab, strtab]
    symtab.data, symtab.info = symbol_table(elf_symbols, strings, image.index())
    strtab.data = bytes(strings.data)
    return image.build()


def module_symbols(module, compiled) -> list[CodeSymbol]:
    """The functions of a compiled module (engine.compiler.codegen.CompiledModule), named as the
    README promises (`Module.func_name`)."""
    return [CodeSymbol(module.func_name(f.index), f.start, f.end, f.cfi_rows) for f in compiled.functions]


def stub_symbols(stubs) -> list[CodeSymbol]:
    """The store's stubs (engine.stubs.Stubs); a stub marked `signal_frame` (the
    continuation start stub) gets the `S` augmentation."""
    return [CodeSymbol(s.name, s.start, s.end, s.cfi_rows, signal_frame=getattr(s, "signal_frame", False))
            for s in stubs.symbols]
