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

from .dwarf import read_uleb128

CODE_SECTION_ID = 10
CUSTOM_SECTION_ID = 0

# DWARFInfo's section arguments; the CFI and supplementary-file ones stay None.
_SECTION_ARGUMENTS = ("info", "aranges", "abbrev", "str", "loc", "ranges", "line", "pubtypes",
                      "pubnames", "addr", "str_offsets", "line_str", "loclists", "rnglists", "types")
_UNUSED_ARGUMENTS = ("frame", "eh_frame", "sup")


@dataclass
class WasmDwarf:
    info: DWARFInfo
    code_start: int  # module offset of the code section's contents (DWARF address 0)
    count_size: int  # bytes of the function count that opens the code section's contents


def module_sections(data: bytes) -> tuple[int | None, dict[str, bytes]]:
    """(module offset of the code section's contents, {custom section name: contents})."""
    code_start, custom = None, {}
    pos = 8
    try:
        while pos < len(data):
            section_id = data[pos]
            size, start = read_uleb128(data, pos + 1)
            end = start + size
            if section_id == CODE_SECTION_ID:
                code_start = start
            elif section_id == CUSTOM_SECTION_ID:
                length, name_start = read_uleb128(data, start)
                name = data[name_start:name_start + length].decode("utf-8", "replace")
                custom[name] = data[name_start + length:end]
            pos = end
    except IndexError:
        pass  # a validated module never ends early; keep what was read
    return code_start, custom


def read_wasm_dwarf(data: bytes) -> WasmDwarf | None:
    """The module's DWARF, or None if it has no `.debug_info` (or no code)."""
    code_start, custom = module_sections(data)
    if code_start is None or ".debug_info" not in custom or ".debug_abbrev" not in custom:
        return None

    def descriptor(name: str) -> DebugSectionDescriptor | None:
        contents = custom.get(name)
        if contents is None:
            return None
        return DebugSectionDescriptor(io.BytesIO(contents), name, None, len(contents), 0)

    sections = {f"debug_{name}_sec": descriptor(f".debug_{name}") for name in _SECTION_ARGUMENTS}
    sections |= {f"{'' if name == 'eh_frame' else 'debug_'}{name}_sec": None for name in _UNUSED_ARGUMENTS}
    config = DwarfConfig(little_endian=True, machine_arch="wasm", default_address_size=4)
    info = DWARFInfo(config, gnu_debugaltlink_sec=None, **sections)
    count_size = read_uleb128(data, code_start)[1] - code_start
    return WasmDwarf(info, code_start, count_size)
