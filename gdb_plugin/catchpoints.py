"""Catchpoints: `catch wasm-trap`, `catch suspend [TAG]`, `catch resume [ID]`, `catch
cont-new` and `catch switch`, listed by `info wasm catchpoints` and removed by `delete
wasm-catchpoints [N...]`.

Each is a set of gdb breakpoints (internal ones, so that one catchpoint can have any
number of places) at addresses the code already has: the trap stub for traps, the
handler-search stub that every suspend and switch calls, and the event sites the compiler
notes inside each cont.new and resume (DEBUG_ROOT.md, "event sites"). Generated code is
the same with or without them, and with none set nothing is planted: they cost nothing.
Sites of modules compiled later are planted as gdb learns of their code (a new objfile).

A stop prints `Catchpoint N (KIND): what happened`, naming the continuation, then the
frame where it happened (the trap site, the suspend or switch instruction, the resume or
cont.new), selected, with the whole stitched stack intact below it.
"""

from __future__ import annotations

import gdb

from stackstitch.engine import layout as L

from . import inferior
from .commands import one_line_errors
from .view import READ_ERRORS, UNKNOWN, ProcessView, StoreView

TRAP_STUB = "stackstitch_trap"  # engine/compiler/stubs.py
SEARCH_STUB = "stackstitch_handler_search"
REFERENCE_MASK = (1 << L.REVISION_SHIFT) - 1
MASK64 = (1 << 64) - 1
KINDS = {"wasm-trap": "wasm trap", "suspend": "suspend", "resume": "resume",
         "cont-new": "cont-new", "switch": "switch"}
SITE_KINDS = {"resume": L.EVENT_RESUME, "cont-new": L.EVENT_CONT_NEW}
ARGUMENTS = {"suspend": "TAG", "resume": "ID"}


class Catchpoint:
    """One `catch` command's catchpoint and the breakpoints that make it."""

    def __init__(self, number: int, kind: str, argument: str | None):
        self.number, self.kind, self.argument = number, kind, argument
        self.breakpoints: list[gdb.Breakpoint] = []
        self.planted: set[int] = set()  # event-site addresses with a breakpoint
        self.tag_names: dict[int, str] = {}
        self.hits = 0
        self.stub = {"wasm-trap": TRAP_STUB, "suspend": SEARCH_STUB, "switch": SEARCH_STUB}.get(kind)

    @property
    def title(self) -> str:
        return f"Catchpoint {self.number} ({KINDS[self.kind]})"

    def plant_stub(self):
        """A breakpoint on the stub by name, once gdb knows the name (so that no pending
        breakpoint complains first): gdb adds the stubs of every store as locations."""
        if self.stub is not None and not self.breakpoints and symbol_defined(self.stub):
            self.breakpoints.append(PlaceBreakpoint(self, self.stub))

    def plant_sites(self, view: ProcessView):
        """A breakpoint at each event site of our kind not planted yet."""
        kind = SITE_KINDS.get(self.kind)
        if kind is None:
            return
        for store in view.stores:
            for module in store.modules:
                for address, site_kind in store.reader.events(module):
                    if site_kind == kind and address not in self.planted:
                        self.planted.add(address)
                        self.breakpoints.append(PlaceBreakpoint(self, f"*0x{address:x}"))

    def delete(self, sites_only: bool = False):
        """Delete its breakpoints (with `sites_only`, those at event sites: the code they
        were planted in is gone when the program exits)."""
        keep = [b for b in self.breakpoints if sites_only and b.location == self.stub]
        for breakpoint in self.breakpoints:
            if breakpoint not in keep and breakpoint.is_valid():
                breakpoint.delete()
        self.breakpoints = keep
        if sites_only:
            self.planted.clear()

    def wants(self, register) -> bool:
        """Whether the event at this stop is one this catchpoint waits for, from registers
        and a word or two of memory: the debug root is read only to say what happened."""
        if self.kind in ("suspend", "switch"):
            tag = register("rdx")
            if bool(tag & 1) != (self.kind == "switch"):
                return False
            return self.argument is None or self.tag_name(tag & ~1) == self.argument
        if self.kind == "resume" and self.argument is not None and "." not in self.argument:
            return str(inferior.read_word(register("rcx") + L.CR_ID)) == self.argument
        return True

    def tag_name(self, tag: int) -> str | None:
        """A tag record's name, remembered (tag records never move)."""
        if tag not in self.tag_names:
            for store in inferior.process_view().stores:
                self.tag_names.update(store.code.tag_names)
        return self.tag_names.get(tag)

    def describe(self, view: ProcessView, register) -> str | None:
        """What happened (None: not what this catchpoint waits for after all)."""
        store = store_of(view, register("r15"))
        if store is None:
            return None
        if self.kind == "wasm-trap":
            running = store.by_record(store.current_record)
            where = (f"in continuation {running.label}, created from {running.func_name}"
                     if running is not None else "on the main stack")
            return f"{trap_message(store, register('rsi') & 0xFFFFFFFF, register('rdx'))} ({where})"
        if self.kind in ("suspend", "switch"):
            tag = register("rdx")
            name = store.code.tag_names.get(tag & ~1, f"0x{tag & ~1:x}")
            return suspension_message(store, tag, name, register("rbx"))
        if self.kind == "resume":
            c = store.by_record(register("rcx"))
            if self.argument is not None and (c is None or self.argument not in (c.label, str(c.id))):
                return None
            if c is None or c.state == "fresh":
                return f"{name_of(c, register('rcx'))} is resumed (fresh: it starts)"
            return f"{name_of(c, register('rcx'))} is resumed ({c.state}, {c.where})"
        record = register("r9") & REFERENCE_MASK
        return f"{name_of(store.by_record(record), record)} is made by cont.new"


def symbol_defined(name: str) -> bool:
    try:
        gdb.parse_and_eval(f"(unsigned long) &{name}")
    except gdb.error:
        return False
    return True


def store_of(view: ProcessView, vmctx: int) -> StoreView | None:
    """The store whose code runs with this vmctx in r15."""
    try:
        runtime = view.reader.word(vmctx + L.VM_RUNTIME)
    except READ_ERRORS:
        return None
    return next((s for s in view.stores if s.fields.runtime == runtime), None)


def name_of(c, record: int) -> str:
    if c is None:
        return f"continuation record 0x{record:x}"
    return f"continuation {c.label} (created from {c.func_name})"


def trap_message(store: StoreView, word: int, tag: int) -> str:
    """The trap's message as the report will give it (layout.trap_word in esi)."""
    code, memory, size = L.split_trap_word(word)
    message = L.TRAP_MESSAGES.get(code, f"trap {code}")
    detail = store.reader.word(store.fields.runtime + L.RT_TRAP_DETAIL)
    if code == L.TRAP_UNHANDLED:
        return f"unhandled suspension: unhandled tag: {store.code.tag_names.get(tag, UNKNOWN)}"
    if code == L.TRAP_UNINITIALIZED_ELEMENT:
        return f"{message} {detail}"
    if code == L.TRAP_HOST:
        return "a host function failed (its error is reported when the trap reaches the host)"
    if code == L.TRAP_MEMORY_OOB:
        size_word = memory_size_word(store, memory)
        if size_word is not None:
            return (f"{message} (memory fault at wasm address 0x{(detail - size) & MASK64:x} in "
                    f"linear memory of size 0x{store.reader.word(size_word):x})")
    return message


def memory_size_word(store: StoreView, memory: int) -> int | None:
    """Where the trapping instance's memory `memory` keeps its size: the instance is the one
    the trapping frame runs (its vmctx at [rbp - 8])."""
    try:
        frame = gdb.newest_frame()
        if frame.name() == TRAP_STUB:  # the stub has a frame of its own: its caller trapped
            frame = frame.older()
        vmctx = store.reader.word(int(frame.read_register("rbp")) + L.FRAME_VMCTX)
    except (gdb.error, *READ_ERRORS):
        return None
    instance = next((i for i in store.instances if i.vmctx == vmctx), None)
    memories = store.reader.memories(instance) if instance is not None else []
    return memories[memory].size_word if memory < len(memories) else None


def suspension_message(store: StoreView, tag: int, name: str, target: int) -> str:
    """Which continuation suspends (the handler search the stub is about to do, done by
    reading the resume chain), or which switches to which."""
    running = store.by_record(store.current_record)
    handler = handling_record(store, tag)
    suspended = name_of(store.by_record(handler), handler) if handler else None
    if tag & 1:
        return (f"{suspended or 'a stack with no switch handler'} switches to "
                f"{name_of(store.by_record(target), target)} on tag {name}")
    if suspended is None:
        return f"{name_of(running, store.current_record)} suspends on tag {name}, which nothing handles"
    text = f"{suspended} suspends on tag {name}"
    if running is not None and running.record != handler:
        text += f" (from continuation {running.label})"
    return text


def handling_record(store: StoreView, tag: int) -> int | None:
    """The record whose resume handles `tag`, innermost first, as the stub searches."""
    record, seen = store.current_record, 0
    while record and seen < 100_000:
        count = min(store.reader.word(record + L.CR_HANDLER_COUNT), L.MAX_HANDLERS)
        if tag in (store.reader.words(record + L.CR_HANDLERS, count) if count else ()):
            return record
        record, seen = store.reader.word(record + L.CR_PARENT), seen + 1
    return None


class PlaceBreakpoint(gdb.Breakpoint):
    """One place of a catchpoint: stops (silently: the stop event prints) if the event is
    one the catchpoint waits for."""

    def __init__(self, catchpoint: Catchpoint, spec: str):
        super().__init__(spec, internal=True)
        self.silent = True
        self.catchpoint = catchpoint

    def stop(self):
        frame = gdb.newest_frame()

        def register(name: str) -> int:
            return int(frame.read_register(name)) & MASK64

        inferior.forget()  # the program ran since the last view (past internal breakpoints too)
        try:
            if not self.catchpoint.wants(register):
                return False
            message = self.catchpoint.describe(inferior.process_view(), register)
        except (gdb.error, *READ_ERRORS) as e:
            message = f"(stackstitch: {e})"
        if message is None:
            return False
        self.catchpoint.hits += 1
        _reports.append((self.catchpoint, message))
        return True


_catchpoints: dict[int, Catchpoint] = {}
_next_number = 1
_reports: list[tuple[Catchpoint, str]] = []  # stops to print once gdb has stopped


def add(kind: str, argument: str | None) -> Catchpoint:
    global _next_number
    catchpoint = Catchpoint(_next_number, kind, argument)
    _catchpoints[catchpoint.number] = catchpoint
    _next_number += 1
    plant_all()
    return catchpoint


def plant_all(*_event):
    """Plant what can be planted now: quietly nothing while there is no process, stub or
    debug root yet (again at the next new objfile, which is how gdb hears of new code)."""
    for catchpoint in _catchpoints.values():
        catchpoint.plant_stub()
    if not any(c.kind in SITE_KINDS for c in _catchpoints.values()):
        return
    inferior.forget()
    try:
        view = inferior.process_view()
    except READ_ERRORS:
        return
    for catchpoint in _catchpoints.values():
        catchpoint.plant_sites(view)
    inferior.forget()


def forget_sites(_event):
    for catchpoint in _catchpoints.values():
        catchpoint.delete(sites_only=True)


def report(_event):
    """After a catchpoint's stop: say what happened and select the frame it happened in."""
    if not _reports:
        return
    reports = _reports[:]
    _reports.clear()
    for catchpoint, message in reports:
        print(f"{catchpoint.title}: {message}")
    frame = gdb.newest_frame()
    if frame.name() in (TRAP_STUB, SEARCH_STUB) and frame.older() is not None:
        frame = frame.older()  # the trap site, the suspend or switch instruction
    frame.select()
    gdb.execute("frame", from_tty=False)


class Catch(gdb.Command):
    def __init__(self, kind: str, doc: str):
        self.__doc__ = doc
        super().__init__(f"catch {kind}", gdb.COMMAND_BREAKPOINTS)
        self.kind = kind

    @one_line_errors
    def invoke(self, argument, from_tty):
        words = argument.split()
        if len(words) > (1 if self.kind in ARGUMENTS else 0):
            extra = f" [{ARGUMENTS[self.kind]}]" if self.kind in ARGUMENTS else ""
            raise gdb.GdbError(f"usage: catch {self.kind}{extra}")
        catchpoint = add(self.kind, words[0] if words else None)
        print(catchpoint.title + (f" for {words[0]}" if words else ""))


DOCS = {
    "wasm-trap": """Stop where a Wasm trap happens, before anything is unwound.
Usage: catch wasm-trap
Prints the trap's message and selects the trapping frame; bt shows the whole stitched
stack. `stackstitch gdb` sets one unless given --no-catch-trap.""",
    "suspend": """Stop when a continuation suspends (suspend instruction).
Usage: catch suspend [TAG]
Only for tag TAG (its name, as `info continuations` shows tags) if given. Names the
continuation that suspends.""",
    "resume": """Stop when a continuation is resumed (resume, resume_throw), before it runs.
Usage: catch resume [ID]
Only for continuation ID (as `info continuations` lists them) if given.""",
    "cont-new": """Stop when cont.new makes a continuation.
Usage: catch cont-new""",
    "switch": """Stop when a continuation switches to another (switch instruction).
Usage: catch switch""",
}


class InfoCatchpoints(gdb.Command):
    """List the Wasm catchpoints (catch wasm-trap, suspend, resume, cont-new, switch).
Usage: info wasm catchpoints"""

    def __init__(self):
        super().__init__("info wasm catchpoints", gdb.COMMAND_BREAKPOINTS)

    @one_line_errors
    def invoke(self, argument, from_tty):
        if not _catchpoints:
            print("No Wasm catchpoints.")
            return
        print("Num  What                 Hits  Places")
        for c in _catchpoints.values():
            what = KINDS[c.kind] + (f" {c.argument}" if c.argument else "")
            print(f"{c.number:<4} {what:<20} {c.hits:<5} {len(c.breakpoints)}")


class DeleteCatchpoints(gdb.Command):
    """Delete Wasm catchpoints.
Usage: delete wasm-catchpoints [N...]
Without N, all of them."""

    def __init__(self):
        super().__init__("delete wasm-catchpoints", gdb.COMMAND_BREAKPOINTS)

    @one_line_errors
    def invoke(self, argument, from_tty):
        words = argument.split()
        if not all(w.isdigit() and int(w) in _catchpoints for w in words):
            raise gdb.GdbError(f"no Wasm catchpoint {' '.join(words)} (see `info wasm catchpoints`)")
        for number in [int(w) for w in words] or list(_catchpoints):
            _catchpoints.pop(number).delete()


def register():
    for kind, doc in DOCS.items():
        Catch(kind, doc)
    InfoCatchpoints()
    DeleteCatchpoints()
    gdb.events.new_objfile.connect(plant_all)
    gdb.events.exited.connect(forget_sites)
    gdb.events.stop.connect(report)
