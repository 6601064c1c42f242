"""Trap reports' walks: the shared stack walker's frames (engine/stackwalk.py), grouped
by the stack they ran on, named, and with each boundary's resume site and handlers.
"""

from __future__ import annotations

from stackstitch.engine import layout as L
from stackstitch.engine.runtime.stackwalk import Boundary, StackWalk, StoreStacks

from .model import Backtrace, Frame, ResumeSite, Stack
from .symbols import Symbolizer

MAIN_STACK_ID = 0
RECORD_MASK = (1 << L.REVISION_SHIFT) - 1


class Walker:
    def __init__(self, store):
        self.stacks = StoreStacks(store)
        self.symbols = Symbolizer(store)
        stubs = store.stubs
        host = next(s for s in stubs.symbols if s.name == "stackstitch_host_call")
        self.host_call = range(stubs.region.address + host.start, stubs.region.address + host.end)

    # -- starting points --

    def from_trap_site(self, pc: int, fp: int) -> Backtrace:
        """Frames from a trap: `pc` is the return address of the trap stub's call, `fp` the
        rbp of the frame it was called from (Wasm code, or the host-call stub when a host
        function failed; its caller is the Wasm frame that called the host function)."""
        if pc in self.host_call:
            chunk = self.stacks.chunk_of(fp)
            if chunk is None or not chunk.holds(fp, 16):
                return Backtrace(note=f"host call frame 0x{fp:x} is on no known stack")
            fp, pc = self.stacks.read_words(fp, 2)
        return self.walk(pc, fp)

    def suspended(self, cont_ref: int) -> Backtrace:
        """Frames of a suspended continuation, innermost first, from its saved context down
        to its own first function (its stale base frame is not followed)."""
        record = cont_ref & RECORD_MASK
        stacks = self.stacks
        if not stacks.is_fresh_record(record) and stacks.record_chunk(record) is None:
            return Backtrace(note=f"0x{cont_ref:x} is not a continuation of this store")
        state, cont_id = (stacks.read_word(record + field) for field in (L.CR_STATE, L.CR_ID))
        if state == L.CONT_FRESH:  # no frames yet (a fresh record, or a stack just attached)
            trace = Backtrace(note="the continuation has not started yet")
            trace.open_stack(self._describe(record))
            trace.close()
            return trace
        if state != L.CONT_SUSPENDED:
            return Backtrace(note=f"continuation {cont_id} is not suspended")
        top = stacks.read_word(record + L.CR_TOP)
        if stacks.record_chunk(top) is None:
            return Backtrace(note=f"its innermost stack record 0x{top:x} is on no known stack")
        try:
            pc, fp = stacks.saved_context(top)
        except ValueError as e:
            return Backtrace(note=str(e))
        return self.walk(pc, fp, stop_record=record)

    # -- the walk --

    def walk(self, pc: int, fp: int, stop_record: int | None = None) -> Backtrace:
        """Frames from return address `pc` into the frame whose rbp is `fp`, crossing
        continuation boundaries until the host entry (or until leaving `stop_record`)."""
        trace = Backtrace()
        frames = trace.frames
        locate = self.symbols.locate
        walk = StackWalk(self.stacks, pc, fp, stop_record)
        chunk = self.stacks.chunk_of(fp)
        stack = self._describe(chunk.record) if chunk is not None else None
        if stack is not None:
            trace.open_stack(stack)
        crossed = False  # a boundary was passed: the next frame is the resume site
        for item in walk:
            if isinstance(item, Boundary):
                crossed = item.record != stop_record
                continue
            if crossed:
                site = locate(item.pc)
                stack.resumed_at = ResumeSite(site.func_name, site.wasm_offset)
                stack = self._describe(item.chunk.record)
                trace.open_stack(stack)
                crossed = False
            location = locate(item.pc)
            positions = location.positions
            for position in positions[:-1]:  # functions inlined at this pc, innermost first
                frames.append(Frame(location.func_index, position.function or "??", location.wasm_offset,
                                    item.pc, stack.id, position.file, position.line, position.column or None,
                                    inlined=True))
            own = positions[-1] if positions else None
            frames.append(Frame(location.func_index, location.func_name, location.wasm_offset, item.pc, stack.id,
                                *((own.file, own.line, own.column or None) if own else ())))
        trace.note = walk.note or (f"walk stopped after {walk.limit} frames" if walk.truncated else None)
        trace.close()
        self._name_main_stack(trace)
        return trace

    def _describe(self, record: int | None) -> Stack:
        """The stack of continuation `record` (None: the main stack)."""
        if record is None:
            return Stack(MAIN_STACK_ID, "main", None, None)
        fresh = self.stacks.is_fresh_record(record)
        words = self.stacks.read_words(record, (L.FRESH_RECORD_SIZE if fresh else L.CR_SIZE) // 8)
        # A suspended continuation's handler list is left over from its last resume.
        count = 0 if fresh or words[L.CR_STATE // 8] == L.CONT_SUSPENDED else \
            min(words[L.CR_HANDLER_COUNT // 8], L.MAX_HANDLERS)
        handlers = []
        for k in range(count):
            tag = words[L.CR_HANDLERS // 8 + k]
            name = self.symbols.tag_name(tag & ~1)
            handlers.append(f"{name} (switch)" if tag & 1 else name)
        return Stack(words[L.CR_ID // 8], "continuation", self.symbols.func_ref_name(words[L.CR_FUNC // 8]),
                     None, handlers)

    @staticmethod
    def _name_main_stack(trace: Backtrace):
        """The main stack is named after the function the host called: its outermost frame."""
        for stack, frames in trace.groups():
            if stack.kind == "main" and frames:
                stack.func_name = frames[-1].func_name
