"""Source-level stepping across continuation switches (gdb through its machine interface),
on tests/data/debug/fibers.c: its fibers switch inside fiber.wat's primitives, whose WAT
lines are source too.

gdb alone: `next` over a host call and over a resume or a suspend, `step` into a `resume`
and a `suspend` and off a continuation's end, `until` and `advance` across a resume,
breakpoints by file:line set before the module is compiled (and hit on every iteration of a
loop). With the plugin: `finish` in a
continuation's outermost function stops in the resumer, and a step off the end of the Wasm
program does not stay in the engine's entry trampoline, nor does an `advance` out of a
continuation stay in its start stub. lldb alone: `next` over a resume and a suspend. gdb
steps the same in both switching modes.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import FIBER_C_SOURCE as C_SOURCE, FIBER_PRIMITIVES as WAT
from sourcedebug import gdb_session, printed_values, run_lldb, source_line

PRELOAD = ("--preload", f"env={WAT}")


def c_line(marker: str) -> int:
    return source_line(C_SOURCE, marker)


def wat_line(marker: str) -> int:
    return source_line(WAT, marker)


class Stepper:
    """A gdb session on the fiber program; each command returns where it stopped."""

    def __init__(self, session):
        self.session = session

    def stop(self, command: str | None) -> tuple:
        """(function, file name, line) of the stop `command` ends in ((reason,) at an exit);
        with no command, of the next stop of execution the plugin started."""
        reply = self.session.run(command) if command else self.session.next_stop(timeout=60)
        stop = reply.result["payload"]
        frame = stop.get("frame")
        if frame is None:
            return (stop.get("reason"),)
        return frame.get("func"), Path(frame.get("file", "")).name or None, int(frame.get("line", 0))

    def caller(self) -> str:
        return self.session.frames(2)[1]["func"]

    def printed(self) -> dict:
        return printed_values(self.session.program_output)

    def pending_breakpoint(self, location: str) -> None:
        breakpoint = self.session.payload(f"-break-insert -f {location}")["bkpt"]
        assert breakpoint.get("pending") == location, breakpoint  # the module is not compiled yet


@pytest.mark.parametrize("mode", ("native", "libcall"))
def test_plain_gdb_steps_across_resume_and_suspend(require_tool, fiber_programs, mode):
    session = gdb_session(require_tool, fiber_programs["O0"], options=(*PRELOAD, f"--switching={mode}"),
                          plugin=False)
    gdb = Stepper(session)
    scale_printf, scale_resume = c_line('printf("scale:'), c_line("scale resumes walk")
    try:
        gdb.pending_breakpoint(f"{C_SOURCE.name}:{scale_printf}")
        assert gdb.stop("run") == ("scale", C_SOURCE.name, scale_printf)
        # the first line of a loop's body: hit again on the next iteration
        assert gdb.stop("continue") == ("scale", C_SOURCE.name, scale_printf)
        session.payload("-break-delete")

        # next over printf (fd_write is a host function, called from a continuation)
        assert gdb.stop("next") == ("scale", C_SOURCE.name, scale_resume)
        assert gdb.printed()["scale", "value"] == "11"
        # next over a resume: walk runs until it yields
        assert gdb.stop("next") == ("scale", C_SOURCE.name, scale_resume + 1)
        assert gdb.printed()["walk", "count"] == "2" and gdb.caller() == "fiber_start"
        # next over a suspend (fiber_yield): scale goes on when total resumes it again
        assert gdb.stop("next") == ("scale", C_SOURCE.name, c_line("fiber_yield(value * st->factor)"))
        assert gdb.stop("next")[:2] == ("scale", C_SOURCE.name)
        assert gdb.printed()["total", "t"] == "{count = 2, sum = 330}"

        # step into the primitive, onto its resume; step there: the first line walk runs
        assert gdb.stop(f"until {scale_resume}") == ("scale", C_SOURCE.name, scale_resume)
        assert gdb.stop("step") == ("fiber_resume", WAT.name, wat_line("(resume $fiber"))
        assert gdb.caller() == "scale"
        assert gdb.stop("step") == ("walk", C_SOURCE.name, c_line("for (struct node *n = list"))
        assert gdb.caller() == "fiber_start"

        # step into a suspend: the first line the resumer runs
        walk_yield = c_line("fiber_yield(n->v)")
        assert gdb.stop(f"advance {walk_yield}") == ("walk", C_SOURCE.name, walk_yield)
        assert gdb.stop("step") == ("fiber_yield", WAT.name, wat_line("(suspend $yield"))
        assert gdb.stop("step") == ("fiber_resume", WAT.name, wat_line("(local.set $next)"))
        assert gdb.caller() == "scale"
        assert gdb.stop("finish") == ("scale", C_SOURCE.name, scale_resume)

        # advance across a resume, into another continuation; step off its end: the
        # resumer's next line
        walk_return = c_line("return count;")
        assert gdb.stop(f"advance {C_SOURCE.name}:{walk_return}") == ("walk", C_SOURCE.name, walk_return)
        assert gdb.printed()["walk", "count"] == "3"
        assert gdb.stop("step") == ("fiber_resume", WAT.name, wat_line("(ref.null $fiber))"))
        assert gdb.caller() == "scale"

        # finish in a continuation's outermost function stops at the boundary: gdb alone
        # needs a second finish to reach the resumer (the plugin does not)
        session.payload(f"-break-insert -t {C_SOURCE.name}:{c_line('return 0;')}")  # scale's
        assert gdb.stop("continue") == ("scale", C_SOURCE.name, c_line("return 0;"))
        assert gdb.stop("finish") == ("fiber_start", WAT.name, wat_line("(call_indirect"))
        assert gdb.stop("finish")[0] == "<signal handler called>"
        assert gdb.stop("finish") == ("fiber_resume", WAT.name, wat_line("(resume $fiber"))
        assert gdb.caller() == "total"
    finally:
        session.close()


def test_plugin_finishes_into_the_resumer_and_steps_off_the_program_end(require_tool, fiber_programs):
    session = gdb_session(require_tool, fiber_programs["O0"], options=PRELOAD)
    gdb = Stepper(session)
    try:
        # the first resume of a fresh continuation: step lands on the first line it runs,
        # then in total after its prologue, where its argument is readable
        gdb.pending_breakpoint(f"{WAT.name}:{wat_line('(resume $fiber')}")
        assert gdb.stop("run") == ("fiber_resume", WAT.name, wat_line("(resume $fiber"))
        assert gdb.caller() == "__main_argc_argv"
        session.payload("-break-delete")
        assert gdb.stop("step") == ("fiber_start", WAT.name, wat_line("(call_indirect"))
        assert gdb.stop("step") == ("total", C_SOURCE.name, c_line("int total(void *arg)") + 1)
        assert gdb.stop("next") == ("total", C_SOURCE.name, c_line("int total(void *arg)") + 2)
        assert session.evaluate("st->source") == "1" and session.evaluate("arg") == session.evaluate("st")
        # until across a resume: total's next line once scale (and walk in it) yielded
        total_resume = c_line("total resumes scale")
        assert gdb.stop(f"until {total_resume + 1}") == ("total", C_SOURCE.name, total_resume + 1)
        assert gdb.printed()["walk", "count"] == "1"

        session.payload(f"-break-insert -t {C_SOURCE.name}:{c_line('return count;')}")
        assert gdb.stop("continue") == ("walk", C_SOURCE.name, c_line("return count;"))
        assert gdb.stop("finish") == ("fiber_start", WAT.name, wat_line("(call_indirect"))
        assert gdb.stop("finish") == ("fiber_resume", WAT.name, wat_line("(resume $fiber"))
        assert gdb.caller() == "scale"

        # stepping off the end of the Wasm program: the trampoline it returns to continues
        main_end = c_line('printf("sum=%d')
        session.payload(f"-break-insert -t {C_SOURCE.name}:{main_end}")
        assert gdb.stop("continue") == ("__main_argc_argv", C_SOURCE.name, main_end)
        for _ in range(20):
            stop = gdb.stop("next")
            if stop[0] == "stackstitch_entry":  # gdb reports it; the plugin continues at once
                stop = gdb.stop(None)
            if stop == ("exited-normally",):
                break
            assert stop[1] is not None, stop  # a source line every time
        assert stop == ("exited-normally",), stop
    finally:
        session.close()


def test_plugin_advance_out_of_a_continuation_goes_on_to_the_resumer(require_tool, fiber_programs):
    """`advance` in a continuation's outermost function that returns first: gdb stops in
    the start stub (its caller); the plugin goes on from there as `finish`, to the resumer."""
    session = gdb_session(require_tool, fiber_programs["O0"], options=PRELOAD)
    gdb = Stepper(session)
    try:
        gdb.pending_breakpoint(f"{WAT.name}:{wat_line('(call_indirect')}")
        for command in ("run", "continue", "continue"):  # total's, scale's, then walk's fiber
            assert gdb.stop(command) == ("fiber_start", WAT.name, wat_line("(call_indirect"))
        session.payload("-break-delete")
        main_end = c_line('printf("sum=%d')
        assert gdb.stop(f"advance {C_SOURCE.name}:{main_end}")[0] == "<signal handler called>"
        assert gdb.stop(None) == ("fiber_resume", WAT.name, wat_line("(resume $fiber"))
        assert gdb.caller() == "scale" and gdb.printed()["walk", "count"] == "3"
    finally:
        session.close()


def test_lldb_nexts_across_resume_and_suspend(require_tool, fiber_programs):
    """Plain lldb: `next` over scale's resume stops on its next line once walk has yielded;
    `next` over its suspend once total has resumed it again."""
    resume, suspend = c_line("scale resumes walk"), c_line("fiber_yield(value * st->factor)")
    loop = max(n for n, text in enumerate(C_SOURCE.read_text().splitlines(), 1)
               if "for (;;)" in text and n < resume)  # scale's loop
    output = run_lldb(require_tool, fiber_programs["O0"],
                      [f"breakpoint set --file {C_SOURCE.name} --line {resume}", "run", "breakpoint delete --force",
                       "next", "next", "next", "process kill"], options=PRELOAD)
    steps = output.split("(lldb) next")[1:]
    stops = [re.search(r"frame #0: .*`(\w+)\(.*\) at ([^:\s]+):(\d+)", step).groups() for step in steps]
    assert stops == [("scale", C_SOURCE.name, str(resume + 1)), ("scale", C_SOURCE.name, str(suspend)),
                     ("scale", C_SOURCE.name, str(loop))], output
    assert "walk: arg=" in output.split("(lldb) breakpoint delete")[1].split("(lldb) next")[1], output
    assert "total: arg=" in steps[2].split("stop reason")[0], output
