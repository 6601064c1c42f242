"""How a C pointer of a wasm32 program is described to native debuggers.

A Wasm pointer is a 4-byte linear-memory address. lldb reads a pointer type of
DW_AT_byte_size 4 as 8 bytes, and both gdb and lldb would dereference the address as a
native one. So (see "Pointers" in unwind/README.md):

* a pointer type becomes a native 8-byte pointer to a *relocated* copy of its target type:
  the same type plus a DW_AT_data_location that adds the memory base of the selected
  frame's instance to the address being dereferenced, so `*p`, `p->next->v` and `p[3]`
  read linear memory (gdb; lldb ignores DW_AT_data_location and fails to read instead);
  scalars are relocated as subranges, floats as a structure holding them (`_fill`);
* where a pointer is stored, its 4 bytes are widened: a struct member becomes a 32-bit
  bit-field of the pointer type, a variable a zero-extended value (`locations`);
* a pointer stored where neither works (an array element, or the target of another
  pointer) has a 4-byte address type named after the C type: printed, not dereferenced.
"""

from __future__ import annotations

from elftools.dwarf.enums import ENUM_DW_AT, ENUM_DW_TAG

from . import locations
from .dwarfout import (DW_FORM_data1, DW_FORM_exprloc, DW_FORM_sdata, DW_FORM_strp, DW_FORM_udata,
                       FORM_REFERENCE, Die)

AT = ENUM_DW_AT
TAG = ENUM_DW_TAG
DW_ATE_address = 0x01

QUALIFIERS = {"DW_TAG_typedef", "DW_TAG_const_type", "DW_TAG_volatile_type", "DW_TAG_restrict_type",
              "DW_TAG_atomic_type"}
POINTERS = {"DW_TAG_pointer_type", "DW_TAG_reference_type", "DW_TAG_rvalue_reference_type"}
AGGREGATES = {"DW_TAG_structure_type", "DW_TAG_union_type", "DW_TAG_class_type", "DW_TAG_array_type"}
DW_ATE_float, DW_ATE_signed, DW_ATE_signed_char, DW_ATE_complex_float = 0x04, 0x05, 0x06, 0x03
FLOAT_ENCODINGS = {DW_ATE_float, DW_ATE_complex_float, 0x09, 0x0F}  # + decimal, imaginary floats
SIGNED_ENCODINGS = {DW_ATE_signed, DW_ATE_signed_char, 0x0D}  # + signed fixed
UNIT_REFERENCE_FORMS = {"DW_FORM_ref1", "DW_FORM_ref2", "DW_FORM_ref4", "DW_FORM_ref8", "DW_FORM_ref_udata"}
CONSTANT_FORMS = {"DW_FORM_data1", "DW_FORM_data2", "DW_FORM_data4", "DW_FORM_data8", "DW_FORM_sdata",
                  "DW_FORM_udata"}


class PointerTypes:
    """The derived types of one module's translation. `plain(offset)` is the translated
    DIE of a Wasm DIE (possibly still to be filled in)."""

    def __init__(self, dwarf, plain, code_start: int, code_end: int):
        self.dwarf = dwarf
        self.plain = plain
        self.relocation = locations.relocation_expression(code_start, code_end)
        self.relocated: dict[int, Die] = {}
        self.addresses: dict[int, Die] = {}
        self.pending: list[int] = []  # relocated copies still to fill in
        self.unplaced: list[Die] = []  # derived types not yet put in a compile unit
        self._is_pointer: dict[int, bool] = {}
        self._byte_size: dict[int, int | None] = {}

    def wasm_die(self, offset: int):
        return self.dwarf.get_DIE_from_refaddr(offset)

    def is_pointer(self, type_offset: int | None) -> bool:
        """The type, through typedefs and qualifiers, is a pointer or reference."""
        if type_offset is None:
            return False
        known = self._is_pointer.get(type_offset)
        if known is None:
            die = self.wasm_die(type_offset)
            if die.tag in QUALIFIERS:
                known = self.is_pointer(reference(die, "DW_AT_type"))
            else:
                known = die.tag in POINTERS
            self._is_pointer[type_offset] = known
        return known

    def byte_size(self, type_offset: int | None, depth: int = 0) -> int | None:
        """The size of a Wasm DWARF type, None if unknown."""
        if type_offset is None or depth > 16:
            return None
        if type_offset not in self._byte_size:
            self._byte_size[type_offset] = self._compute_byte_size(type_offset, depth)
        return self._byte_size[type_offset]

    def _compute_byte_size(self, type_offset: int, depth: int) -> int | None:
        die = self.wasm_die(type_offset)
        size = die.attributes.get("DW_AT_byte_size")
        if size is not None and size.form in CONSTANT_FORMS:
            return size.value
        if die.tag in POINTERS:
            return 4
        if die.tag in QUALIFIERS:
            return self.byte_size(reference(die, "DW_AT_type"), depth + 1)
        if die.tag == "DW_TAG_array_type":
            total = self.byte_size(reference(die, "DW_AT_type"), depth + 1)
            for subrange in die.iter_children():
                count = subrange.attributes.get("DW_AT_count")
                upper = subrange.attributes.get("DW_AT_upper_bound")
                if count is not None and count.form in CONSTANT_FORMS:
                    total = total * count.value if total is not None else None
                elif upper is not None and upper.form in CONSTANT_FORMS:
                    total = total * (upper.value + 1) if total is not None else None
                else:
                    return None
            return total
        return None

    # ---- rewriting translated DIEs -------------------------------------------------------

    def rewrite_pointer(self, wasm, die: Die) -> None:
        """A pointer type: native size, pointing at the relocated target."""
        dropped = (AT["DW_AT_type"], AT["DW_AT_byte_size"], AT["DW_AT_address_class"])
        die.attributes = [a for a in die.attributes if a[0] not in dropped]
        target = reference(wasm, "DW_AT_type")
        if target is None:
            return
        if self.wasm_die(target).tag == "DW_TAG_subroutine_type":  # a table index: no target
            die.add(AT["DW_AT_type"], FORM_REFERENCE, self.plain(target))
        else:
            die.add(AT["DW_AT_type"], FORM_REFERENCE, self.relocated_type(target))

    def rewrite_member(self, wasm, die: Die) -> None:
        """A pointer member: a 32-bit bit-field of the native pointer type."""
        if not self.is_pointer(reference(wasm, "DW_AT_type")):
            return
        location = wasm.attributes.get("DW_AT_data_member_location")
        if location is not None and location.form not in CONSTANT_FORMS:
            return
        offset = location.value if location is not None else 0
        die.attributes = [a for a in die.attributes if a[0] != AT["DW_AT_data_member_location"]]
        die.add(AT["DW_AT_bit_size"], DW_FORM_data1, 32)
        die.add(AT["DW_AT_data_bit_offset"], DW_FORM_udata, 8 * offset)

    def rewrite_array(self, wasm, die: Die) -> None:
        """An array of pointers: of 4-byte address types."""
        element = reference(wasm, "DW_AT_type")
        if self.is_pointer(element):
            die.attributes = [a for a in die.attributes if a[0] != AT["DW_AT_type"]]
            die.add(AT["DW_AT_type"], FORM_REFERENCE, self.address_type(element))

    # ---- derived types -------------------------------------------------------------------

    def relocated_type(self, offset: int) -> Die:
        """The copy of a type that describes objects in linear memory."""
        die = self.relocated.get(offset)
        if die is None:
            die = self.relocated[offset] = Die(0)
            self.pending.append(offset)
        return die

    def address_type(self, offset: int) -> Die:
        die = self.addresses.get(offset)
        if die is None:
            die = self.addresses[offset] = Die(TAG["DW_TAG_base_type"])
            die.add(AT["DW_AT_name"], DW_FORM_strp, self.type_name(offset))
            die.add(AT["DW_AT_encoding"], DW_FORM_data1, DW_ATE_address)
            die.add(AT["DW_AT_byte_size"], DW_FORM_data1, 4)
            self.unplaced.append(die)
        return die

    def place(self, unit_root: Die) -> None:
        """Fill in the relocated copies requested so far (their plain types are complete
        now) and put them, and new address types, in `unit_root`."""
        waiting = []  # copies of types in units not translated yet (cross-unit references)
        while self.pending:
            offset = self.pending.pop()
            if self.plain(offset).tag == 0:
                waiting.append(offset)
                continue
            self._fill(self.relocated[offset], offset)
            unit_root.children.append(self.relocated[offset])
        self.pending = waiting
        unit_root.children += self.unplaced
        self.unplaced.clear()

    def _fill(self, copy: Die, offset: int) -> None:
        """gdb 13 resolves DW_AT_data_location on structures, unions and arrays only (on a
        scalar type it fails an assertion), so a scalar in linear memory is described as a
        subrange of its type, which gdb reads and prints as an integer, and a float as a
        structure holding it (see unwind/README.md)."""
        wasm, plain = self.wasm_die(offset), self.plain(offset)
        relocation = (AT["DW_AT_data_location"], DW_FORM_exprloc, self.relocation)
        if wasm.tag in QUALIFIERS:
            copy.tag = plain.tag
            copy.attributes = [a for a in plain.attributes if a[0] != AT["DW_AT_type"]]
            target = reference(wasm, "DW_AT_type")
            if target is not None:
                copy.add(AT["DW_AT_type"], FORM_REFERENCE, self.relocated_type(target))
        elif wasm.tag in AGGREGATES:
            copy.tag = plain.tag
            copy.attributes = list(plain.attributes)
            copy.children = [_copy_tree(child) for child in plain.children]
            if not any(a[0] == AT["DW_AT_declaration"] for a in plain.attributes):
                copy.attributes.append(relocation)
        elif wasm.tag in POINTERS:
            self._integer_range(copy, self.address_type(offset), False, relocation)
        elif wasm.tag == "DW_TAG_enumeration_type":
            self._integer_range(copy, plain, _signed_enumeration(wasm), relocation)
        elif wasm.tag == "DW_TAG_base_type" and _encoding(wasm) in FLOAT_ENCODINGS:
            copy.tag = TAG["DW_TAG_structure_type"]
            copy.add(AT["DW_AT_name"], DW_FORM_strp, self.type_name(offset))
            copy.add(AT["DW_AT_byte_size"], DW_FORM_data1, self.byte_size(offset) or 0)
            member = copy.child(Die(TAG["DW_TAG_member"]))
            member.add(AT["DW_AT_name"], DW_FORM_strp, "value")
            member.add(AT["DW_AT_type"], FORM_REFERENCE, plain)
            member.add(AT["DW_AT_data_member_location"], DW_FORM_data1, 0)
            copy.attributes.append(relocation)
        elif wasm.tag == "DW_TAG_base_type":
            self._integer_range(copy, plain, _encoding(wasm) in SIGNED_ENCODINGS, relocation)
        else:  # function and unspecified types: nothing to read
            copy.tag = plain.tag
            copy.attributes = list(plain.attributes)

    def _integer_range(self, copy: Die, base: Die, signed: bool, relocation: tuple) -> None:
        """A subrange of `base` named as it is; its lower bound sets its signedness."""
        size = next((a[2] for a in base.attributes if a[0] == AT["DW_AT_byte_size"]), None)
        if size not in (1, 2, 4, 8):  # nothing to read (void) or nothing gdb reads as an integer
            copy.tag, copy.attributes = base.tag, list(base.attributes)
            return
        copy.tag = TAG["DW_TAG_subrange_type"]
        name = next((a[2] for a in base.attributes if a[0] == AT["DW_AT_name"]), None)
        if name is not None:
            copy.add(AT["DW_AT_name"], DW_FORM_strp, name)
        copy.add(AT["DW_AT_type"], FORM_REFERENCE, base)
        copy.add(AT["DW_AT_lower_bound"], DW_FORM_sdata, -(1 << (8 * size - 1)) if signed else 0)
        copy.attributes.append(relocation)

    def type_name(self, offset: int | None, depth: int = 0) -> str:
        """The C spelling of a Wasm DWARF type, for naming address types."""
        if offset is None:
            return "void"
        die = self.wasm_die(offset)
        attribute = die.attributes.get("DW_AT_name")
        name = attribute.value.decode("utf-8", "replace") if attribute is not None else None
        target = reference(die, "DW_AT_type")
        if depth > 8:
            return name or "?"
        if die.tag in POINTERS:
            inner = self.type_name(target, depth + 1)
            return inner + ("*" if inner.endswith("*") else " *")
        if die.tag in ("DW_TAG_const_type", "DW_TAG_volatile_type"):
            qualifier = "const" if die.tag == "DW_TAG_const_type" else "volatile"
            return f"{qualifier} {self.type_name(target, depth + 1)}"
        if die.tag == "DW_TAG_subroutine_type":
            return f"{self.type_name(target, depth + 1)} ()"
        keyword = {"DW_TAG_structure_type": "struct", "DW_TAG_union_type": "union",
                   "DW_TAG_enumeration_type": "enum"}.get(die.tag)
        if keyword and name:
            return f"{keyword} {name}"
        return name or "?"


def reference(die, name: str) -> int | None:
    """The .debug_info offset a reference attribute points at."""
    attribute = die.attributes.get(name)
    if attribute is None:
        return None
    if attribute.form in UNIT_REFERENCE_FORMS:
        return die.cu.cu_offset + attribute.raw_value
    if attribute.form == "DW_FORM_ref_addr":
        return attribute.raw_value
    return None


def _encoding(die) -> int | None:
    attribute = die.attributes.get("DW_AT_encoding")
    return attribute.value if attribute is not None else None


def _signed_enumeration(die) -> bool:
    """An enumeration is signed if its underlying type is, or if a value is negative."""
    for child in die.iter_children():
        value = child.attributes.get("DW_AT_const_value")
        if value is not None and value.form == "DW_FORM_sdata" and value.value < 0:
            return True
    return False


def _copy_tree(die: Die) -> Die:
    copy = Die(die.tag, list(die.attributes))
    copy.children = [_copy_tree(child) for child in die.children]
    return copy
