"""The DWARF a compiler put in a Wasm module's custom sections, read with pyelftools.

clang, zig cc, rustc and `wasm-tools parse -g` store `.debug_info`, `.debug_line`, ... as
custom sections; their code addresses are offsets from the start of the code section's
contents. pyelftools reads it lazily, so malformed DWARF shows as exceptions while it is
used (`debuginfo` then ignores it).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DWARFInfo, DwarfConfig

from stackstitch.engine.frontend.binary import read_u32


# DWARFInfo's section arguments; the CFI and supplementary-file ones stay None.
_SECTION_ARGUMENTS = ("info", "aranges", "abbrev", "str", "loc", "ranges", "line", "pubtypes",
                      "pubnames", "addr", "str_offsets", "line_str", "loclists", "rnglists", "types")
_UNUSED_ARGUMENTS = ("frame", "eh_frame", "sup")


@dataclass
class WasmDwarf:
    info: DWARFInfo
    code_start: int  # module offset of the code section's contents (DWARF address 0)
    count_size: int  # bytes of the function count that opens the code section's contents


def custom_section(module, name: str) -> bytes | None:
    """The contents of the module's custom section `name`, if it has one."""
    where = module.custom_sections.get(name)
    return None if where is None else module.data[where[0]:where[1]]


def read_wasm_dwarf(module) -> WasmDwarf | None:
    """The module's DWARF, or None if it has no `.debug_info` (or no code)."""
    if module.code_section_start is None or ".debug_info" not in module.custom_sections \
            or ".debug_abbrev" not in module.custom_sections:
        return None

    def descriptor(name: str) -> DebugSectionDescriptor | None:
        contents = custom_section(module, name)
        if contents is None:
            return None
        return DebugSectionDescriptor(io.BytesIO(contents), name, None, len(contents), 0)

    sections = {f"debug_{name}_sec": descriptor(f".debug_{name}") for name in _SECTION_ARGUMENTS}
    sections |= {f"{'' if name == 'eh_frame' else 'debug_'}{name}_sec": None for name in _UNUSED_ARGUMENTS}
    config = DwarfConfig(little_endian=True, machine_arch="wasm", default_address_size=4)
    info = DWARFInfo(config, gnu_debugaltlink_sec=None, **sections)
    start = module.code_section_start
    return WasmDwarf(info, start, read_u32(module.data, start)[1] - start)
