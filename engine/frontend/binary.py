"""Decode the Wasm binary format into a `Module`.

Function bodies are not decoded here: the compiler walks their instructions in a single
pass anyway, so the decoder only records where each body's instructions start and end.
That keeps decoding of large modules cheap (the cost is per section entry, not per byte).
Offsets in errors and in the `Module` are offsets into the whole module's bytes.
"""

from __future__ import annotations

from .instructions import F32, F64, HEAP_TYPE, HEAP_TYPES, INDEX, NUM_TYPES, OPCODES, S32, S64
from .module import Data, Element, Export, FunctionBody, Global, Import, Module, Table
from .types import (ArrayType, ContType, FuncType, GlobalType, Limits, MemoryType, RecGroup,
                    RefType, StructType, SubType, TableType, TagType)


class DecodeError(Exception):
    """The module bytes are malformed; `offset` is where decoding stopped."""

    def __init__(self, offset: int, message: str):
        super().__init__(offset, message)
        self.offset = offset
        self.message = message

    def __str__(self) -> str:
        return f"malformed module at offset 0x{self.offset:x}: {self.message}"


# --- LEB128 -------------------------------------------------------------------------------

def _leb(data: bytes, pos: int, end: int, bits: int, signed: bool) -> tuple[int, int]:
    """An unsigned or signed LEB128 of at most `bits` bits: (value, position after it)."""
    result = shift = 0
    start = pos
    while True:
        if pos >= end:
            raise DecodeError(pos, "unexpected end")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
        if shift >= bits:
            raise DecodeError(start, "integer representation too long")
    if not signed:
        if result >> bits:
            raise DecodeError(pos - 1, "integer too large")
        return result, pos
    if shift > bits:
        # The unused high bits of the last byte must all equal the sign bit.
        if result >> (bits - 1) not in (0, (1 << (shift - bits + 1)) - 1):
            raise DecodeError(pos - 1, "integer too large")
    if result >> (shift - 1) & 1:
        result -= 1 << shift
    return result, pos


def _u32(data: bytes, pos: int, end: int) -> tuple[int, int]:
    if pos < end:
        b = data[pos]
        if b < 0x80:
            return b, pos + 1
    return _leb(data, pos, end, 32, False)


def read_u32(data: bytes, pos: int) -> tuple[int, int]:
    """Unsigned 32-bit LEB128 at `pos`: (value, position after it)."""
    return _u32(data, pos, len(data))


def read_u64(data: bytes, pos: int) -> tuple[int, int]:
    return _leb(data, pos, len(data), 64, False)


def read_s32(data: bytes, pos: int) -> tuple[int, int]:
    return _leb(data, pos, len(data), 32, True)


def read_s33(data: bytes, pos: int) -> tuple[int, int]:
    """Signed 33-bit LEB128: block types and type indices in heap/cont types."""
    return _leb(data, pos, len(data), 33, True)


def read_s64(data: bytes, pos: int) -> tuple[int, int]:
    return _leb(data, pos, len(data), 64, True)


# --- Types --------------------------------------------------------------------------------

_SHORTHAND_REFS = {code: RefType(True, heap) for code, heap in HEAP_TYPES.items()}

_PACKED_TYPES = {0x78: "i8", 0x77: "i16"}

_KINDS = ("func", "table", "memory", "global", "tag")

_CODE_SECTION = 10

# Known sections in the order the spec requires them (the tag section sits after memory).
_SECTION_RANK = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11,
                 10: 12, 11: 13}

# Locals per function accepted before a body is even looked at; matches wasmparser's limit
# and keeps a hostile local count from allocating gigabytes.
MAX_LOCALS = 50000

# Instructions allowed in constant expressions (extended-const included).
_CONST_OPS = {"i32.const", "i64.const", "f32.const", "f64.const", "global.get", "ref.null",
              "ref.func", "i32.add", "i32.sub", "i32.mul", "i64.add", "i64.sub", "i64.mul"}

class _Reader:
    """A cursor over `data[pos:end]` (one section or subsection) with Wasm primitives."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int, end: int):
        self.data = data
        self.pos = pos
        self.end = end

    def fail(self, message: str, offset: int | None = None):
        raise DecodeError(self.pos if offset is None else offset, message)

    def byte(self) -> int:
        if self.pos >= self.end:
            self.fail("unexpected end")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def u32(self) -> int:
        pos = self.pos
        if pos < self.end:
            b = self.data[pos]
            if b < 0x80:
                self.pos = pos + 1
                return b
        value, self.pos = _leb(self.data, pos, self.end, 32, False)
        return value

    def u64(self) -> int:
        value, self.pos = _leb(self.data, self.pos, self.end, 64, False)
        return value

    def s32(self) -> int:
        value, self.pos = _leb(self.data, self.pos, self.end, 32, True)
        return value

    def s33(self) -> int:
        value, self.pos = _leb(self.data, self.pos, self.end, 33, True)
        return value

    def s64(self) -> int:
        value, self.pos = _leb(self.data, self.pos, self.end, 64, True)
        return value

    def bytes(self, n: int) -> bytes:
        if n > self.end - self.pos:
            self.fail("unexpected end")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def name(self) -> str:
        n = self.u32()
        start = self.pos
        end = start + n
        if end > self.end:
            self.fail("unexpected end")
        self.pos = end
        try:
            return self.data[start:end].decode("utf-8")
        except UnicodeDecodeError:
            self.fail("malformed UTF-8 encoding", start)

    def count(self) -> int:
        """A vector length; each element takes at least one byte, so cap it by what is left."""
        n = self.u32()
        if n > self.end - self.pos:
            self.fail("unexpected end")
        return n

    def heap_type(self) -> str | int:
        b = self.data[self.pos] if self.pos < self.end else None
        if b in HEAP_TYPES:
            self.pos += 1
            return HEAP_TYPES[b]
        start = self.pos
        index = self.s33()
        if index < 0:
            self.fail("malformed heap type", start)
        return index

    def val_type(self):
        start = self.pos
        b = self.byte()
        t = NUM_TYPES.get(b) or _SHORTHAND_REFS.get(b)
        if t is not None:
            return t
        if b == 0x63 or b == 0x64:
            return RefType(b == 0x63, self.heap_type())
        self.fail("malformed value type", start)

    def ref_type(self) -> RefType:
        start = self.pos
        t = self.val_type()
        if not isinstance(t, RefType):
            self.fail("malformed reference type", start)
        return t

    def storage_type(self):
        b = self.data[self.pos] if self.pos < self.end else None
        if b in _PACKED_TYPES:
            self.pos += 1
            return _PACKED_TYPES[b]
        return self.val_type()

    def field_type(self) -> tuple:
        """(storage type, mutable) of a struct field or array element."""
        storage = self.storage_type()
        return storage, self.mutability()

    def mutability(self) -> bool:
        start = self.pos
        m = self.byte()
        if m > 1:
            self.fail("malformed mutability", start)
        return m == 1

    def result_types(self) -> tuple:
        return tuple(self.val_type() for _ in range(self.count()))

    def composite_type(self):
        start = self.pos
        form = self.byte()
        if form == 0x60:
            params = self.result_types()
            return FuncType(params, self.result_types())
        if form == 0x5F:
            return StructType(tuple(self.field_type() for _ in range(self.count())))
        if form == 0x5E:
            return ArrayType(self.field_type())
        if form == 0x5D:
            index_at = self.pos
            index = self.s33()
            if index < 0:
                self.fail("malformed continuation type", index_at)
            return ContType(index)
        self.fail("malformed composite type", start)

    def sub_type(self) -> SubType:
        form = self.data[self.pos] if self.pos < self.end else None
        if form == 0x50 or form == 0x4F:
            self.pos += 1
            supers = tuple(self.u32() for _ in range(self.count()))
            return SubType(self.composite_type(), final=form == 0x4F, supertypes=supers)
        return SubType(self.composite_type())

    def limits(self) -> Limits:
        start = self.pos
        flags = self.byte()
        if flags > 7:
            self.fail("malformed limits flags", start)
        is64 = bool(flags & 4)
        read = self.u64 if is64 else self.u32
        minimum = read()
        maximum = read() if flags & 1 else None
        return Limits(minimum, maximum, shared=bool(flags & 2), is64=is64)

    def table_type(self) -> TableType:
        element = self.ref_type()
        return TableType(element, self.limits())

    def global_type(self) -> GlobalType:
        valtype = self.val_type()
        return GlobalType(valtype, self.mutability())

    def tag_type(self) -> TagType:
        start = self.pos
        if self.byte() != 0:
            self.fail("malformed tag attribute", start)
        return TagType(self.u32())

    def const_expr(self) -> list:
        """A constant expression up to and including its `end`: [(name, immediate)]."""
        expr = []
        while True:
            start = self.pos
            op = OPCODES[self.byte()]
            if op is not None and op.name == "end":
                return expr
            if op is None or op.name not in _CONST_OPS:
                self.fail(f"unsupported instruction 0x{self.data[start]:02x} in constant expression",
                          start)
            expr.append((op.name, _CONST_IMMEDIATES[op.immediates[0]](self) if op.immediates else None))


_CONST_IMMEDIATES = {
    INDEX: _Reader.u32, S32: _Reader.s32, S64: _Reader.s64,
    F32: lambda r: int.from_bytes(r.bytes(4), "little"),
    F64: lambda r: int.from_bytes(r.bytes(8), "little"),
    HEAP_TYPE: lambda r: RefType(True, r.heap_type()),
}


# --- Sections -----------------------------------------------------------------------------

def _type_section(r: _Reader, m: Module) -> None:
    for _ in range(r.count()):
        if r.pos < r.end and r.data[r.pos] == 0x4E:
            r.pos += 1
            group = RecGroup(len(m.types), [r.sub_type() for _ in range(r.count())])
        else:
            group = RecGroup(len(m.types), [r.sub_type()])
        m.types.extend(group.types)
        m.rec_groups.append(group)


def _import_section(r: _Reader, m: Module) -> None:
    for _ in range(r.count()):
        module = r.name()
        name = r.name()
        start = r.pos
        kind = r.byte()
        if kind == 0:
            desc = r.u32()
        elif kind == 1:
            desc = r.table_type()
        elif kind == 2:
            desc = MemoryType(r.limits())
        elif kind == 3:
            desc = r.global_type()
        elif kind == 4:
            desc = r.tag_type()
        else:
            r.fail("malformed import kind", start)
        m.imports.append(Import(module, name, _KINDS[kind], desc))


def _function_section(r: _Reader, m: Module) -> None:
    m.funcs = [r.u32() for _ in range(r.count())]


def _table_section(r: _Reader, m: Module) -> None:
    for _ in range(r.count()):
        if r.pos < r.end and r.data[r.pos] == 0x40:
            r.pos += 1
            if r.byte() != 0:
                r.fail("malformed table", r.pos - 1)
            ttype = r.table_type()
            m.tables.append(Table(ttype, r.const_expr()))
        else:
            m.tables.append(Table(r.table_type()))


def _memory_section(r: _Reader, m: Module) -> None:
    m.memories = [MemoryType(r.limits()) for _ in range(r.count())]


def _tag_section(r: _Reader, m: Module) -> None:
    m.tags = [r.tag_type() for _ in range(r.count())]


def _global_section(r: _Reader, m: Module) -> None:
    for _ in range(r.count()):
        gtype = r.global_type()
        m.globals.append(Global(gtype, r.const_expr()))


def _export_section(r: _Reader, m: Module) -> None:
    for _ in range(r.count()):
        name = r.name()
        start = r.pos
        kind = r.byte()
        if kind >= len(_KINDS):
            r.fail("malformed export kind", start)
        m.exports.append(Export(name, _KINDS[kind], r.u32()))


def _start_section(r: _Reader, m: Module) -> None:
    m.start = r.u32()


_FUNCREF_NONNULL = RefType(False, "func")


def _element_section(r: _Reader, m: Module) -> None:
    for _ in range(r.count()):
        start = r.pos
        flags = r.u32()
        if flags > 7:
            r.fail("malformed elements segment kind", start)
        # bit 0: passive/declarative, bit 1: explicit table (active) or declarative,
        # bit 2: items are expressions rather than function indices.
        if flags & 1:
            mode = "declarative" if flags & 2 else "passive"
        else:
            mode = "active"
        table = r.u32() if flags & 3 == 2 else 0
        offset = r.const_expr() if mode == "active" else None
        uses_exprs = bool(flags & 4)
        if flags & 3 == 0:
            # Forms 0 and 4 have an implicit element type.
            reftype = RefType(True, "func") if uses_exprs else _FUNCREF_NONNULL
        elif uses_exprs:
            reftype = r.ref_type()
        else:
            kind_at = r.pos
            if r.byte() != 0:
                r.fail("malformed element kind", kind_at)
            reftype = _FUNCREF_NONNULL
        if uses_exprs:
            items = [r.const_expr() for _ in range(r.count())]
        else:
            items = [[("ref.func", r.u32())] for _ in range(r.count())]
        m.elements.append(Element(mode, reftype, items, table, offset))


def _data_count_section(r: _Reader, m: Module) -> None:
    m.data_count = r.u32()


def _code_section(r: _Reader, m: Module) -> None:
    # The hot loop of decoding, one iteration per function: one-byte LEBs and one-byte
    # local types (nearly all of them) are read inline, the rest through the helpers.
    data, end = r.data, r.end
    bodies = m.code
    num_types = NUM_TYPES
    for _ in range(r.count()):
        size = r.u32()
        pos = r.pos
        body_end = pos + size
        if body_end > end:
            r.fail("unexpected end")
        groups, pos = _u32(data, pos, body_end)
        local_types = []
        for _ in range(groups):
            count_at = pos
            if pos + 1 < body_end and data[pos] < 0x80 and data[pos + 1] in num_types:
                count = data[pos]
                t = num_types[data[pos + 1]]
                pos += 2
            else:
                count, pos = _u32(data, pos, body_end)
                sub = _Reader(data, pos, body_end)
                t = sub.val_type()
                pos = sub.pos
            if len(local_types) + count > MAX_LOCALS:
                raise DecodeError(count_at, "too many locals")
            local_types += [t] * count
        if pos >= body_end or data[body_end - 1] != 0x0B:
            r.fail("function body must end with `end`", body_end - 1)
        bodies.append(FunctionBody(local_types, pos, body_end))
        r.pos = body_end


def _data_section(r: _Reader, m: Module) -> None:
    for _ in range(r.count()):
        start = r.pos
        flags = r.u32()
        if flags == 0:
            offset = r.const_expr()
            m.datas.append(Data("active", r.bytes(r.u32()), 0, offset))
        elif flags == 1:
            m.datas.append(Data("passive", r.bytes(r.u32())))
        elif flags == 2:
            memory = r.u32()
            offset = r.const_expr()
            m.datas.append(Data("active", r.bytes(r.u32()), memory, offset))
        else:
            r.fail("malformed data segment kind", start)


_SECTIONS = {1: _type_section, 2: _import_section, 3: _function_section, 4: _table_section,
             5: _memory_section, 6: _global_section, 7: _export_section, 8: _start_section,
             9: _element_section, 10: _code_section, 11: _data_section,
             12: _data_count_section, 13: _tag_section}


def _name_map(r: _Reader) -> dict[int, str]:
    """Index -> name. One-byte LEB128 numbers (most name lengths and local indices) are
    read inline: a module of thousands of functions has tens of thousands of names."""
    names = {}
    count = r.count()
    data, pos, end = r.data, r.pos, r.end
    for _ in range(count):
        if pos < end and data[pos] < 0x80:
            index = data[pos]
            pos += 1
        else:
            r.pos = pos
            index = r.u32()
            pos = r.pos
        if pos < end and data[pos] < 0x80:
            n = data[pos]
            pos += 1
        else:
            r.pos = pos
            n = r.u32()
            pos = r.pos
        if pos + n > end:
            r.fail("unexpected end", pos)
        try:
            names[index] = data[pos:pos + n].decode("utf-8")
        except UnicodeDecodeError:
            r.fail("malformed UTF-8 encoding", pos)
        pos += n
    r.pos = pos
    return names


# The extended name section's subsections for tables, memories, globals and tags.
_ENTITY_NAMES = {5: "table", 6: "memory", 7: "global", 11: "tag"}


def _name_section(r: _Reader, m: Module) -> None:
    """Read module, function, local, table, memory, global and tag names; on any defect
    keep none of them.

    The name section is only debug information, so a broken one must not stop a module
    from loading (the spec makes it a custom section for that reason).
    """
    module_name = None
    func_names: dict[int, str] = {}
    local_names: dict[int, dict[int, str]] = {}
    entity_names: dict[str, dict[int, str]] = {}
    try:
        while r.pos < r.end:
            sub_id = r.byte()
            size = r.u32()
            sub = _Reader(r.data, r.pos, r.pos + size)
            if sub.end > r.end:
                return
            if sub_id == 0:
                module_name = sub.name()
            elif sub_id == 1:
                func_names = _name_map(sub)
            elif sub_id == 2:
                local_names = {sub.u32(): _name_map(sub) for _ in range(sub.count())}
            elif sub_id in _ENTITY_NAMES:
                entity_names[_ENTITY_NAMES[sub_id]] = _name_map(sub)
            if sub_id in (0, 1, 2, *_ENTITY_NAMES) and sub.pos != sub.end:
                return
            r.pos = sub.end
    except DecodeError:
        return
    m.name, m.func_names, m.local_names = module_name, func_names, local_names
    m.tag_names = entity_names.pop("tag", {})
    m.entity_names = entity_names


def decode_module(data: bytes) -> Module:
    """Decode a whole module; raises `DecodeError` on malformed input."""
    data = bytes(data)
    if len(data) < 4 or data[:4] != b"\0asm":
        raise DecodeError(0, "magic header not detected")
    if len(data) < 8:
        raise DecodeError(4, "unexpected end")
    if data[4:8] != b"\x01\0\0\0":
        raise DecodeError(4, "unknown binary version")
    m = Module(data)
    pos, end = 8, len(data)
    last_rank = 0
    while pos < end:
        section_at = pos
        section_id = data[pos]
        size, pos = _leb(data, pos + 1, end, 32, False)
        if size > end - pos:
            raise DecodeError(pos, "unexpected end")
        r = _Reader(data, pos, pos + size)
        if section_id == 0:
            name = r.name()
            m.custom_sections.setdefault(name, (r.pos, r.end))
            if name == "name":
                _name_section(r, m)
        else:
            rank = _SECTION_RANK.get(section_id)
            if rank is None:
                raise DecodeError(section_at, f"malformed section id {section_id}")
            if rank <= last_rank:
                raise DecodeError(section_at, "unexpected section: duplicate or out of order")
            last_rank = rank
            if section_id == _CODE_SECTION:
                m.code_section_start = r.pos
            _SECTIONS[section_id](r, m)
            if r.pos != r.end:
                raise DecodeError(r.pos, "section size mismatch")
        pos += size
    if len(m.code) != len(m.funcs):
        raise DecodeError(end, "function and code section have inconsistent lengths")
    if m.data_count is not None and len(m.datas) != m.data_count:
        raise DecodeError(end, "data count and data section have inconsistent lengths")
    return m
