"""Source-level stepping where gdb alone would stop in the engine's stubs.

gdb steps across continuation switches by itself: `next` over a line that resumes a
continuation stops at the resumer's next line once the continuation suspends or returns;
`step` on a `resume` stops at the first line the continuation runs; a step off the end of a
continuation's outermost function lands on the resumer's next line. It single-steps
through the start stub and the switch stubs (native and libcall) because their frames are
signal frames, and steps over the other stubs, which have no line info. Three cases stop
inside a stub, and this module finishes them:

* `finish` in a continuation's outermost function returns into the start stub, shown as
  the boundary. A `hook-finish` selects the boundary frame first, so that `finish` runs
  until the resumer continues, and stops there, after its `resume`.
* `until` and `advance` in a continuation's outermost function stop in the start stub when
  the function returns first (gdb stops in the caller, which is the stub): the command goes
  on as `finish` from there, to the resumer.
* a step, `finish`, `until` or `advance` that leaves the outermost Wasm frame returns into
  the entry trampoline, which has no line info, and gdb stops there. The Wasm call is over:
  the program continues.

The hooks are gdb's command hooks (`define hook-finish`), which run before the command
whether it is typed or sent through MI (`-exec-finish`); they replace hooks of the same
name the user defined before the plugin was loaded.
"""

from __future__ import annotations

import gdb

START_STUB = "stackstitch_continuation_start"  # engine/compiler/stubs.py
ENTRY_STUB = "stackstitch_entry"
SOURCE_COMMANDS = ("next", "step", "until", "advance", "finish")

_source_command_running = False


def before_source_command() -> None:
    """A source-level execution command is about to run."""
    global _source_command_running
    _source_command_running = True


def before_finish() -> None:
    """In a continuation's outermost function, finish the boundary frame instead."""
    before_source_command()
    try:
        caller = gdb.selected_frame().older()
        if caller is not None and caller.type() == gdb.SIGTRAMP_FRAME and caller.name() == START_STUB:
            caller.select()
    except gdb.error:  # no process or no frame: `finish` itself says so
        pass


def after_stop(_event) -> None:
    """A source-level command that ended in the entry trampoline goes on running; one that
    ended in the start stub goes on to the resumer."""
    global _source_command_running
    if not _source_command_running:
        return
    _source_command_running = False
    try:
        stub = gdb.selected_frame().name()
    except gdb.error:
        return
    if stub == ENTRY_STUB:
        gdb.post_event(lambda: gdb.execute("continue"))
    elif stub == START_STUB:
        gdb.post_event(lambda: gdb.execute("finish"))


def forget(_event) -> None:
    global _source_command_running
    _source_command_running = False


def register() -> None:
    for command in SOURCE_COMMANDS:
        action = "before_finish" if command == "finish" else "before_source_command"
        gdb.execute(f"define hook-{command}\n"
                    f"python from stackstitch.gdb_plugin import stepping; stepping.{action}()\nend")
    gdb.events.stop.connect(after_stop)
    gdb.events.exited.connect(forget)
