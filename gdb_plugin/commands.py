"""`info continuations`, `continuation ID [COMMAND]`, `continuation apply all COMMAND` and
`continuation none`.

The model is gdb's `thread ID [COMMAND]` and Go's `goroutine N bt`, but reading instead of
writing registers: `continuation ID` selects that continuation's innermost frame, suspended
ones included (selection.py), and `continuation ID COMMAND` runs COMMAND there, then puts
the selection back. Errors are one line (gdb.GdbError).
"""

from __future__ import annotations

import functools
import re

import gdb

from stackstitch.engine import layout as L
from stackstitch.engine.runtime.stackwalk import StackWalk

from . import inferior, selection
from .view import READ_ERRORS, Continuation, ProcessView, continuation_table

LABEL = re.compile(r"\d+(\.\d+)?")
BACKTRACE_COMMANDS = ("bt", "backtrace", "where")
USAGE = "usage: continuation ID [COMMAND] | continuation apply all [COMMAND] | continuation none"


def one_line_errors(invoke):
    """Turn whatever goes wrong into a one-line gdb error, never a Python traceback."""
    @functools.wraps(invoke)
    def guarded(self, argument, from_tty):
        try:
            return invoke(self, argument, from_tty)
        except gdb.GdbError:
            raise
        except READ_ERRORS as e:
            raise gdb.GdbError(f"stackstitch: {e}") from None
        except gdb.error as e:
            raise gdb.GdbError(str(e)) from None
        except Exception as e:  # a bug of ours: still one line
            raise gdb.GdbError(f"stackstitch: internal error: {type(e).__name__}: {e}") from None
    return guarded


def frame_at_level(level: int):
    frame = gdb.newest_frame()
    while frame is not None and frame.level() < level:
        frame = frame.older()
    return frame


def is_base_frame_of(frame, c: Continuation) -> bool:
    """Whether `frame` is the start stub at the base of `c`'s stack (a boundary line)."""
    return (frame.pc() == c.store.start_return
            and int(frame.read_register("rbp")) == L.base_frame(c.record))


def innermost_frame(c: Continuation):
    """A running continuation's innermost frame on the thread's chain: the first whose
    stack pointer is on its stack."""
    lo, hi = c.stack_range
    frame = gdb.newest_frame()
    while frame is not None:
        if frame.type() == gdb.NORMAL_FRAME and lo <= int(frame.read_register("rsp")) < hi:
            return frame
        frame = frame.older()
    raise gdb.GdbError(f"continuation {c.label}: gdb's frames do not reach its stack")


def check_walkable(c: Continuation):
    """Refuse, in one line, a suspended continuation whose saved context is unusable."""
    walk = StackWalk(c.store, *c.store.saved_context(c.resume_record), stop_record=c.record, limit=1)
    if next(iter(walk), None) is None:
        raise gdb.GdbError(f"continuation {c.label}: cannot show its frames: {walk.note}")


def select(c: Continuation):
    """Make `c`'s innermost frame gdb's selected frame; returns it."""
    if c.state == "fresh":
        raise gdb.GdbError(f"continuation {c.label} has not started: it has no frames "
                           f"(created from {c.func_name})")
    if c.state == "running":
        selection.set_graft(None)
        frame = innermost_frame(c)
    else:
        check_walkable(c)
        selection.set_graft(selection.graft_of(c))
        frame = gdb.newest_frame().older()
    frame.select()
    return frame


def backtrace_window(c: Continuation, first) -> tuple[int, int]:
    """The levels of `c`'s frames: from `first` up to the boundary at its stack's base."""
    frame = first
    while frame is not None:
        if is_base_frame_of(frame, c):
            return first.level(), frame.level()
        frame = frame.older()
    return first.level(), 1 << 30  # gdb's unwinder stops before it: all it has


def set_context_variables(c: Continuation):
    """$_cont_id, $_cont_pc, $_cont_fp, $_cont_sp: where the continuation's stack continues
    (for the running one, the live registers; 0 for a fresh one, which has no stack)."""
    if c.current:
        frame = gdb.newest_frame()
        pc, fp, sp = frame.pc(), int(frame.read_register("rbp")), int(frame.read_register("rsp"))
    elif c.state == "fresh":
        pc, fp, sp = c.fields.pc, c.fields.fp, c.fields.sp
    else:
        pc, fp, sp = c.store.saved_registers(c.resume_record)
    for name, value in (("id", c.id), ("pc", pc), ("fp", fp), ("sp", sp)):
        gdb.set_convenience_variable(f"_cont_{name}", value)


def run_on(c: Continuation, command: str):
    """Run `command` with `c`'s innermost frame selected (a backtrace lists `c`'s frames
    only), then select again what was selected before."""
    set_context_variables(c)
    if c.state == "fresh":
        if command.split()[0] in BACKTRACE_COMMANDS:
            print(f"continuation {c.label} has not started: no frames (created from {c.func_name})")
        else:  # it has no frame: the command sees the selected one (and $_cont_*)
            gdb.execute(command, from_tty=False)
        return
    previous_graft, previous_level = selection.graft(), gdb.selected_frame().level()
    try:
        first = select(c)
        if command.split()[0] in BACKTRACE_COMMANDS:
            selection.window = backtrace_window(c, first)
        gdb.execute(command, from_tty=False)
    finally:
        selection.window = None
        if gdb.selected_thread() is not None and not gdb.selected_thread().is_running():
            if selection.graft() != previous_graft:
                selection.set_graft(previous_graft)
            frame = frame_at_level(previous_level)
            if frame is not None:
                frame.select()


class InfoContinuations(gdb.Command):
    """List the engine's continuations.
Usage: info continuations
One line each: id (* marks the running one), state (fresh, suspended or running), the
function it was created from, its parent (the continuation or `main` stack that resumed
it), where it continues (function @ Wasm offset, and the tag it suspended on), and its
stack range (`-` for a fresh one: it gets its stack when it is first resumed)."""

    def __init__(self):
        super().__init__("info continuations", gdb.COMMAND_STACK)

    @one_line_errors
    def invoke(self, argument, from_tty):
        if argument.strip():
            raise gdb.GdbError("usage: info continuations")
        continuations = inferior.process_view().continuations()
        print("\n".join(continuation_table(continuations)) if continuations else "No continuations.")


class ContinuationCommand(gdb.Command):
    """Select a continuation's innermost frame, or run a command there.
Usage: continuation ID             select it: then bt, info frame, info locals, up, down,
                                  frame N and print work in its frames
       continuation ID COMMAND     run COMMAND there, then select what was selected
       continuation apply all [COMMAND]   the same for every continuation (default: bt)
       continuation none           back to the thread's own frames
Suspended continuations are shown by reading memory, never by writing registers, so all
of this works on core files too; a suspended one stays selected until the program runs.
`bt` run on a continuation lists that continuation's frames only, up to the boundary line
at the base of its stack. $_cont_id, $_cont_pc, $_cont_fp and $_cont_sp are set to where
the continuation's stack continues, e.g. `continuation 3 x/4gx $_cont_sp` (0 for a fresh
one, which has no stack yet).
IDs are listed by `info continuations`."""

    def __init__(self):
        super().__init__("continuation", gdb.COMMAND_STACK)

    @one_line_errors
    def invoke(self, argument, from_tty):
        words = argument.split(None, 1)
        if not words:
            raise gdb.GdbError(USAGE)
        if words[0] == "apply":
            target, _, command = (words[1] if len(words) > 1 else "").partition(" ")
            if target != "all":
                raise gdb.GdbError("usage: continuation apply all [COMMAND]")
            self.apply_all(command.strip() or "bt")
            return
        if words == ["none"]:
            selection.clear()
            gdb.newest_frame().select()
            gdb.execute("frame", from_tty=False)
            return
        label = words[0]
        if not LABEL.fullmatch(label):
            raise gdb.GdbError(f"invalid continuation id {label!r}: expected a number from "
                               "`info continuations`")
        c = find(inferior.process_view(), label)
        if len(words) > 1:
            run_on(c, words[1])
            return
        select(c)
        print(f"[Switching to continuation {c.label} ({c.state}, created from {c.func_name})]")
        gdb.execute("frame", from_tty=False)

    @staticmethod
    def apply_all(command: str):
        for c in inferior.process_view().continuations():
            print(f"\nContinuation {c.label} ({c.state}, created from {c.func_name}):")
            try:
                run_on(c, command)
            except (gdb.error, gdb.GdbError, *READ_ERRORS) as e:  # one broken continuation
                print(f"stackstitch: {e}")                           # must not hide the others


def find(view: ProcessView, label: str) -> Continuation:
    c = view.find(label)
    if c is None:
        raise gdb.GdbError(f"no continuation {label} (see `info continuations`)")
    return c


def register():
    InfoContinuations()
    ContinuationCommand()
    selection.register()
