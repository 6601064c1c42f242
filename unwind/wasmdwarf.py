"""The DWARF a compiler put in a Wasm module's custom sections, read with pyelftools.

clang, zig cc, rustc and `wasm-tools parse -g` store `.debug_info`, `.debug_line`, ... as
custom sections; their code addresses are offsets from the start of the code section's
contents. pyelftools reads it lazily, so malformed DWARF shows as exceptions while it is
used (`debuginfo` then ignores it).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from elftools.common.exceptions import DWARFError
from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DWARFInfo, DwarfConfig
from elftools.dwarf.ranges import RangeEntry

from stackstitch.engine.frontend.binary import read_u32


WASM_TOOLS_PRODUCER = "wast "
CONSTANT_FORMS = {"DW_FORM_data1", "DW_FORM_data2", "DW_FORM_data4", "DW_FORM_data8", "DW_FORM_sdata",
                  "DW_FORM_udata"}
# What reading malformed DWARF can raise, in pyelftools or in our use of what it returns.
PARSE_ERRORS = (DWARFError, KeyError, ValueError, IndexError, TypeError)

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


def from_wasm_tools(top_die) -> bool:
    """Whether a unit comes from `wasm-tools parse -g`, whose code addresses count from after
    the code section's function count (LLVM's, as Wasm DWARF says, from its start)."""
    producer = top_die.attributes.get("DW_AT_producer")
    return producer is not None and text(producer.value).startswith(WASM_TOOLS_PRODUCER)


def unit_base(top_die) -> int:
    """A unit's base address (its low_pc), for its range and location lists."""
    low = top_die.attributes.get("DW_AT_low_pc")
    return low.value if low is not None and isinstance(low.value, int) else 0


def comp_dir(top_die) -> str:
    """A unit's compilation directory ("" if it names none)."""
    attribute = top_die.attributes.get("DW_AT_comp_dir")
    return text(attribute.value) if attribute is not None else ""


def die_ranges(die, range_lists, base: int, bias: int) -> list[tuple[int, int]]:
    """The code-offset ranges a DIE covers (low/high pc or a range list), moved by `bias`;
    empty for none, or for code the linker dropped."""
    attributes = die.attributes
    low = attributes.get("DW_AT_low_pc")
    high = attributes.get("DW_AT_high_pc")
    if low is not None and high is not None and isinstance(low.value, int):
        end = high.value
        if high.form in CONSTANT_FORMS:
            end += low.value
        return [(low.value + bias, end + bias)] if end > low.value else []
    ranges = attributes.get("DW_AT_ranges")
    if ranges is None or range_lists is None:
        return []
    try:
        entries = range_lists.get_range_list_at_offset(ranges.value, cu=die.cu)
    except PARSE_ERRORS:
        return []
    out = []
    for entry in entries:
        if isinstance(entry, RangeEntry):
            lo, hi = entry.begin_offset, entry.end_offset
            if not entry.is_absolute:
                lo, hi = lo + base, hi + base
            if lo < hi:
                out.append((lo + bias, hi + bias))
        else:
            base = entry.base_address
    return out


def text(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
