"""Printing C values that live in Wasm linear memory as gdb prints native C.

The JIT object describes a scalar in linear memory as a subrange of its type, and a float
there as a structure holding it (unwind/wasmpointers.py): gdb 13 only relocates aggregates
and subranges into linear memory. Without this module gdb prints them correctly but
plainly (`104` for a char, `{value = 2.5}` for a double, `0x10006f0` for a `char *`).
With it: `104 'h'`, `2.5`, `0x10006f0 "hello"`, and `ptype` names `int`, not
`<range type>`. C compilers never emit subrange types outside array bounds, so such a
type here is always one of ours.
"""

from __future__ import annotations

import gdb
import gdb.printing
import gdb.types

NAME = "stackstitch-linear-memory"
_CHAR_CODES = (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_CHAR)


def linear_scalar(type_) -> bool:
    """A subrange standing for a scalar in linear memory: named as its target type."""
    return type_.code == gdb.TYPE_CODE_RANGE and type_.name is not None and type_.target().name == type_.name


def linear_float(type_) -> bool:
    """A structure standing for a float in linear memory: one member `value`."""
    if type_.code != gdb.TYPE_CODE_STRUCT or type_.name is None:
        return False
    fields = type_.fields()
    return len(fields) == 1 and fields[0].name == "value" and fields[0].type.name == type_.name


def _is_char(type_) -> bool:
    type_ = type_.strip_typedefs()
    return type_.code in _CHAR_CODES and type_.sizeof == 1 and "char" in (type_.name or "")


class ScalarPrinter:
    def __init__(self, value):
        self.value = value

    def to_string(self):
        target = self.value.type.strip_typedefs().target()
        if target.strip_typedefs().code == gdb.TYPE_CODE_PTR:  # a Wasm pointer: its address
            return f"0x{int(self.value) & 0xFFFFFFFF:x}"
        return gdb.Value(int(self.value)).cast(target)


class FloatPrinter:
    def __init__(self, value):
        self.value = value

    def to_string(self):
        return self.value["value"]


class StringPrinter:
    """A `char *` into linear memory: its address (the Wasm one), then the string."""

    def __init__(self, value):
        self.value = value

    def to_string(self):
        address = int(self.value)
        if address == 0:
            return "0x0"
        try:
            first = self.value.dereference()
            native = first.address.cast(first.type.strip_typedefs().target().pointer())
            text = native.format_string()
        except gdb.error as error:
            return f"0x{address:x} <error: {error}>"
        return f"0x{address:x}{text[text.index(' '):]}" if " " in text else f"0x{address:x}"


def lookup(value):
    type_ = value.type.strip_typedefs()
    if linear_scalar(type_):
        return ScalarPrinter(value)
    if linear_float(type_):
        return FloatPrinter(value)
    if type_.code == gdb.TYPE_CODE_PTR:
        target = type_.target().strip_typedefs()
        if linear_scalar(target) and _is_char(target.target()):
            return StringPrinter(value)
    return None


class TypeNames:
    """`ptype`/`whatis` name our subranges (and pointers to them) as their C types."""

    def __init__(self):
        self.name = NAME
        self.enabled = True

    def instantiate(self):
        return self

    def recognize(self, type_):
        depth = 0
        while type_.code == gdb.TYPE_CODE_PTR:
            type_, depth = type_.target(), depth + 1
        if linear_scalar(type_) or linear_float(type_):
            stars = "*" * depth
            return f"{type_.name}{stars}" if type_.name.endswith("*") or not stars else f"{type_.name} {stars}"
        return None


def register() -> None:
    gdb.printing.register_pretty_printer(None, lookup, replace=True)
    gdb.types.register_type_printer(None, TypeNames())
