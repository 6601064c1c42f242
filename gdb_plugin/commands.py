"""`info continuations`, `continuation ID [COMMAND]` and `continuation apply all COMMAND`.

The model is Go's `info goroutines` / `goroutine N bt`, but reading instead of writing
registers: a continuation's backtrace is walked from its saved context (engine/stackwalk.py),
and the running one's from gdb's own frames. Errors are one line (gdb.GdbError).
"""

from __future__ import annotations

import functools
import re

import gdb

from stackstitch.engine import layout as L
from stackstitch.engine.runtime.stackwalk import MAX_FRAMES, Boundary, StackWalk

from . import inferior
from .view import READ_ERRORS, UNKNOWN, Continuation, ProcessView

LABEL = re.compile(r"\d+(\.\d+)?")
BACKTRACE_COMMANDS = ("bt", "backtrace", "where")


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


def boundary_text(c: Continuation | None, record: int) -> str:
    if c is None:
        return f"── continuation record 0x{record:x} (not a live continuation)"
    text = f"── continuation {c.label}, created from {c.func_name} ({c.state}"
    if c.parent not in ("-", UNKNOWN):
        text += f", resumed by {c.parent}"
    return text + ")"


def source_of(pc: int, fallback: str) -> str:
    """The file gdb's line table names for `pc` (the JIT object's), else the module name."""
    try:
        symtab = gdb.find_pc_line(pc).symtab
    except gdb.error:
        symtab = None
    return symtab.filename if symtab is not None else (fallback or "??")


def frame_line(number: int, pc: int, name: str, where: str) -> str:
    return f"#{number:<3}0x{pc:016x} in {name} (){where}"


def print_backtrace(view: ProcessView, c: Continuation, limit: int):
    if c.state == "fresh":
        print(f"continuation {c.label} has not started: no frames (created from {c.func_name})")
        return
    if c.current:
        print_live_backtrace(view, c, limit)
        return
    pc, fp = c.store.saved_context(c.resume_record)
    walk = StackWalk(c.store, pc, fp, stop_record=c.record, limit=limit)
    number = 0
    try:
        for item in walk:
            if isinstance(item, Boundary):
                print(boundary_text(c.store.by_record(item.record), item.record))
                continue
            location = c.store.code.locate(item.pc)
            print(frame_line(number, item.pc, location.func_name,
                             f" at {source_of(item.pc, location.source)}:{location.wasm_offset}"))
            number += 1
    except READ_ERRORS as e:
        walk.note = f"cannot read the stack: {e}"
    if walk.truncated:
        print("(More stack frames follow...)")
    if walk.note:
        print(f"note: the walk stopped early: {walk.note}")


def print_live_backtrace(view: ProcessView, c: Continuation, limit: int):
    """The running continuation: gdb's frames (its unwinder knows every prologue) from the
    newest down to the start stub at the base of this continuation's stack."""
    lo, hi = c.stack_range
    frame, number = gdb.newest_frame(), 0
    while frame is not None:
        if frame.type() == gdb.SIGTRAMP_FRAME and lo <= int(frame.read_register("rsp")) <= hi:
            print(boundary_text(c, c.record))
            return
        if number == limit:
            print("(More stack frames follow...)")
            return
        pc = frame.pc()
        location = view.locate(pc, return_address=number > 0)
        if location is not None:
            where = f" at {source_of(pc, location.source)}:{location.wasm_offset}"
            name = location.func_name
        else:
            sal = frame.find_sal()
            where = f" at {sal.symtab.filename}:{sal.line}" if sal.symtab is not None else ""
            name = frame.name() or "??"
        print(frame_line(number, pc, name, where))
        number += 1
        frame = frame.older()
    print("note: gdb's unwinder did not reach the base of this continuation's stack")


def set_context_variables(c: Continuation):
    """$_cont_id, $_cont_pc, $_cont_fp, $_cont_sp: where the continuation's stack resumes
    (for the running one, the live registers), for COMMANDs other than bt."""
    if c.current:
        frame = gdb.newest_frame()
        pc, fp, sp = frame.pc(), int(frame.read_register("rbp")), int(frame.read_register("rsp"))
    elif c.state == "fresh":
        pc, fp, sp = c.fields.pc, c.fields.fp, c.fields.sp
    else:
        pc, fp = c.store.saved_context(c.resume_record)
        sp = c.store.reader.word(c.resume_record + L.CR_SP)
    for name, value in (("id", c.id), ("pc", pc), ("fp", fp), ("sp", sp)):
        gdb.set_convenience_variable(f"_cont_{name}", value)


def run_on(view: ProcessView, c: Continuation, command: str):
    name, _, rest = command.strip().partition(" ")
    if name in BACKTRACE_COMMANDS:
        rest = rest.strip()
        if rest and not rest.isdigit():
            raise gdb.GdbError(f"continuation {c.label}: only `bt [N]` is supported here, got {command!r}")
        print_backtrace(view, c, int(rest) if rest else MAX_FRAMES)
        return
    set_context_variables(c)
    gdb.execute(command, from_tty=False)


class InfoContinuations(gdb.Command):
    """List the engine's continuations.
Usage: info continuations
One line each: id (* marks the running one), state (fresh, suspended or running), the
function it was created from, its parent (the continuation or `main` stack that resumed
it), where it continues (function @ Wasm offset, and the tag it suspended on), and its
stack range."""

    def __init__(self):
        super().__init__("info continuations", gdb.COMMAND_STACK)

    @one_line_errors
    def invoke(self, argument, from_tty):
        if argument.strip():
            raise gdb.GdbError("usage: info continuations")
        continuations = inferior.process_view().continuations()
        if not continuations:
            print("No continuations.")
            return
        rows = [("", "Id", "State", "Function", "Parent", "Where", "Stack")]
        for c in continuations:
            lo, hi = c.stack_range
            rows.append(("*" if c.current else "", c.label, c.state, c.func_name, c.parent,
                         c.where, f"0x{lo:x}-0x{hi:x}"))
        widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]) - 1)]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])


class ContinuationCommand(gdb.Command):
    """Run a command against a continuation's stack, suspended ones included.
Usage: continuation ID [COMMAND]
       continuation apply all [COMMAND]
COMMAND defaults to `bt`. `bt [N]` walks the continuation's frames from its saved
context by reading memory (registers are never written, so this works on core files
too), with a boundary line for each continuation stack it crosses. Any other COMMAND runs
as it is, with $_cont_id, $_cont_pc, $_cont_fp and $_cont_sp set to where the
continuation's stack continues, e.g. `continuation 3 x/4gx $_cont_sp`.
IDs are listed by `info continuations`."""

    def __init__(self):
        super().__init__("continuation", gdb.COMMAND_STACK)

    @one_line_errors
    def invoke(self, argument, from_tty):
        words = argument.split(None, 1)
        if not words:
            raise gdb.GdbError("usage: continuation ID [COMMAND] | continuation apply all [COMMAND]")
        if words[0] == "apply":
            target, _, command = (words[1] if len(words) > 1 else "").partition(" ")
            if target != "all":
                raise gdb.GdbError("usage: continuation apply all [COMMAND]")
            self.apply_all(command.strip() or "bt")
            return
        label = words[0]
        if not LABEL.fullmatch(label):
            raise gdb.GdbError(f"invalid continuation id {label!r}: expected a number from "
                               "`info continuations`")
        view = inferior.process_view()
        c = view.find(label)
        if c is None:
            raise gdb.GdbError(f"no continuation {label} (see `info continuations`)")
        run_on(view, c, words[1] if len(words) > 1 else "bt")

    @staticmethod
    def apply_all(command: str):
        view = inferior.process_view()
        for c in view.continuations():
            print(f"\nContinuation {c.label} ({c.state}, created from {c.func_name}):")
            try:
                run_on(view, c, command)
            except (gdb.error, gdb.GdbError, *READ_ERRORS) as e:  # one broken continuation
                print(f"stackstitch: {e}")                           # must not hide the others


def register():
    InfoContinuations()
    ContinuationCommand()
