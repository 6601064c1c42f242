"""The `continuation` command for lldb:

    continuation list                 the continuations, as gdb's `info continuations`
    continuation bt [ID]              a continuation's frames up to the boundary line at the
                                      base of its stack; without ID, the thread's backtrace
                                      with a boundary line at every switch
    continuation select ID            select a running continuation's innermost frame
    continuation apply all [COMMAND]  bt (by default), or COMMAND in each running one

A suspended continuation's frames are walked from its saved context by reading memory
(engine/runtime/stackwalk.py), so this works on core files too; a running one's are
lldb's own. lldb 14 has no unwinder API, so a suspended continuation cannot become the
selected frame (gdb's plugin can do that). Errors are one line.
"""

from __future__ import annotations

import shlex
import struct

import lldb

from stackstitch.engine.runtime.stackwalk import Boundary, StackWalk
from stackstitch.gdb_plugin.view import (READ_ERRORS, Continuation, ProcessView, ReadFailed,
                                         boundary_line, continuation_table)

START_STUB = "stackstitch_continuation_start"  # engine/compiler/stubs.py
PAGE = 4096
NO_LINE = 0xFFFFFFFF  # what lldb gives a line entry without a line
USAGE = ("usage: continuation list | continuation bt [ID] | continuation select ID | "
         "continuation apply all [COMMAND]")


class Inferior:
    """The process (or core) lldb has selected, read through SBProcess.ReadMemory."""

    def __init__(self, debugger):
        self.target = debugger.GetSelectedTarget()
        self.process = self.target.GetProcess()
        if not self.process.IsValid():
            raise ReadFailed("no process or core file is being debugged")

    def read(self, address: int, size: int) -> bytes:
        """`size` bytes, or the readable part up to the first page boundary (a string may
        end before it)."""
        for length in (size, min(size, PAGE - address % PAGE)):
            error = lldb.SBError()
            data = self.process.ReadMemory(address, length, error) if address > 0 else None
            if error.Success() and data is not None:
                return bytes(data)
        raise ReadFailed(f"cannot read {size} bytes at 0x{address:x}")

    def view(self) -> ProcessView:
        symbols = self.target.FindSymbols("stackstitch_debug_root")
        if symbols.GetSize() == 0:
            raise ReadFailed("no stackstitch_debug_root symbol: not a `stackstitch run` process "
                             "(or run with --no-gdb-jit, or stopped before the engine loaded)")
        address = symbols.GetContextAtIndex(0).GetSymbol().GetStartAddress().GetLoadAddress(self.target)
        root, = struct.unpack("<Q", self.read(address, 8))
        if not root:
            raise ReadFailed("the engine has not published its debug root yet (no store exists)")
        return ProcessView(self.read, root)

    def source_line(self, pc: int) -> str:
        """` at FILE:LINE` of the instruction before return address `pc`, from lldb's line
        table of the JIT object, else nothing."""
        return where(self.target.ResolveLoadAddress(pc - 1).GetLineEntry())


def where(entry) -> str:
    """` at FILE:LINE` of a line entry, or nothing if it has none."""
    if not entry.IsValid() or not 0 < entry.GetLine() < NO_LINE or not entry.GetFileSpec().GetFilename():
        return ""
    return f" at {entry.GetFileSpec().GetFilename()}:{entry.GetLine()}"


def frame_line(number: int, pc: int, name: str, source: str) -> str:
    """A frame as gdb's plugin prints one: `#N  0xPC in NAME () at FILE:LINE`."""
    return f"#{number:<3}0x{pc:016x} in {name} (){source}"


def suspended_frames(inferior: Inferior, c: Continuation) -> list[str]:
    """A suspended continuation's frames, walked from its saved context."""
    store = c.store
    walk = StackWalk(store, *store.saved_context(c.resume_record), stop_record=c.record)
    lines, number = [], 0
    try:
        for item in walk:
            if isinstance(item, Boundary):
                lines.append(boundary_line(store, item.record))
                continue
            location = store.code.locate(item.pc)
            lines.append(frame_line(number, item.pc, location.func_name, inferior.source_line(item.pc)))
            number += 1
    except READ_ERRORS as e:
        walk.note = f"cannot read the stack: {e}"
    if walk.note:
        lines.append(f"note: the walk stopped early: {walk.note}")
    return lines


def thread_frames(inferior: Inferior, view: ProcessView, thread, c: Continuation | None) -> list[str]:
    """lldb's frames of the thread, a start stub drawn as a boundary line; with `c`, only
    those on `c`'s stack (a running continuation's)."""
    lines = []
    for frame in thread.frames:
        sp = frame.GetSP()
        if c is not None and not c.stack_range[0] <= sp < c.stack_range[1]:
            if lines:
                break
            continue
        store = view.store_of_address(sp)
        chunk = store.chunk_of(sp) if store is not None else None
        if frame.GetFunctionName() == START_STUB and chunk is not None and chunk.record is not None:
            lines.append(boundary_line(store, chunk.record))
            continue
        lines.append(frame_line(frame.GetFrameID(), frame.GetPC(), frame.GetFunctionName() or "??",
                                where(frame.GetLineEntry())))
    return lines


def backtrace(inferior: Inferior, view: ProcessView, c: Continuation) -> list[str]:
    if c.state == "fresh":
        return [f"continuation {c.label} has not started: no frames (created from {c.func_name})"]
    if c.state == "running":
        return thread_frames(inferior, view, inferior.process.GetSelectedThread(), c)
    return suspended_frames(inferior, c)


def find(view: ProcessView, label: str) -> Continuation:
    c = view.find(label)
    if c is None:
        raise ReadFailed(f"no continuation {label} (see `continuation list`)")
    return c


def innermost_frame_index(thread, c: Continuation) -> int:
    for frame in thread.frames:
        if c.stack_range[0] <= frame.GetSP() < c.stack_range[1]:
            return frame.GetFrameID()
    raise ReadFailed(f"continuation {c.label}: lldb's frames do not reach its stack")


def run_command(debugger, command: str, frame=None) -> str:
    """What an lldb command prints, run in `frame` if given."""
    result = lldb.SBCommandReturnObject()
    interpreter = debugger.GetCommandInterpreter()
    if frame is None:
        interpreter.HandleCommand(command, result)
    else:
        interpreter.HandleCommand(command, lldb.SBExecutionContext(frame), result)
    return (result.GetOutput() or "") + (result.GetError() or "")


class ContinuationCommand:
    """`command script add -c` class: lldb calls it with the rest of the command line."""

    def __init__(self, debugger, internal_dict):
        self.debugger = debugger

    def get_short_help(self):
        return "Continuations of stackstitch's Wasm engine: list, bt, select, apply all."

    def get_long_help(self):
        return __doc__

    def __call__(self, debugger, command, exe_ctx, result):
        try:
            result.AppendMessage("\n".join(self.run(debugger, shlex.split(command))))
        except READ_ERRORS as e:  # ReadFailed among them; also a command line shlex cannot split
            result.SetError(f"stackstitch: {e}")
        except Exception as e:  # a bug of ours: still one line
            result.SetError(f"stackstitch: internal error: {type(e).__name__}: {e}")

    def run(self, debugger, words: list[str]) -> list[str]:
        if not words:
            raise ReadFailed(USAGE)
        inferior = Inferior(debugger)
        view = inferior.view()
        verb, rest = words[0], words[1:]
        if verb == "list" and not rest:
            continuations = view.continuations()
            return continuation_table(continuations) if continuations else ["No continuations."]
        if verb == "bt" and len(rest) <= 1:
            if not rest:
                return thread_frames(inferior, view, inferior.process.GetSelectedThread(), None)
            return backtrace(inferior, view, find(view, rest[0]))
        if verb == "select" and len(rest) == 1:
            return self.select(debugger, inferior, find(view, rest[0]))
        if verb == "apply" and rest[:1] == ["all"]:
            return self.apply_all(debugger, inferior, view, " ".join(rest[1:]) or "bt")
        raise ReadFailed(USAGE)

    @staticmethod
    def select(debugger, inferior: Inferior, c: Continuation) -> list[str]:
        if c.state != "running":
            raise ReadFailed(f"continuation {c.label} is {c.state}: lldb cannot select a frame that "
                             f"is not on the thread's chain (`continuation bt {c.label}` lists its frames)")
        thread = inferior.process.GetSelectedThread()
        index = innermost_frame_index(thread, c)
        return [f"[Switching to continuation {c.label} ({c.state}, created from {c.func_name})]",
                run_command(debugger, f"frame select {index}").rstrip()]

    def apply_all(self, debugger, inferior: Inferior, view: ProcessView, command: str) -> list[str]:
        lines = []
        thread = inferior.process.GetSelectedThread()
        for c in view.continuations():
            lines.append(f"\nContinuation {c.label} ({c.state}, created from {c.func_name}):")
            try:
                if command.split()[0] in ("bt", "backtrace"):
                    lines += backtrace(inferior, view, c)
                elif c.state == "running":
                    frame = thread.GetFrameAtIndex(innermost_frame_index(thread, c))
                    lines.append(run_command(debugger, command, frame).rstrip())
                else:
                    lines.append(f"continuation {c.label} is {c.state}: only bt shows it here")
            except READ_ERRORS as e:  # one broken continuation must not hide the others
                lines.append(f"stackstitch: {e}")
        return lines
