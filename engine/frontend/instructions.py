"""The encoding of Wasm instructions, in one place: every opcode's name and the kinds of its
immediates, and one reader for function bodies.

The compiler reads immediates through `BodyReader` as it compiles; its dead-code skipper and
its loop pre-scan skip them through the same table; the symbolizer and the tests decode
whole instructions with it. Keeping one table is what keeps those readers from drifting
apart: an immediate skipped with the wrong length makes the next byte an opcode.

Bodies reach this reader only after validation, so it does not check bounds or LEB128
lengths (the module decoder does that for the parts it decodes itself).
"""

from __future__ import annotations

from ..records import record
from .types import RefType

# Kinds of immediates. INDEX covers every u32 immediate: type, function, local, global,
# table, memory, tag, data and element indices, label depths.
INDEX = "index"
S32 = "s32"
S64 = "s64"
F32 = "f32"  # the four bytes of the IEEE encoding, as an unsigned int
F64 = "f64"
BLOCK_TYPE = "blocktype"  # None (no values), a value type, or a type index
MEMARG = "memarg"  # MemArg
BR_TABLE = "br_table"  # (targets, default)
VALTYPES = "valtypes"  # select's vector of value types
HEAP_TYPE = "heaptype"  # an abstract heap type name, or a type index
CATCHES = "catches"  # try_table's clauses: [(kind 0..3, tag or None, label)]
HANDLERS = "handlers"  # resume's clauses: [(tag, label, or None for `switch`)]

NUM_TYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128"}

HEAP_TYPES = {
    0x70: "func", 0x6F: "extern", 0x69: "exn", 0x68: "cont", 0x6E: "any", 0x6D: "eq",
    0x6C: "i31", 0x6B: "struct", 0x6A: "array", 0x71: "none", 0x72: "noextern",
    0x73: "nofunc", 0x74: "noexn", 0x75: "nocont",
}


@record
class Opcode:
    """One instruction of the opcode table: its code, name and immediates."""

    code: int  # the opcode byte; for prefixed instructions, the sub-opcode after 0xFC
    name: str  # the text format's name
    immediates: tuple[str, ...]
    prefix: int | None = None


@record
class MemArg:
    """A memory instruction's immediate: alignment, memory index and offset."""

    align: int  # log2 of the alignment hint
    memory: int
    offset: int


PREFIX_FC = 0xFC


def _table() -> tuple[list[Opcode | None], dict[int, Opcode]]:
    ops: list[Opcode | None] = [None] * 256

    def add(code: int, name: str, *immediates: str):
        ops[code] = Opcode(code, name, immediates)

    add(0x00, "unreachable")
    add(0x01, "nop")
    add(0x02, "block", BLOCK_TYPE)
    add(0x03, "loop", BLOCK_TYPE)
    add(0x04, "if", BLOCK_TYPE)
    add(0x05, "else")
    add(0x08, "throw", INDEX)
    add(0x0A, "throw_ref")
    add(0x0B, "end")
    add(0x0C, "br", INDEX)
    add(0x0D, "br_if", INDEX)
    add(0x0E, "br_table", BR_TABLE)
    add(0x0F, "return")
    add(0x10, "call", INDEX)
    add(0x11, "call_indirect", INDEX, INDEX)  # type, table
    add(0x12, "return_call", INDEX)
    add(0x13, "return_call_indirect", INDEX, INDEX)
    add(0x14, "call_ref", INDEX)
    add(0x15, "return_call_ref", INDEX)
    add(0x1A, "drop")
    add(0x1B, "select")
    add(0x1C, "select", VALTYPES)
    add(0x1F, "try_table", BLOCK_TYPE, CATCHES)
    for code, name in enumerate(("local.get", "local.set", "local.tee", "global.get",
                                 "global.set", "table.get", "table.set"), 0x20):
        add(code, name, INDEX)
    memory_ops = ("i32.load i64.load f32.load f64.load i32.load8_s i32.load8_u i32.load16_s "
                  "i32.load16_u i64.load8_s i64.load8_u i64.load16_s i64.load16_u i64.load32_s "
                  "i64.load32_u i32.store i64.store f32.store f64.store i32.store8 i32.store16 "
                  "i64.store8 i64.store16 i64.store32").split()
    for code, name in enumerate(memory_ops, 0x28):
        add(code, name, MEMARG)
    add(0x3F, "memory.size", INDEX)
    add(0x40, "memory.grow", INDEX)
    add(0x41, "i32.const", S32)
    add(0x42, "i64.const", S64)
    add(0x43, "f32.const", F32)
    add(0x44, "f64.const", F64)
    numeric = """
        i32.eqz i32.eq i32.ne i32.lt_s i32.lt_u i32.gt_s i32.gt_u i32.le_s i32.le_u i32.ge_s i32.ge_u
        i64.eqz i64.eq i64.ne i64.lt_s i64.lt_u i64.gt_s i64.gt_u i64.le_s i64.le_u i64.ge_s i64.ge_u
        f32.eq f32.ne f32.lt f32.gt f32.le f32.ge f64.eq f64.ne f64.lt f64.gt f64.le f64.ge
        i32.clz i32.ctz i32.popcnt i32.add i32.sub i32.mul i32.div_s i32.div_u i32.rem_s i32.rem_u
        i32.and i32.or i32.xor i32.shl i32.shr_s i32.shr_u i32.rotl i32.rotr
        i64.clz i64.ctz i64.popcnt i64.add i64.sub i64.mul i64.div_s i64.div_u i64.rem_s i64.rem_u
        i64.and i64.or i64.xor i64.shl i64.shr_s i64.shr_u i64.rotl i64.rotr
        f32.abs f32.neg f32.ceil f32.floor f32.trunc f32.nearest f32.sqrt f32.add f32.sub f32.mul
        f32.div f32.min f32.max f32.copysign
        f64.abs f64.neg f64.ceil f64.floor f64.trunc f64.nearest f64.sqrt f64.add f64.sub f64.mul
        f64.div f64.min f64.max f64.copysign
        i32.wrap_i64 i32.trunc_f32_s i32.trunc_f32_u i32.trunc_f64_s i32.trunc_f64_u
        i64.extend_i32_s i64.extend_i32_u i64.trunc_f32_s i64.trunc_f32_u i64.trunc_f64_s
        i64.trunc_f64_u f32.convert_i32_s f32.convert_i32_u f32.convert_i64_s f32.convert_i64_u
        f32.demote_f64 f64.convert_i32_s f64.convert_i32_u f64.convert_i64_s f64.convert_i64_u
        f64.promote_f32 i32.reinterpret_f32 i64.reinterpret_f64 f32.reinterpret_i32
        f64.reinterpret_i64 i32.extend8_s i32.extend16_s i64.extend8_s i64.extend16_s
        i64.extend32_s""".split()
    for code, name in enumerate(numeric, 0x45):
        add(code, name)
    assert ops[0xC4].name == "i64.extend32_s"
    add(0xD0, "ref.null", HEAP_TYPE)
    add(0xD1, "ref.is_null")
    add(0xD2, "ref.func", INDEX)
    add(0xD3, "ref.eq")
    add(0xD4, "ref.as_non_null")
    add(0xD5, "br_on_null", INDEX)
    add(0xD6, "br_on_non_null", INDEX)
    add(0xE0, "cont.new", INDEX)
    add(0xE1, "cont.bind", INDEX, INDEX)
    add(0xE2, "suspend", INDEX)
    add(0xE3, "resume", INDEX, HANDLERS)
    add(0xE4, "resume_throw", INDEX, INDEX, HANDLERS)
    add(0xE5, "resume_throw_ref", INDEX, HANDLERS)
    add(0xE6, "switch", INDEX, INDEX)  # continuation type, tag

    fc: dict[int, Opcode] = {}
    saturating = ("i32.trunc_sat_f32_s i32.trunc_sat_f32_u i32.trunc_sat_f64_s "
                  "i32.trunc_sat_f64_u i64.trunc_sat_f32_s i64.trunc_sat_f32_u "
                  "i64.trunc_sat_f64_s i64.trunc_sat_f64_u").split()
    bulk = [("memory.init", 2), ("data.drop", 1), ("memory.copy", 2), ("memory.fill", 1),
            ("table.init", 2), ("elem.drop", 1), ("table.copy", 2), ("table.grow", 1),
            ("table.size", 1), ("table.fill", 1)]
    for sub, name in enumerate(saturating):
        fc[sub] = Opcode(sub, name, (), PREFIX_FC)
    for sub, (name, count) in enumerate(bulk, len(saturating)):
        fc[sub] = Opcode(sub, name, (INDEX,) * count, PREFIX_FC)
    return ops, fc


OPCODES, FC_OPCODES = _table()

# Opcode bytes by name, for the few places that test for one instruction.
BYTE = {op.name: op.code for op in OPCODES if op is not None and op.code != 0x1C}


def _plain_skip(op: Opcode | None) -> tuple[bool, int, int] | None:
    if op is None:
        return None
    kinds = op.immediates
    memarg = kinds[:1] == (MEMARG,)
    if memarg:
        kinds = kinds[1:]
    if all(kind in (INDEX, S32, S64) for kind in kinds):
        return memarg, len(kinds), 0
    if not memarg and len(kinds) == 1 and kinds[0] in (F32, F64):
        return False, 0, 4 if kinds[0] == F32 else 8
    return None


# For each one-byte opcode whose immediates are plain (a memarg, LEB128 numbers, or a
# float's bytes): (a memarg first?, how many LEB128s, how many fixed bytes); None for the
# others. What a scan needs to step over most instructions without decoding them (see
# BodyReader.skip_plain).
PLAIN_SKIPS = [_plain_skip(op) for op in OPCODES]
# Whether each one-byte opcode has no immediates at all (a scan steps over it by one).
NO_IMMEDIATES = [skip == (False, 0, 0) for skip in PLAIN_SKIPS]


class UnknownInstruction(Exception):
    """An opcode outside the table (SIMD, GC objects, threads): the engine does not run it."""

    def __init__(self, offset: int, description: str):
        super().__init__(f"unsupported instruction {description} at offset 0x{offset:x}")
        self.offset = offset


class BodyReader:
    """A cursor over validated instruction bytes: `code[pos]` is the next byte to read."""

    def __init__(self, code: bytes, pos: int):
        self.code = code
        self.pos = pos

    # ---- primitives ----------------------------------------------------------------

    def byte(self) -> int:
        b = self.code[self.pos]
        self.pos += 1
        return b

    def u32(self) -> int:
        code = self.code
        pos = self.pos
        b = code[pos]
        pos += 1
        if b < 0x80:
            self.pos = pos
            return b
        result = b & 0x7F
        shift = 7
        while True:
            b = code[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
        self.pos = pos
        return result

    def sleb(self) -> int:
        """A signed LEB128 of any width (s32, s33, s64)."""
        code = self.code
        pos = self.pos
        b = code[pos]
        if b < 0x80:  # one byte: -64..63
            self.pos = pos + 1
            return b - 0x80 if b & 0x40 else b
        high = code[pos + 1]
        if high < 0x80:  # two bytes: -8192..8191
            self.pos = pos + 2
            result = (b & 0x7F) | high << 7
            return result - 0x4000 if high & 0x40 else result
        result = 0
        shift = 0
        while True:
            b = code[pos]
            pos += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
        self.pos = pos
        if b & 0x40:
            result -= 1 << shift
        return result

    def f32_bits(self) -> int:
        bits = int.from_bytes(self.code[self.pos:self.pos + 4], "little")
        self.pos += 4
        return bits

    def f64_bits(self) -> int:
        bits = int.from_bytes(self.code[self.pos:self.pos + 8], "little")
        self.pos += 8
        return bits

    # ---- structured immediates -----------------------------------------------------

    def heaptype(self) -> str | int:
        b = self.code[self.pos]
        if b in HEAP_TYPES:
            self.pos += 1
            return HEAP_TYPES[b]
        return self.sleb()

    def valtype(self) -> str | RefType:
        b = self.byte()
        if b in NUM_TYPES:
            return NUM_TYPES[b]
        if b == 0x63 or b == 0x64:
            return RefType(b == 0x63, self.heaptype())
        return RefType(True, HEAP_TYPES[b])

    def blocktype(self) -> None | str | RefType | int:
        """None for `[] -> []`, a value type for `[] -> [t]`, else a type index.

        The three share one byte space: 0x40 is the empty type, the other one-byte
        negative s33 values (0x40..0x7F) are value types, and a type index is a
        non-negative s33 (first byte below 0x40, or 0x80 and up when it has more bytes).
        """
        b = self.code[self.pos]
        if b == 0x40:
            self.pos += 1
            return None
        if 0x40 < b < 0x80:
            return self.valtype()
        return self.sleb()

    def memarg(self) -> MemArg:
        """Alignment flags, then the memory index when flag bit 6 is set, then the offset."""
        flags = self.u32()
        memory = self.u32() if flags & 0x40 else 0
        return MemArg(flags & ~0x40, memory, self.u32())

    def br_table(self) -> tuple[list[int], int]:
        targets = [self.u32() for _ in range(self.u32())]
        return targets, self.u32()

    def valtypes(self) -> list:
        return [self.valtype() for _ in range(self.u32())]

    def catches(self) -> list[tuple[int, int | None, int]]:
        """try_table clauses: 0 catch TAG L, 1 catch_ref TAG L, 2 catch_all L, 3 catch_all_ref L."""
        clauses = []
        for _ in range(self.u32()):
            kind = self.byte()
            tag = self.u32() if kind in (0, 1) else None
            clauses.append((kind, tag, self.u32()))
        return clauses

    def handlers(self) -> list[tuple[int, int | None]]:
        """resume clauses: `0x00 TAG L` (on TAG L), or `0x01 TAG` (on TAG switch)."""
        clauses = []
        for _ in range(self.u32()):
            kind = self.byte()
            tag = self.u32()
            clauses.append((tag, self.u32() if kind == 0 else None))
        return clauses

    # ---- whole instructions --------------------------------------------------------

    def opcode(self) -> Opcode:
        """The next instruction's opcode (the sub-opcode too, for prefixed ones)."""
        offset = self.pos
        b = self.byte()
        if b == PREFIX_FC:
            sub = self.u32()
            op = FC_OPCODES.get(sub)
            if op is None:
                raise UnknownInstruction(offset, f"0xfc {sub}")
            return op
        op = OPCODES[b]
        if op is None:
            raise UnknownInstruction(offset, f"0x{b:02x}")
        return op

    def immediates(self, op: Opcode) -> tuple:
        return tuple(_READERS[kind](self) for kind in op.immediates)

    def skip_plain(self, pos: int) -> int | None:
        """The position after the instruction at `pos` if its immediates are plain
        (PLAIN_SKIPS), else None: the caller reads it through `opcode`."""
        code = self.code
        plain = PLAIN_SKIPS[code[pos]]
        if plain is None:
            return None
        memarg, lebs, fixed = plain
        pos += 1
        if memarg:
            lebs += 3 if code[pos] & 0x40 else 2  # flags, the memory index if flagged, offset
        for _ in range(lebs):
            while code[pos] & 0x80:
                pos += 1
            pos += 1
        return pos + fixed

    def skip_immediates(self, op: Opcode) -> None:
        for kind in op.immediates:
            _SKIPPERS[kind](self)

    def instruction(self) -> tuple[int, Opcode, tuple]:
        """(offset, opcode, immediates) of the next instruction."""
        offset = self.pos
        op = self.opcode()
        return offset, op, self.immediates(op)


def _skip_bytes(n: int):
    def skip(reader: BodyReader):
        reader.pos += n
    return skip


_READERS = {
    INDEX: BodyReader.u32, S32: BodyReader.sleb, S64: BodyReader.sleb,
    F32: BodyReader.f32_bits, F64: BodyReader.f64_bits, BLOCK_TYPE: BodyReader.blocktype,
    MEMARG: BodyReader.memarg, BR_TABLE: BodyReader.br_table, VALTYPES: BodyReader.valtypes,
    HEAP_TYPE: BodyReader.heaptype, CATCHES: BodyReader.catches, HANDLERS: BodyReader.handlers,
}
_SKIPPERS = {**_READERS, F32: _skip_bytes(4), F64: _skip_bytes(8)}


def instructions(code: bytes, start: int, end: int):
    """Every instruction of a validated body whose instructions span code[start:end]."""
    reader = BodyReader(code, start)
    while reader.pos < end:
        yield reader.instruction()
