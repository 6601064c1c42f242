"""The selected continuation: `continuation ID` makes any continuation's innermost frame
gdb's selected frame, so that `bt`, `bt full`, `info frame`, `info locals`, `up`, `down`,
`frame N` and `print` work there as in any frame, on a live process and on a core file.

A running continuation's frames are on the thread's own chain: selecting one selects a
real frame. A suspended continuation's frames are on no chain gdb knows, and gdb 13 cannot
show one without writing registers (`frame view STACK PC` keeps the thread's registers and
is forgotten by the next command). So, while one is selected, an unwinder of ours grafts
its frames onto the thread's chain, reading memory only: frame 0 (the thread's own, drawn
as a line naming the selection) unwinds into the continuation's innermost frame with the
registers its record saved, gdb's DWARF unwinder walks its callers, and the continuation's
own base frame ends the chain. The unwinder is registered only while a suspended
continuation is selected, so it costs nothing otherwise; the selection ends when the
program runs again or with `continuation none`.
"""

from __future__ import annotations

from dataclasses import dataclass

import gdb
from gdb.unwinder import Unwinder, register_unwinder

from stackstitch.engine import layout as L

from .view import Continuation

UNWINDER_NAME = "stackstitch-selected-continuation"


class FrameId:
    """What gdb 13 takes as a frame id: `sp` and `pc` as gdb values."""

    def __init__(self, sp: int, pc: int):
        self.sp, self.pc = _word(sp), _word(pc)


def _word(value: int) -> gdb.Value:
    return gdb.Value(value).cast(gdb.lookup_type("unsigned long"))


@dataclass(frozen=True)
class Graft:
    """A suspended continuation shown on a thread's chain."""

    thread: int  # gdb's global thread number
    label: str
    state: str
    pc: int  # where its innermost frame continues,
    fp: int  # with these rbp and rsp,
    sp: int
    vmctx: int  # and r15, r14 as its function left them
    memory_base: int
    resume_record: int  # the record whose saved context this is
    stop_record: int  # the record whose base frame ends the chain
    start_return: int  # the start stub's return address (a base frame's pc)

    def registers(self) -> dict[str, int]:
        """The innermost frame's registers. rdi and rdx also hold the resume record: the
        CFI of the instructions just before a switch's landing reads the frame from the
        record saved there (engine/compiler/switching.py), and gdb looks a caller's row
        up at pc - 1."""
        return {"rip": self.pc, "rbp": self.fp, "rsp": self.sp, "r15": self.vmctx,
                "r14": self.memory_base, "rdi": self.resume_record, "rdx": self.resume_record}


class GraftUnwinder(Unwinder):
    def __init__(self, graft: Graft):
        super().__init__(UNWINDER_NAME)
        self.graft = graft

    def __call__(self, pending):
        graft = self.graft
        if gdb.selected_thread() is None or gdb.selected_thread().global_num != graft.thread:
            return None
        if pending.level() == 0:  # the thread's frame: its caller is the continuation
            pc = int(pending.read_register("rip"))
            # A stack address below every stack, so that gdb never finds the continuation's
            # frames "inner" to this one, wherever its stack lies.
            info = pending.create_unwind_info(FrameId(1, pc))
            for name, value in graft.registers().items():
                info.add_saved_register(name, _word(value).cast(pending.read_register(name).type))
            return info
        if int(pending.read_register("rbp")) != L.base_frame(graft.stop_record):
            return None
        pc = int(pending.read_register("rip"))
        if pc != graft.start_return:
            return None
        # The continuation's own base frame: its resumer link is stale (it is suspended), so
        # the chain ends here, with a caller at pc 0 (the frame filter hides it).
        info = pending.create_unwind_info(FrameId(graft.stop_record, pc))
        for name, value in (("rip", 0), ("rsp", graft.stop_record), ("rbp", 0)):
            info.add_saved_register(name, _word(value).cast(pending.read_register(name).type))
        return info


_active: GraftUnwinder | None = None
# While `continuation ID bt` runs: the levels of that continuation's frames, first and last.
window: tuple[int, int] | None = None


def graft() -> Graft | None:
    return _active.graft if _active is not None else None


def set_graft(new: Graft | None):
    """Show `new` on its thread's chain (None: no continuation grafted)."""
    global _active
    if _active is not None:
        gdb.frame_unwinders.remove(_active)
        _active = None
    if new is not None:
        _active = GraftUnwinder(new)
        register_unwinder(None, _active, replace=True)
    gdb.invalidate_cached_frames()


def graft_of(c: Continuation) -> Graft:
    """The graft showing suspended continuation `c` on the selected thread."""
    store = c.store
    pc, fp, sp = store.saved_registers(c.resume_record)
    vmctx = store.reader.word(fp + L.FRAME_VMCTX)
    return Graft(gdb.selected_thread().global_num, c.label, c.state, pc, fp, sp, vmctx,
                 store.reader.word(vmctx + L.VM_MEM_BASE), c.resume_record, c.record,
                 store.start_return)


def is_placeholder(frame) -> bool:
    """Frame 0 while a continuation is grafted: the thread's own frame."""
    return _active is not None and frame.level() == 0


def clear(*_event):
    """The program runs (or the selection is dropped): back to the thread's own chain."""
    if _active is not None:
        set_graft(None)


def register():
    for event in ("cont", "exited", "clear_objfiles", "new_inferior"):
        getattr(gdb.events, event).connect(clear)
