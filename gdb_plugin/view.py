"""What the debug root says about a stopped process: code, stacks and continuations.

Pure Python over any `read(address, size) -> bytes` (gdb's or lldb's inferior memory, a
core file, `/proc/PID/mem`), so it runs inside gdb's and lldb's own interpreters (the
lldb plugin uses it too). Nothing read is trusted: a failed read raises `ReadFailed` (one
line), and a field that cannot be made sense of prints as `<unknown>`.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field

from stackstitch.engine import layout as L
from stackstitch.engine.layout import StackChunk
from stackstitch.engine.runtime.debugrootreader import (ContinuationFields, DebugRootReader,
                                                        FunctionEntry, InstanceFields, ModuleFields,
                                                        StoreFields)

UNKNOWN = "<unknown>"
MAX_CHAIN = 100_000  # parent links followed before a chain is taken to be a cycle


class ReadFailed(Exception):
    """Memory the debug root points at cannot be read or makes no sense."""


# What reading and decoding untrusted memory can raise.
READ_ERRORS = (ReadFailed, OSError, ValueError, OverflowError, struct.error)


@dataclass(frozen=True)
class Location:
    func_name: str
    wasm_offset: int
    source: str  # the module's name as the engine knows it (may be empty)

    def __str__(self) -> str:
        return f"{self.func_name} @ 0x{self.wasm_offset:x}"


class Function:
    """A function's code range, with its name and address map read on first use."""

    __slots__ = ("entry", "source", "reader", "_name", "_natives", "_offsets")

    def __init__(self, entry: FunctionEntry, source: str, reader: DebugRootReader):
        self.entry, self.source, self.reader = entry, source, reader
        self._name: str | None = None
        self._natives: list[int] | None = None
        self._offsets: list[int] = []

    @property
    def name(self) -> str:
        if self._name is None:
            self._name = self.reader.string(self.entry.name_address)
        return self._name

    def wasm_offset(self, address: int) -> int:
        """The Wasm offset of the instruction at native `address` in this function."""
        if self._natives is None:
            pairs = self.reader.address_map(self.entry)
            self._natives = [native for native, _ in pairs]
            self._offsets = [wasm for _, wasm in pairs]
        k = bisect.bisect_right(self._natives, address) - 1
        return self._offsets[max(k, 0)] if self._offsets else 0


class CodeIndex:
    """Native pcs to Wasm functions and offsets, from every module's function table."""

    def __init__(self, reader: DebugRootReader, modules: list[ModuleFields],
                 instances: list[InstanceFields]):
        by_start: dict[int, Function] = {}
        self.tag_names: dict[int, str] = {}
        instance_names: dict[int, str] = {}  # module record -> the name of an instance of it
        for instance in instances:
            self.tag_names.update(instance.tags)
            instance_names.setdefault(instance.module.address, instance.name)
        for module in modules:
            source = module.source or instance_names.get(module.address, "")
            for entry in reader.functions(module):
                by_start.setdefault(entry.start, Function(entry, source, reader))
        self.starts = sorted(by_start)
        self.functions = [by_start[start] for start in self.starts]

    def function_at(self, pc: int) -> Function | None:
        k = bisect.bisect_right(self.starts, pc) - 1
        if k >= 0 and pc < self.functions[k].entry.end:
            return self.functions[k]
        return None

    def locate(self, pc: int, return_address: bool = True) -> Location | None:
        """The Wasm instruction at `pc`, or before it when `pc` is a return address (or a
        saved resume point, which follows its switch the same way)."""
        address = pc - 1 if return_address else pc
        function = self.function_at(address)
        if function is None:
            return None
        return Location(function.name, function.wasm_offset(address), function.source)

    def name_of_code(self, code: int) -> str | None:
        """The function whose code starts exactly at `code`."""
        k = bisect.bisect_left(self.starts, code)
        return self.functions[k].name if k < len(self.starts) and self.starts[k] == code else None


@dataclass
class Continuation:
    label: str  # how commands name it: its id, prefixed by the store's number if several
    id: int
    record: int
    raw_state: int
    store: "StoreView"
    fields: ContinuationFields
    state: str = UNKNOWN  # fresh | suspended | running
    current: bool = False  # the running stack (innermost)
    owner: "Continuation | None" = None  # suspended inside this one's segment
    func_name: str = UNKNOWN
    parent: str = "-"
    where: str = "-"
    members: list = field(default_factory=list)  # an owner's segment, innermost first

    @property
    def resume_record(self) -> int:
        """The record whose saved context says where this stack continues: a suspended
        segment's innermost one, else its own."""
        return self.fields.top if self.raw_state == L.CONT_SUSPENDED else self.record

    @property
    def stack_range(self) -> tuple[int, int]:
        """[lo, hi) of its stack; (0, 0) for a fresh one, which has none yet."""
        return self.fields.stack_lo, self.fields.stack_hi


class StoreView:
    """One store: its stacks, its stubs' landmarks, and its continuations. It is the
    `StackSpace` the shared stack walker reads this store through."""

    def __init__(self, reader: DebugRootReader, fields: StoreFields, code: CodeIndex, prefix: str,
                 instances: list[InstanceFields], modules: list[ModuleFields]):
        self.reader = reader
        self.fields = fields
        self.code = code
        self.prefix = prefix
        self.instances = instances  # most recent first, as the debug root lists them
        self.modules = modules
        self.entry_return = fields.entry_return
        self.start_return = fields.start_return
        self.fiber_return = fields.fiber_return
        self.main = StackChunk(fields.main_lo, fields.main_hi, None)
        self.chunk_size = fields.stack_size
        self.stacks_per_slab = fields.stacks_per_slab
        count = min(fields.slab_count, MAX_CHAIN)
        self.slabs = sorted(reader.words(fields.slabs, count)) if count else []
        self.current_record = reader.word(fields.runtime + L.RT_CURRENT)
        self._continuations: list[Continuation] | None = None
        self._by_record: dict[int, Continuation] = {}

    # -- stacks --

    def chunk_of(self, address: int) -> StackChunk | None:
        """The stack holding `address`, or None if it is on no stack of this store."""
        if self.main.holds(address, 1):
            return self.main
        return L.chunk_in_slabs(address, self.slabs, self.chunk_size, self.stacks_per_slab)

    def is_record(self, record: int) -> bool:
        chunk = self.chunk_of(record)
        return chunk is not None and chunk.record == record

    def read_words(self, address: int, count: int) -> tuple[int, ...]:
        return self.reader.words(address, count)

    def code_at(self, pc: int) -> "Function | None":
        """The function a return address `pc` returns into."""
        return self.code.function_at(pc - 1)

    def saved_context(self, record: int) -> tuple[int, int]:
        """(pc, fp) where the stack of `record` continues (layout.saved_context)."""
        chunk = self.chunk_of(record)
        if chunk is None:
            raise ReadFailed(f"0x{record:x} is not a continuation record")
        return L.saved_context(self.reader.words, record, self.fiber_return, chunk)

    def saved_registers(self, record: int) -> tuple[int, int, int]:
        """(pc, fp, sp) of the innermost Wasm frame of the stack of `record` while it is not
        running; in libcall mode its sp is above the switch routine's frame."""
        pc, fp = self.saved_context(record)
        sp, saved_pc = self.reader.words(record + L.CR_SP, 3)[::2]
        if self.fiber_return and saved_pc == self.fiber_return:
            sp += 16  # the routine's saved rbp and return address
        return pc, fp, sp

    def record_summary(self, record: int) -> tuple[str, str]:
        """(label, function it was created from) of the continuation whose record is
        `record`, from that record alone (cheaper than listing every continuation)."""
        cont_id, func_ref = self.reader.word(record + L.CR_ID), self.reader.word(record + L.CR_FUNC)
        return f"{self.prefix}{cont_id}", self._created_from(func_ref)

    def site(self, record: int) -> str:
        """Where the stack of `record` continues, as `function @ offset`."""
        try:
            location = self.code.locate(self.saved_context(record)[0])
        except READ_ERRORS:
            return UNKNOWN
        return str(location) if location is not None else UNKNOWN

    # -- continuations --

    def continuations(self) -> list[Continuation]:
        if self._continuations is None:
            self._continuations = self._read_continuations()
        return self._continuations

    def by_record(self, record: int) -> Continuation | None:
        self.continuations()
        return self._by_record.get(record)

    def _read_continuations(self) -> list[Continuation]:
        found = [Continuation(f"{self.prefix}{c.id}", c.id, c.record, c.state, self, c)
                 for c in self.reader.continuations(self.fields)]
        found.sort(key=lambda c: c.id)
        by_record = self._by_record = {c.record: c for c in found}
        for c in found:
            c.func_name = self._created_from(c.fields.func)
            c.state = {L.CONT_FRESH: "fresh", L.CONT_SUSPENDED: "suspended",
                       L.CONT_RUNNING: "running"}.get(c.raw_state, UNKNOWN)
        for owner in (c for c in found if c.raw_state == L.CONT_SUSPENDED):
            owner.members = self._segment(owner, by_record)
            for member in owner.members:
                if member is not owner:
                    member.owner, member.state = owner, "suspended"
        current = by_record.get(self.current_record)
        if current is not None:
            current.current = True
        for c in found:
            c.parent = self._parent_label(c, by_record)
            c.where = self._where(c)
        return found

    def _segment(self, owner: Continuation, by_record: dict) -> list[Continuation]:
        """The stacks suspended together under `owner`, innermost (its top record) first."""
        members, record = [], owner.fields.top
        while len(members) < MAX_CHAIN:
            member = by_record.get(record)
            if member is None:
                return [owner]  # a broken chain: only the owner is known for sure
            members.append(member)
            if member is owner:
                return members
            record = member.fields.parent
        return [owner]

    def _created_from(self, func_ref: int) -> str:
        try:
            code = self.reader.word(func_ref + L.FR_CODE)
        except READ_ERRORS:
            return UNKNOWN
        return self.code.name_of_code(code) or UNKNOWN

    def _parent_label(self, c: Continuation, by_record: dict) -> str:
        """Who resumed it: a continuation id, or `main` for an entry's root record. A fresh
        continuation has none, and a suspended segment's parent link is stale."""
        if c.state == "fresh" or c.raw_state == L.CONT_SUSPENDED:
            return "-"
        parent = c.fields.parent
        if parent in by_record:
            return by_record[parent].label
        try:  # an entry's root record (in the entry trampoline's frame) has no parent
            return "main" if parent and self.reader.word(parent + L.CR_PARENT) == 0 else UNKNOWN
        except READ_ERRORS:
            return UNKNOWN

    def _where(self, c: Continuation) -> str:
        if c.state == "fresh":
            return "not started"
        if c.current:
            return "running now"
        if c.raw_state == L.CONT_SUSPENDED:
            where = self.site(c.fields.top)
            tag = c.fields.tag
            if tag & 1:
                where += " on a switch"
            elif tag:
                where += f" on tag {self.code.tag_names.get(tag, f'0x{tag:x}')}"
            if len(c.members) > 1:
                where += f" (in continuation {c.members[0].label})"
            return where
        where = self.site(c.record)
        if c.owner is not None and c is not c.owner.members[0]:
            inner = c.owner.members[c.owner.members.index(c) - 1]
            where += f" (resuming {inner.label})"
        return where


def continuation_table(continuations: list[Continuation]) -> list[str]:
    """`info continuations` (gdb) and `continuation list` (lldb): one row each."""
    rows = [("", "Id", "State", "Function", "Parent", "Where", "Stack")]
    for c in continuations:
        lo, hi = c.stack_range
        rows.append(("*" if c.current else "", c.label, c.state, c.func_name, c.parent, c.where,
                     f"0x{lo:x}-0x{hi:x}" if hi else "-"))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]) - 1)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]
            for row in rows]


def boundary_line(store: "StoreView", record: int) -> str:
    """The line drawn for the base frame of the stack of `record` (a boundary)."""
    label, func_name = store.record_summary(record)
    return f"── continuation {label}, created from {func_name}"


class ProcessView:
    """Every store of the process as the debug root describes it at one stop (inferior.py
    keeps one until the process runs again). Tables are read when first needed."""

    def __init__(self, read, root_address: int):
        try:
            self.reader = DebugRootReader(read, root_address)
        except ValueError as e:
            raise ReadFailed(str(e)) from None
        stores = self.reader.stores()[:MAX_CHAIN]
        several = len(stores) > 1
        self.stores = []
        for number, fields in enumerate(reversed(stores), 1):  # the list is newest first
            instances = self.reader.instances(fields)[:MAX_CHAIN]
            modules = self.reader.modules(fields)[:MAX_CHAIN]
            code = CodeIndex(self.reader, modules, instances)
            self.stores.append(StoreView(self.reader, fields, code, f"{number}." if several else "",
                                         instances, modules))

    def continuations(self) -> list[Continuation]:
        return [c for store in self.stores for c in store.continuations()]

    def find(self, label: str) -> Continuation | None:
        """By label; a bare id also finds a continuation of the first store."""
        everything = self.continuations()
        for c in everything:
            if c.label == label:
                return c
        return next((c for c in everything if str(c.id) == label), None)

    def store_of_address(self, address: int) -> StoreView | None:
        return next((s for s in self.stores if s.chunk_of(address) is not None), None)

    def locate(self, pc: int, return_address: bool = True) -> Location | None:
        for store in self.stores:
            location = store.code.locate(pc, return_address)
            if location is not None:
                return location
        return None
