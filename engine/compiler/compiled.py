"""What the compiler produces for a module, and its binary form.

A `CompiledModule` is one blob of machine code plus, per function, the tables every other
part reads: the address map (native offset to Wasm offset), the CFI rows, the exception
regions, and the places where the code holds a value that is not the module's own (its
relocations). The code is otherwise position-independent: calls between the module's
functions are rel32 inside the blob, and everything of the runtime is reached through the
vmctx (r15), so placing the blob anywhere needs no patching. The one exception is the
canonical type id a `call_indirect` compares against: it belongs to the store, so each
such 32-bit field is listed (`type_id_fields`) and `placed_for` fills them in.

`to_bytes`/`from_bytes` is the binary form, struct-packed and versioned by the code cache
that stores it (`engine/codecache.py`); child compilers send their part of a module back
in it too. It holds no Python objects: a reader decodes numbers, strings and the few
shapes of CFI rules, never arbitrary types.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence
from itertools import chain

from ..records import record
from .common import TryRegion, no_garbage_collection
from .frames import CfaRule, PointerChain
from .x86 import GPR_NAMES


@record
class CompiledFunction:
    """One function's place in the module's blob and its tables (named tuples: they cost
    less to define at start-up than dataclasses, and nothing changes one once made)."""

    index: int
    start: int  # offset in the module's code blob
    end: int
    addr_map: Sequence  # [(native offset in blob, wasm module offset)], sorted
    cfi_rows: list  # [(native offset in blob, frames.CfaRule)]; AT_CALL holds at `start`
    frame_locals: int  # non-parameter locals (slots at rbp-16-8*j)
    frame_size: int  # rsp = rbp - 8 - frame_size in the body
    tries: list  # [TryRegion], innermost first for nested ones
    # [(blob offset of an imm32 field, module type index)]: the field holds that type's
    # canonical id in the store the code runs in (call_indirect's signature check).
    type_id_fields: list
    events: list  # [(blob offset, layout.EVENT_*)]: for debuggers
    # [(start, end, local index, register name)], blob offsets: where a local a loop pins
    # and writes lives only in that register (its frame slot may be stale), for debug info
    pin_ranges: list


@record
class CompiledModule:
    """A module's code blob and its functions."""

    code: bytes
    functions: list[CompiledFunction]
    # Where the code finds globals, memories etc. (for debug info). Made from the module,
    # so not part of the binary form: a decoded module gets it from `placed_for`.
    vm_layout: object = None

    def placed_for(self, type_ids: list[int], vm_layout) -> CompiledModule:
        """The same module for a store: its type-id fields holding `type_ids` (the store's
        canonical ids, by module type index), its instances laid out as `vm_layout`."""
        code = bytearray(self.code)
        for function in self.functions:
            for at, type_index in function.type_id_fields:
                _I32.pack_into(code, at, type_ids[type_index])
        return CompiledModule(bytes(code), self.functions, vm_layout)

    def address_pairs(self) -> array:
        """Every function's address map in one table of 32-bit numbers: native offset, Wasm
        offset, native offset, ... in function order. A module compiled in one process, or
        decoded, has maps that are views of such a table: then it is that table."""
        maps = [f.addr_map for f in self.functions]
        whole = PairsView.whole_table(maps)
        if whole is not None:
            return whole
        pairs = array("I")
        for m in maps:
            if isinstance(m, PairsView):
                pairs += m.flat()
            else:
                pairs.extend(chain.from_iterable(m))
        return pairs


def code_options(libcall: bool, tracing: bool) -> str:
    """Every option of the compiler that changes the code it makes, as text for a cache
    key (`ModuleCompiler`'s `libcall` and `tracing`). The module's bytes and the engine's
    version are the rest of the key; the store's type ids are not, as the code lists where
    they go (`CompiledFunction.type_id_fields`)."""
    return (f"switching={'libcall' if libcall else 'native'}"
            f"{',tracing' if tracing else ''}")


class FormatError(Exception):
    """Bytes that are not a compiled module in the binary form."""


_I32 = struct.Struct("<i")
_LENGTH = struct.Struct("<Q")
# Per function: index, start, end, frame_locals, frame_size, and how many address-map
# pairs, CFI rows, exception regions, type-id fields, event sites and pin ranges follow in
# their parts.
_FUNCTION = struct.Struct("<11q")
_PARTS = 9
# A pin range's register, by its number in the binary form.
_PIN_REGISTERS = GPR_NAMES + [f"xmm{n}" for n in range(16)]
_PIN_REGISTER_NUMBERS = {name: n for n, name in enumerate(_PIN_REGISTERS)}


def to_bytes(compiled: CompiledModule) -> bytes:
    """The binary form: length-prefixed parts (code, function records, address maps, CFI
    rows, the CFI rules they index, exception regions, type-id fields, event sites, pin
    ranges)."""
    records = bytearray()
    rows, tries, type_fields = array("I"), array("q"), array("I")
    events, pins = array("I"), array("I")
    rules: dict[CfaRule, int] = {}
    try:
        addr = compiled.address_pairs()
        for f in compiled.functions:
            _add_function(f, records, rows, rules, tries, type_fields, events, pins)
    except (TypeError, OverflowError) as e:  # an unhashable rule, a blob over 4 GiB
        raise FormatError(f"no binary form: {e}") from None
    rule_table = bytearray(_LENGTH.pack(len(rules)))
    for rule in rules:
        _encode_value(rule, rule_table)
    out = bytearray()
    for part in (compiled.code, records, addr.tobytes(), rows.tobytes(), rule_table,
                 tries.tobytes(), type_fields.tobytes(), events.tobytes(), pins.tobytes()):
        out += _LENGTH.pack(len(part))
        out += part
    return bytes(out)


def _add_function(f: CompiledFunction, records: bytearray, rows: array, rules: dict,
                  tries: array, type_fields: array, events: array, pins: array):
    """One function's record and its rows (but its address map: address_pairs), appended
    to the parts being built."""
    records += _FUNCTION.pack(f.index, f.start, f.end, f.frame_locals, f.frame_size,
                              len(f.addr_map), len(f.cfi_rows), len(f.tries),
                              len(f.type_id_fields), len(f.events), len(f.pin_ranges))
    for at, rule in f.cfi_rows:
        rows.append(at)
        rows.append(rules.setdefault(rule, len(rules)))
    for region in f.tries:
        tries.extend((region.start, region.end, region.landing, len(region.clauses)))
        for kind, tag in region.clauses:
            tries.extend((kind, -1 if tag is None else tag))
    type_fields.extend(chain.from_iterable(f.type_id_fields))
    events.extend(chain.from_iterable(f.events))
    for start, end, local, reg in f.pin_ranges:
        pins.extend((start, end, local, _PIN_REGISTER_NUMBERS[reg]))


def from_bytes(data: bytes | memoryview, moved_by: int = 0) -> CompiledModule:
    """Decode `to_bytes`'s output; FormatError if it is not well formed. With `moved_by`,
    the functions' offsets are for a bigger blob whose code this one's is at that offset
    (a child compiler's part of a module)."""
    try:
        with no_garbage_collection():
            return _decode(memoryview(data), moved_by)
    except (struct.error, ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise FormatError(f"malformed compiled module: {e}") from None


class TableView(Sequence):
    """Part of a table of a decoded module, made into tuples only when read: indexing,
    slicing and comparing for the views below, which say how to make item k (`_item`)."""

    __slots__ = ()
    _count: int

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, k):
        if isinstance(k, slice):
            return list(self)[k]
        if k < 0:
            k += self._count
        if not 0 <= k < self._count:
            raise IndexError(f"{type(self).__name__} index out of range")
        return self._item(k)

    def __eq__(self, other) -> bool:
        if isinstance(other, (list, TableView)):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return repr(list(self))


class PairsView(TableView):
    """A decoded function's address map or CFI rows: a view of the module's table of
    (native offset, number) pairs that makes its tuples only when they are read (a trap
    report, an observer that has no cached payload), so that a cached module loads fast.
    With `values`, the number indexes that list (CFI rows: the module's rules)."""

    __slots__ = ("_pairs", "_first", "_count", "_delta", "_values")

    def __init__(self, pairs: array, first: int, count: int, delta: int = 0,
                 values: list | None = None):
        self._pairs = pairs  # native, number, native, number, ...
        self._first = first
        self._count = count
        self._delta = delta  # added to every native offset (a part of a module moved)
        self._values = values

    @staticmethod
    def whole_table(maps: list) -> array | None:
        """The table `maps` are views of, if they are all of it, in order and unmoved."""
        if not maps or not all(isinstance(m, PairsView) and m._pairs is maps[0]._pairs
                               and not m._delta and m._values is None for m in maps):
            return None
        pairs = maps[0]._pairs
        return pairs if maps[0]._first == 0 and 2 * sum(map(len, maps)) == len(pairs) else None

    def flat(self) -> array:
        """The pairs as one flat array (native, number, ...), offsets moved by the delta."""
        pairs = self._pairs[self._first:self._first + 2 * self._count]
        if self._delta:
            pairs[0::2] = array(pairs.typecode, [native + self._delta for native in pairs[0::2]])
        return pairs

    def _item(self, k: int) -> tuple:
        at = self._first + 2 * k
        number = self._pairs[at + 1]
        return self._pairs[at] + self._delta, number if self._values is None else self._values[number]

    def __iter__(self):
        end = self._first + 2 * self._count
        natives = self._pairs[self._first:end:2]
        if self._delta:
            natives = [native + self._delta for native in natives]
        numbers = self._pairs[self._first + 1:end:2]
        if self._values is not None:
            numbers = [self._values[number] for number in numbers]
        return zip(natives, numbers)


def _decode(data: memoryview, moved_by: int) -> CompiledModule:
    parts, at = [], 0
    for _ in range(_PARTS):
        (length,) = _LENGTH.unpack_from(data, at)
        at += 8
        if at + length > len(data):
            raise ValueError("a part runs past the end")
        parts.append(data[at:at + length])
        at += length
    if at != len(data):
        raise ValueError("trailing bytes")
    (code, records, addr_part, rows_part, rule_table, tries_part, types_part, events_part,
     pins_part) = parts
    addr, rows, tries, type_fields, events, pins = (_array(kind, part) for kind, part in (
        ("I", addr_part), ("I", rows_part), ("q", tries_part), ("I", types_part),
        ("I", events_part), ("I", pins_part)))
    rules = _decode_rules(rule_table)
    if (len(records) % _FUNCTION.size or len(addr) % 2 or len(rows) % 2 or len(type_fields) % 2
            or len(events) % 2 or len(pins) % 4):
        raise ValueError("a truncated record")
    if max(pins[3::4], default=0) >= len(_PIN_REGISTERS):
        raise ValueError("a pin range names no register")
    if max(rows[1::2], default=-1) >= len(rules):
        raise ValueError("a CFI row names no rule")
    if any(at + 4 > len(code) for at in type_fields[0::2]):
        raise ValueError("a type-id field lies outside the code")
    # Whole tables at once; each function takes its slice.
    all_type_fields = list(zip([at + moved_by for at in type_fields[0::2]], type_fields[1::2]))
    all_events = list(zip([at + moved_by for at in events[0::2]], events[1::2]))
    functions = []
    a = r = t = y = e = p = 0
    for (index, start, end, frame_locals, frame_size, n_addr, n_rows, n_tries, n_types,
         n_events, n_pins) in _FUNCTION.iter_unpack(records):
        if not 0 <= start <= end <= len(code):
            raise ValueError("a function lies outside the code")
        regions = []
        for _ in range(n_tries):
            start_, end_, landing, n_clauses = tries[t:t + 4]
            clauses = [(tries[c], None if tries[c + 1] < 0 else tries[c + 1])
                       for c in range(t + 4, t + 4 + 2 * n_clauses, 2)]
            if len(clauses) != n_clauses or t + 4 + 2 * n_clauses > len(tries):
                raise ValueError("an exception region runs past its part")
            regions.append(TryRegion(start_ + moved_by, end_ + moved_by, landing + moved_by, clauses))
            t += 4 + 2 * n_clauses
        functions.append(CompiledFunction(index, start + moved_by, end + moved_by,
                                          PairsView(addr, 2 * a, n_addr, moved_by),
                                          PairsView(rows, 2 * r, n_rows, moved_by, rules), frame_locals,
                                          frame_size, regions, all_type_fields[y:y + n_types],
                                          all_events[e:e + n_events],
                                          PinRangesView(pins, 4 * p, n_pins, moved_by)))
        a += n_addr
        r += n_rows
        y += n_types
        e += n_events
        p += n_pins
    if (2 * a, 2 * r, t, 2 * y, 2 * e, 4 * p) != (len(addr), len(rows), len(tries),
                                                  len(type_fields), len(events), len(pins)):
        raise ValueError("tables and functions do not match")
    return CompiledModule(bytes(code), functions)


class PinRangesView(TableView):
    """A decoded function's pin ranges: a view of the module's table of (start, end, local,
    register number) quadruples, made into tuples only when read (by the debug info, which
    a cached run usually takes from the cache instead)."""

    __slots__ = ("_numbers", "_first", "_count", "_delta")

    def __init__(self, numbers: array, first: int, count: int, delta: int = 0):
        self._numbers = numbers
        self._first = first
        self._count = count
        self._delta = delta  # added to every start and end (a part of a module moved)

    def _item(self, k: int) -> tuple:
        start, end, local, register = self._numbers[self._first + 4 * k:self._first + 4 * k + 4]
        return start + self._delta, end + self._delta, local, _PIN_REGISTERS[register]

    def __iter__(self):
        numbers, delta = self._numbers, self._delta
        for at in range(self._first, self._first + 4 * self._count, 4):
            yield (numbers[at] + delta, numbers[at + 1] + delta, numbers[at + 2],
                   _PIN_REGISTERS[numbers[at + 3]])


def _array(kind: str, data: memoryview) -> array:
    numbers = array(kind)
    numbers.frombytes(data)  # a ValueError unless a whole number of items
    return numbers


# ---- CFI rules: CfaRule and PointerChain trees of strings, integers, booleans and tuples

_INT, _STR, _TUPLE, _TRUE, _FALSE, _CHAIN, _RULE = range(7)  # value tags
_Q = struct.Struct("<q")
_COUNT = struct.Struct("<I")


def _encode_value(value, out: bytearray):
    if isinstance(value, bool):
        out.append(_TRUE if value else _FALSE)
    elif isinstance(value, int):
        out.append(_INT)
        out += _Q.pack(value)
    elif isinstance(value, str):
        text = value.encode()
        out.append(_STR)
        out += _COUNT.pack(len(text)) + text
    elif isinstance(value, (CfaRule, PointerChain)):
        out.append(_RULE if isinstance(value, CfaRule) else _CHAIN)
        _encode_value(tuple(value), out)
    elif type(value) is tuple:
        out.append(_TUPLE)
        out += _COUNT.pack(len(value))
        for item in value:
            _encode_value(item, out)
    else:
        raise FormatError(f"a CFI rule holds a {type(value).__name__}, which has no binary form")


def _decode_rules(table: memoryview) -> list[CfaRule]:
    (count,) = _LENGTH.unpack_from(table, 0)
    rules, at = [], 8
    for _ in range(count):
        rule, at = _decode_value(table, at)
        if not isinstance(rule, CfaRule):
            raise ValueError("a rule table entry is not a rule")
        rules.append(rule)
    if at != len(table):
        raise ValueError("trailing bytes in the rule table")
    return rules


def _decode_value(data: memoryview, at: int):
    tag = data[at]
    at += 1
    if tag == _INT:
        return _Q.unpack_from(data, at)[0], at + 8
    if tag == _TRUE or tag == _FALSE:
        return tag == _TRUE, at
    if tag == _STR:
        (n,) = _COUNT.unpack_from(data, at)
        return str(data[at + 4:at + 4 + n], "utf-8"), at + 4 + n
    if tag == _TUPLE:
        (n,) = _COUNT.unpack_from(data, at)
        at += 4
        items = []
        for _ in range(n):
            item, at = _decode_value(data, at)
            items.append(item)
        return tuple(items), at
    if tag == _RULE or tag == _CHAIN:
        fields, at = _decode_value(data, at)
        return (CfaRule if tag == _RULE else PointerChain)(*fields), at
    raise ValueError(f"unknown value tag {tag}")
