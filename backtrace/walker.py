"""The stack walker: Wasm frames across continuation boundaries, from a trap or from a
suspended continuation's saved context.

Every Wasm function keeps a standard rbp frame ([rbp] caller's rbp, [rbp+8] return
address), so the frame-pointer chain is exact at every
point where a walk can start (trap sites, calls, switches). A continuation's first
function returns into the start stub, whose base frame at the top of the stack is
rewritten on every resume to hold the resumer's rbp and resume landing: following it
crosses into the resumer. The walk ends at the entry trampoline's return address.

Nothing read from memory is trusted: each frame pointer must lie on a known stack, above
the previous one on the same stack, and a stack is entered at most once. A walk that
breaks a rule stops with a note; the frames found up to there are kept.
"""

from __future__ import annotations

from stackstitch.engine import layout as L

from .model import Backtrace, Frame, ResumeSite, Stack
from .stacks import MAIN_STACK_ID, StackChunk, StackMap, read_record, read_word
from .symbols import Symbolizer

MAX_FRAMES = 1_000_000  # far beyond any real stack: a safety bound, not a display limit
RECORD_MASK = (1 << L.REVISION_SHIFT) - 1


class Walker:
    def __init__(self, store):
        self.stack_map = StackMap(store)
        self.symbols = Symbolizer(store)
        stubs = store.stubs
        self.entry_return = stubs.entry_return_address
        self.start_return = stubs.start_return_address
        self.fiber_return = getattr(stubs, "fiber_return", None)  # libcall switching mode
        host = next(s for s in stubs.symbols if s.name == "stackstitch_host_call")
        self.host_call = range(stubs.region.address + host.start, stubs.region.address + host.end)

    # -- starting points --

    def from_trap_site(self, pc: int, fp: int) -> Backtrace:
        """Frames from a trap: `pc` is the return address of the trap stub's call, `fp` the
        rbp of the frame it was called from (Wasm code, or the host-call stub when a host
        function failed; its caller is the Wasm frame that called the host function)."""
        if pc in self.host_call:
            chunk = self.stack_map.chunk_of(fp)
            if chunk is None or not chunk.holds(fp, 16):
                return Backtrace(note=f"host call frame 0x{fp:x} is on no known stack")
            pc, fp = read_word(fp + 8), read_word(fp)
        return self.walk(pc, fp)

    def suspended(self, cont_ref: int) -> Backtrace:
        """Frames of a suspended continuation, innermost first, from its saved context down
        to its own first function (its stale base frame is not followed)."""
        record = cont_ref & RECORD_MASK
        if self.stack_map.record_chunk(record) is None:
            return Backtrace(note=f"0x{cont_ref:x} is not a continuation of this store")
        words = read_record(record)
        state = words[L.CR_STATE // 8]
        if state == L.CONT_FRESH:
            trace = Backtrace(note="the continuation has not started yet")
            trace.open_stack(self._describe(self.stack_map.record_chunk(record)))
            trace.close()
            return trace
        if state != L.CONT_SUSPENDED:
            return Backtrace(note=f"continuation {words[L.CR_ID // 8]} is not suspended")
        top = words[L.CR_TOP // 8]
        top_chunk = self.stack_map.record_chunk(top)
        if top_chunk is None:
            return Backtrace(note=f"its innermost stack record 0x{top:x} is on no known stack")
        top_words = read_record(top)
        pc, fp = top_words[L.CR_PC // 8], top_words[L.CR_FP // 8]
        if pc == self.fiber_return:  # libcall mode: the switch routine's frame holds the pc
            sp = top_words[L.CR_SP // 8]
            if not top_chunk.holds(sp, 16):
                return Backtrace(note=f"saved stack pointer 0x{sp:x} is outside its stack")
            pc, fp = read_word(sp + 8), read_word(sp)
        return self.walk(pc, fp, stop_record=record)

    # -- the walk --

    def walk(self, pc: int, fp: int, stop_record: int | None = None) -> Backtrace:
        """Frames from return address `pc` into the frame whose rbp is `fp`, crossing
        continuation boundaries until the host entry (or until leaving `stop_record`)."""
        trace = Backtrace()
        frames = trace.frames
        chunk = self.stack_map.chunk_of(fp)
        if chunk is None:
            trace.note = f"frame pointer 0x{fp:x} is on no known stack"
            return trace
        stack = self._describe(chunk)
        trace.open_stack(stack)
        entered = {chunk.lo}
        locate = self.symbols.locate
        entry_return, start_return = self.entry_return, self.start_return
        lo, hi = chunk.lo, chunk.hi
        while True:
            if pc == entry_return:
                break
            if pc == start_return:  # leaving a continuation through its base frame
                if fp != chunk.base_frame:
                    trace.note = f"base frame 0x{fp:x} is not at the top of its stack"
                    break
                if chunk.record == stop_record:
                    break
                pc, fp = read_word(fp + 8), read_word(fp)
                chunk = self.stack_map.chunk_of(fp)
                if chunk is None or not chunk.holds(fp, 16):
                    trace.note = f"the resumer's frame 0x{fp:x} is on no known stack"
                    break
                if chunk.lo in entered:
                    trace.note = f"the resume chain returns to a stack already walked (0x{fp:x})"
                    break
                entered.add(chunk.lo)
                lo, hi = chunk.lo, chunk.hi
                site = locate(pc)
                if site is not None:
                    stack.resumed_at = ResumeSite(site.func_name, site.wasm_offset)
                stack = self._describe(chunk)
                trace.open_stack(stack)
                continue
            if not (lo <= fp and fp + 16 <= hi):
                trace.note = f"frame pointer 0x{fp:x} is outside its stack"
                break
            location = locate(pc)
            if location is None:
                trace.note = f"return address 0x{pc:x} is not in Wasm code"
                break
            frames.append(Frame(location.func_index, location.func_name, location.wasm_offset,
                                pc, stack.id))
            if len(frames) >= MAX_FRAMES:
                trace.note = f"walk stopped after {MAX_FRAMES} frames"
                break
            caller_pc, caller_fp = read_word(fp + 8), read_word(fp)
            if caller_fp <= fp and caller_pc != entry_return:
                trace.note = f"frame pointer chain does not go up the stack at 0x{fp:x}"
                break
            pc, fp = caller_pc, caller_fp
        trace.close()
        self._name_main_stack(trace)
        return trace

    def _describe(self, chunk: StackChunk) -> Stack:
        if chunk.record is None:
            return Stack(MAIN_STACK_ID, "main", None, None)
        words = read_record(chunk.record)
        # A suspended continuation's handler list is left over from its last resume.
        count = 0 if words[L.CR_STATE // 8] == L.CONT_SUSPENDED else \
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
