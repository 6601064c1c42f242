"""The module's own DWARF, translated into native terms for its JIT object.

Every compile unit is copied DIE by DIE. What changes:

* line tables: each native piece of a function gets the row of its Wasm instruction
  (`sourcelines`);
* code ranges (subprograms, inlined subroutines, lexical blocks, location lists): Wasm
  code offsets become the native ranges emitted for them (`codemap`);
* locations: Wasm locals, globals, the frame base and linear memory become frame slots,
  vmctx loads and memory-base arithmetic (`locations`). What cannot be translated exactly
  is left out, so debuggers show it as optimized out. A location that reads slots only the
  native prologue sets (or, relative to the frame base, only the producer's prologue)
  gets a location list that starts after that prologue; one that reads a local is cut
  where a loop keeps that local in a register, and reads the register there;
* pointers: `wasmpointers`;
* subprograms say DW_CC_nocall: our functions do not follow the System V convention, so a
  debugger must neither call them nor read a returned value from rax.

Two quirks of `wasm-tools parse -g` (producer "wast ..."): its code addresses count from
after the code section's function count, and it names locals `local0`...; its units get
their addresses shifted, and Wasm-level variables named from the name section.
"""

from __future__ import annotations

from dataclasses import dataclass

from elftools.dwarf.enums import ENUM_DW_AT, ENUM_DW_FORM, ENUM_DW_TAG
from elftools.dwarf.locationlists import LocationEntry, LocationExpr, LocationParser

from . import locations
from .codemap import CodeMap, FunctionCode, merge_ranges
from .dwarfout import (DW_FORM_addr, DW_FORM_block, DW_FORM_data1, DW_FORM_data8, DW_FORM_exprloc,
                       DW_FORM_flag_present, DW_FORM_sdata, DW_FORM_sec_offset, DW_FORM_strp,
                       DW_FORM_udata, FORM_REFERENCE, DebugInfoWriter, Die)
from .sourcelines import PrologueEnd, body_start, native_sequence, read_line_table
from .wasmdwarf import (CONSTANT_FORMS, PARSE_ERRORS, WasmDwarf, die_ranges, from_wasm_tools, text,
                        unit_base)
from .wasmlevel import WasmTypes, add_wasm_variables
from .wasmpointers import POINTERS, PointerTypes, reference

AT = ENUM_DW_AT
TAG = ENUM_DW_TAG
DW_CC_nocall = 0x03

# Attributes left out: they name Wasm addresses or producer-side tables we do not carry, or
# the translation writes them itself.
_DROPPED_ATTRIBUTES = {
    "DW_AT_sibling", "DW_AT_low_pc", "DW_AT_high_pc", "DW_AT_ranges", "DW_AT_entry_pc",
    "DW_AT_frame_base", "DW_AT_location", "DW_AT_stmt_list", "DW_AT_str_offsets_base",
    "DW_AT_addr_base", "DW_AT_rnglists_base", "DW_AT_loclists_base", "DW_AT_macros",
    "DW_AT_macro_info", "DW_AT_GNU_macros", "DW_AT_GNU_pubnames", "DW_AT_GNU_dwo_name",
    "DW_AT_GNU_dwo_id", "DW_AT_dwo_name", "DW_AT_return_addr", "DW_AT_call_return_pc",
    "DW_AT_call_pc", "DW_AT_GNU_addr_base", "DW_AT_GNU_ranges_base", "DW_AT_calling_convention",
}
_DROPPED_TAGS = {"DW_TAG_call_site", "DW_TAG_GNU_call_site", "DW_TAG_call_site_parameter",
                 "DW_TAG_GNU_call_site_parameter"}
_VARIABLE_TAGS = {"DW_TAG_variable", "DW_TAG_formal_parameter"}
_STRING_FORMS = {"DW_FORM_string", "DW_FORM_strp", "DW_FORM_line_strp", "DW_FORM_strx", "DW_FORM_strx1",
                 "DW_FORM_strx2", "DW_FORM_strx3", "DW_FORM_strx4"}
_UNIT_REFERENCE_FORMS = {"DW_FORM_ref1", "DW_FORM_ref2", "DW_FORM_ref4", "DW_FORM_ref8", "DW_FORM_ref_udata"}


@dataclass
class Scope:
    """Where a DIE sits: its function (None outside function definitions), the frame its
    locations are read in, and the Wasm code ranges its variables are visible in."""
    function: FunctionCode | None
    frame: locations.Frame | None
    ranges: list


UNIT_SCOPE = Scope(None, None, [])


@dataclass
class ModuleFacts:
    """What the translation needs from the engine about the module."""
    global_types: list  # Wasm value types of all globals (imports first)
    global_offset: object  # callable: global index -> vmctx offset of its cell pointer
    local_names: dict  # function index -> {local index: name}


class Translation:
    """All compile units of one module, for `writer`."""

    def __init__(self, wasm: WasmDwarf, code: CodeMap, facts: ModuleFacts, writer: DebugInfoWriter):
        self.wasm = wasm
        self.dwarf = wasm.info
        self.code = code
        self.facts = facts
        self.writer = writer
        self.dies: dict[int, Die] = {}  # Wasm DIE offset -> its translation
        self.pointers = PointerTypes(self.dwarf, self.die_for, code.start, code.end)
        self.described: set[int] = set()  # functions given lines or a subprogram
        self.location_parser = LocationParser(self.dwarf.location_lists())
        self.range_lists = self.dwarf.range_lists()

    def run(self) -> list[Die]:
        """The translated compile unit roots (not yet written)."""
        return [UnitTranslation(self, cu).run() for cu in self.dwarf.iter_CUs()]

    def die_for(self, offset: int) -> Die:
        """The translation of a Wasm DIE; an empty one until the DIE itself is reached."""
        die = self.dies.get(offset)
        if die is None:
            die = self.dies[offset] = Die(0)
        return die


class LocationTranslator:
    """Translates one variable's Wasm expressions (`locations.translate`) for its frame."""

    def __init__(self, expression_parser, frame: locations.Frame, pointer: bool, size: int | None):
        self.expression_parser = expression_parser
        self.frame = frame
        self.pointer = pointer
        self.size = size
        self.variants: dict[tuple, bytes | None] = {}  # (ops id, registers) -> native code

    def expression(self, expression) -> tuple[list, locations.Native] | None:
        """(parsed operations, their native translation with every local in its slot), or
        None if it cannot be parsed or translated."""
        try:
            ops = locations.parse(expression, self.expression_parser)
            return ops, locations.translate(ops, self.frame, wasm_pointer=self.pointer, size=self.size)
        except (locations.Unsupported, *PARSE_ERRORS):
            return None

    def in_registers(self, ops: list, registers: dict[int, str]) -> bytes | None:
        """The native code of `ops` where the locals in `registers` live in those registers,
        or None if it has none."""
        key = (id(ops), tuple(sorted(registers.items())))
        if key not in self.variants:
            try:
                self.variants[key] = locations.translate(ops, self.frame, wasm_pointer=self.pointer,
                                                         size=self.size, registers=registers).code
            except locations.Unsupported:
                self.variants[key] = None
        return self.variants[key]


class UnitTranslation:
    """One compile unit."""

    def __init__(self, owner: Translation, cu):
        self.owner = owner
        self.cu = cu
        self.version = cu.header.version
        self.pointers = owner.pointers if cu.header.address_size == 4 else None
        self.top = cu.get_top_DIE()
        self.from_wasm_tools = from_wasm_tools(self.top)
        self.bias = owner.wasm.count_size if self.from_wasm_tools else 0
        self.base_address = unit_base(self.top)
        self.file_shift = 1 if self.version >= 5 else 0
        self.functions: set[int] = set()  # functions (by index) this unit describes
        self.prologue_ends: dict[int, PrologueEnd] = {}  # by function index
        self.wasm_types: WasmTypes | None = None
        self.expression_parser = locations.parser(cu.structs)

    def run(self) -> Die:
        owner = self.owner
        root = owner.die_for(self.top.offset)
        root.tag = TAG["DW_TAG_compile_unit"]
        self.copy_attributes(self.top, root)
        line_offset = self.line_table()
        for child in self.top.iter_children():
            self.translate(child, root, UNIT_SCOPE)
        if self.pointers is not None:
            self.pointers.place(root)
        ranges = [(fc.start, fc.end) for fc in owner.code.functions if fc.index in self.functions]
        root.add(AT["DW_AT_low_pc"], DW_FORM_addr, 0)
        root.add(AT["DW_AT_ranges"], DW_FORM_sec_offset, owner.writer.range_list(merge_ranges(ranges)))
        if line_offset is not None:
            root.add(AT["DW_AT_stmt_list"], DW_FORM_sec_offset, line_offset)
        return root

    def line_table(self) -> int | None:
        owner = self.owner
        table = read_line_table(owner.dwarf, self.cu, self.bias)
        if table is None:
            return None
        self.file_shift = table.file_shift
        sequences = []
        for wasm_sequence in table.sequences:
            for fc in owner.code.functions_in(wasm_sequence.start, wasm_sequence.end):
                if fc.index in owner.described or not wasm_sequence.start <= fc.first_instruction < wasm_sequence.end:
                    continue
                found = native_sequence(fc, wasm_sequence, table.file_shift)
                if found is not None:
                    sequences.append(found[0])
                    self.prologue_ends[fc.index] = found[1]
                    owner.described.add(fc.index)
                    self.functions.add(fc.index)
        sequences.sort(key=lambda s: s.rows[0].address)
        return owner.writer.line_table(table.directories, table.files, sequences)

    # ---- DIEs ------------------------------------------------------------------------------

    def translate(self, wasm, parent: Die, scope: Scope) -> None:
        tag = wasm.tag
        if tag in _DROPPED_TAGS or not isinstance(tag, str) or tag not in TAG:
            return
        if self.from_wasm_tools and tag in _VARIABLE_TAGS:
            return  # replaced by Wasm-level variables named from the name section
        die = self.owner.die_for(wasm.offset)
        die.tag = TAG[tag]
        parent.children.append(die)
        self.copy_attributes(wasm, die)
        if tag == "DW_TAG_subprogram":
            scope = self.subprogram(wasm, die)
        elif tag in ("DW_TAG_inlined_subroutine", "DW_TAG_lexical_block"):
            scope = Scope(scope.function, scope.frame, self.scope_ranges(wasm, die))
        elif tag in _VARIABLE_TAGS:
            self.variable(wasm, die, scope)
        elif self.pointers is not None:
            if tag == "DW_TAG_member":
                self.pointers.rewrite_member(wasm, die)
            elif tag in POINTERS:
                self.pointers.rewrite_pointer(wasm, die)
            elif tag == "DW_TAG_array_type":
                self.pointers.rewrite_array(wasm, die)
        for child in wasm.iter_children():
            self.translate(child, die, scope)
        if tag == "DW_TAG_subprogram" and scope.function is not None and self.from_wasm_tools:
            self.add_wasm_locals(die, scope.function)

    def copy_attributes(self, wasm, die: Die) -> None:
        for name, attribute in wasm.attributes.items():
            if name not in _DROPPED_ATTRIBUTES and isinstance(name, str) and name in AT:
                translated = self.attribute(name, attribute)
                if translated is not None:
                    die.attributes.append(translated)

    def attribute(self, name: str, attribute):
        """An attribute copied as it is, in one of our forms; None to leave it out."""
        form, value, code = attribute.form, attribute.value, AT[name]
        if form in _STRING_FORMS:
            return code, DW_FORM_strp, text(value)
        if form in _UNIT_REFERENCE_FORMS:
            return code, FORM_REFERENCE, self.owner.die_for(self.cu.cu_offset + attribute.raw_value)
        if form == "DW_FORM_ref_addr":
            return code, FORM_REFERENCE, self.owner.die_for(attribute.raw_value)
        if name in ("DW_AT_decl_file", "DW_AT_call_file") and form in CONSTANT_FORMS:
            return code, DW_FORM_udata, value + self.file_shift
        if form == "DW_FORM_flag_present":
            return code, DW_FORM_flag_present, None
        if form == "DW_FORM_flag":
            return code, DW_FORM_data1, 1 if value else 0
        if form in CONSTANT_FORMS:
            return code, ENUM_DW_FORM[form], value
        if form == "DW_FORM_implicit_const":
            return code, DW_FORM_sdata, value
        if form.startswith("DW_FORM_block") and name == "DW_AT_const_value":
            return code, DW_FORM_block, bytes(value)
        if form == "DW_FORM_exprloc" and name == "DW_AT_data_member_location":
            return code, DW_FORM_exprloc, bytes(value)
        return None

    def subprogram(self, wasm, die: Die) -> Scope:
        """Native range and frame of a function definition; none for a declaration, or
        for code the linker dropped (its low_pc is then a tombstone, 0 or -1)."""
        wasm_ranges = self.wasm_ranges(wasm)
        if not wasm_ranges:
            return UNIT_SCOPE
        low = wasm_ranges[0][0]
        function = self.owner.code.function_at(low)
        if function is None or not function.wasm_start < low <= function.first_instruction:
            return UNIT_SCOPE
        self.functions.add(function.index)
        self.owner.described.add(function.index)
        die.add(AT["DW_AT_low_pc"], DW_FORM_addr, function.start)
        die.add(AT["DW_AT_high_pc"], DW_FORM_data8, function.end - function.start)
        die.add(AT["DW_AT_calling_convention"], DW_FORM_data1, DW_CC_nocall)
        frame_base = None
        attribute = wasm.attributes.get("DW_AT_frame_base")
        if attribute is not None and attribute.form in ("DW_FORM_exprloc", "DW_FORM_block1", "DW_FORM_block"):
            try:
                frame_base = locations.parse(attribute.value, self.expression_parser)
            except PARSE_ERRORS:
                frame_base = None
        facts = self.owner.facts
        frame = locations.Frame(function.all_local_types, len(function.param_types),
                                facts.global_offset, facts.global_types, frame_base, self.cu.header.address_size)
        return Scope(function, frame, [(function.wasm_start, function.wasm_end)])

    def scope_ranges(self, wasm, die: Die) -> list[tuple[int, int]]:
        """Give an inlined subroutine or a block its native ranges; its Wasm ones."""
        wasm_ranges = self.wasm_ranges(wasm)
        native = []
        for lo, hi in wasm_ranges:
            native += self.owner.code.native_ranges(lo, hi)
        native = merge_ranges(native)
        if len(native) == 1:
            die.add(AT["DW_AT_low_pc"], DW_FORM_addr, native[0][0])
            die.add(AT["DW_AT_high_pc"], DW_FORM_data8, native[0][1] - native[0][0])
        elif native:
            die.add(AT["DW_AT_ranges"], DW_FORM_sec_offset, self.owner.writer.range_list(native))
        return wasm_ranges

    def wasm_ranges(self, wasm) -> list[tuple[int, int]]:
        """The code-offset ranges a DIE covers."""
        return die_ranges(wasm, self.owner.range_lists, self.base_address, self.bias)

    # ---- variables ---------------------------------------------------------------------

    def variable(self, wasm, die: Die, scope: Scope) -> None:
        attribute = wasm.attributes.get("DW_AT_location")
        if attribute is None:
            return
        owner = self.owner
        variable_type = self.variable_type(wasm)
        pointer = self.pointers is not None and self.pointers.is_pointer(variable_type)
        size = owner.pointers.byte_size(variable_type)
        frame = scope.frame
        if frame is None:
            facts = owner.facts
            frame = locations.Frame([], 0, facts.global_offset, facts.global_types, None, self.cu.header.address_size)
        try:
            parsed = owner.location_parser.parse_from_attribute(attribute, self.version, wasm)
        except PARSE_ERRORS:
            return
        translator = LocationTranslator(self.expression_parser, frame, pointer, size)
        if isinstance(parsed, LocationExpr):
            found = translator.expression(parsed.loc_expr)
            if found is None:
                return
            ops, native = found
            if scope.function is None:  # a static variable, read through whichever frame is selected
                code = locations.in_code_guard(owner.code.start, owner.code.end, native.code)
                die.add(AT["DW_AT_location"], DW_FORM_exprloc, code)
                return
            if not (native.needs_body or native.uses_frame_base or native.locals):
                die.add(AT["DW_AT_location"], DW_FORM_exprloc, native.code)
                return
            wasm_entries = [(lo, hi, ops, native) for lo, hi in scope.ranges]
        else:
            if scope.function is None:
                return
            wasm_entries = []
            base = self.base_address
            for entry in parsed:
                if not isinstance(entry, LocationEntry):
                    base = getattr(entry, "base_address", base)
                    continue
                lo, hi = entry.begin_offset, entry.end_offset
                if not entry.is_absolute:
                    lo, hi = lo + base, hi + base
                found = translator.expression(entry.loc_expr)
                if found is not None and lo < hi:
                    wasm_entries.append((lo + self.bias, hi + self.bias, *found))
        entries = []
        for lo, hi, ops, native in wasm_entries:
            for start, end in self.trusted_ranges(scope.function, lo, hi, native):
                for piece_start, piece_end, registers in scope.function.pin_pieces(start, end, native.locals):
                    code = translator.in_registers(ops, registers) if registers else native.code
                    if code is not None:
                        entries.append((piece_start, piece_end, code))
        if entries:
            die.add(AT["DW_AT_location"], DW_FORM_sec_offset, owner.writer.location_list(sorted(entries)))

    def trusted_ranges(self, function: FunctionCode, lo: int, hi: int, native: locations.Native) -> list:
        """Native ranges where a location the producer gives for Wasm [lo, hi) holds: after
        the prologue that sets up what it reads, and before the Wasm locals it reads are
        overwritten (`wasmcode`)."""
        if native.uses_frame_base:
            lo = max(lo, self.prologue_ends.get(function.index, body_start(function)).wasm)
        if native.locals:
            writes = self.owner.code.local_writes(function)
            trusted = writes.trusted(native.locals, lo, hi) if writes is not None else None
            if trusted is None:
                return []
            lo, hi = trusted
        return self.owner.code.native_ranges(lo, hi, body_only=native.needs_body)

    def variable_type(self, wasm) -> int | None:
        """A variable's type, also through DW_AT_abstract_origin (inlined copies)."""
        for _ in range(4):
            if "DW_AT_type" in wasm.attributes:
                return reference(wasm, "DW_AT_type")
            origin = wasm.attributes.get("DW_AT_abstract_origin") or wasm.attributes.get("DW_AT_specification")
            if origin is None:
                return None
            try:
                wasm = wasm.get_DIE_from_attribute(origin.name)
            except PARSE_ERRORS:
                return None
        return None

    def add_wasm_locals(self, die: Die, function: FunctionCode) -> None:
        """WAT's function: its Wasm parameters and locals, so that they can be printed."""
        if self.wasm_types is None:
            self.wasm_types = WasmTypes(self.owner.die_for(self.top.offset))
        add_wasm_variables(die, function, self.owner.facts.local_names.get(function.index, {}),
                           self.wasm_types, self.owner.writer)
