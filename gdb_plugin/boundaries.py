"""A frame filter for plain `bt`: each continuation's start stub, which gdb shows as
`<signal handler called>` (its CIE is marked as a signal frame so that gdb accepts a
resumer's stack below the continuation's, brief section 5), becomes a boundary line
naming the continuation and the function it was created from. The host-call stub is
marked the same way (the host code it calls may run on a stack above its caller's); it
keeps its own name. Frame numbers stay gdb's.
"""

from __future__ import annotations

import gdb
from gdb.FrameDecorator import FrameDecorator

from . import inferior
from .view import READ_ERRORS, ProcessView

FILTER_NAME = "stackstitch-continuations"
HOST_CALL_STUB = "stackstitch_host_call"  # engine/stubs.py


class BoundaryDecorator(FrameDecorator):
    """Draws a start-stub frame as `── continuation N, created from F`."""

    def __init__(self, base, text: str):
        super().__init__(base)
        self.text = text

    def function(self):
        return self.text

    def address(self):
        return None

    def filename(self):
        return None

    def frame_args(self):
        return None


class SymbolDecorator(FrameDecorator):
    """A signal-marked frame that is no signal: shown under its symbol's name."""

    def function(self):
        return self.inferior_frame().name()


class UnnamedDecorator(FrameDecorator):
    """A frame without any symbol: `??`, as gdb prints it without filters (gdb 13's
    default decorator would leave the name empty)."""

    def function(self):
        return "??"


class ContinuationBoundaries:
    """Registered in gdb.frame_filters; `disable frame-filter global stackstitch-continuations`
    shows gdb's own lines again."""

    def __init__(self):
        self.name = FILTER_NAME
        self.priority = 100
        self.enabled = True
        gdb.frame_filters[self.name] = self

    def filter(self, frames):
        return map(Marker().decorate, frames)


class Marker:
    """Decorates the frames of one backtrace; reads the debug root at the first start
    stub, once. Never raises: on any failure gdb's own line is kept."""

    def __init__(self):
        self.view: ProcessView | None = None
        self.unavailable = False  # no debug root (not our process, or not started yet)

    def decorate(self, decorator):
        try:
            frame = decorator.inferior_frame()
            if frame.type() != gdb.SIGTRAMP_FRAME:
                return UnnamedDecorator(decorator) if frame.name() is None else decorator
            if frame.name() == HOST_CALL_STUB:
                return SymbolDecorator(decorator)
            text = None if self.unavailable else boundary_line(self.process_view(), frame)
        except Exception:  # a bug here must not break `bt` itself
            return decorator
        return decorator if text is None else BoundaryDecorator(decorator, text)

    def process_view(self) -> ProcessView:
        if self.view is None:
            try:
                self.view = inferior.process_view()
            except (gdb.error, *READ_ERRORS):
                self.unavailable = True
                raise
        return self.view


def boundary_line(view: ProcessView, frame) -> str | None:
    """The boundary text if `frame` is the start stub of one of the engine's continuations
    (its record is just above the base frame: at the frame's rsp, or rbp + 16)."""
    rsp, rbp = int(frame.read_register("rsp")), int(frame.read_register("rbp"))
    for candidate in (rsp, rbp + 16):
        store = view.store_of_address(candidate)
        if store is not None and store.is_record(candidate):
            label, func_name = store.record_summary(candidate)
            return f"── continuation {label}, created from {func_name}"
    return None


def register():
    ContinuationBoundaries()
