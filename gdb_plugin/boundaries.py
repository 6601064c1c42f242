"""A frame filter for `bt` (and MI's `-stack-list-frames`): each continuation's start stub,
which gdb shows as `<signal handler called>` (its CIE is marked as a signal frame so that
gdb accepts a resumer's stack below the continuation's; see engine/compiler/stubs.py,
start_stub_rule), becomes a boundary line naming the continuation and the function it was
created from. The host-call and switch stubs are marked the same way (the code they
continue may run on another stack); they keep their own names. Every other frame prints as
gdb prints it. Frame numbers stay gdb's.

While a suspended continuation is selected (selection.py), frame 0 is drawn as a line
saying so, and the chain ends at that continuation's boundary; while `continuation ID bt`
runs, only that continuation's frames are listed.
"""

from __future__ import annotations

import gdb
from gdb.FrameDecorator import FrameVars

from stackstitch.engine import layout as L

from . import inferior, selection
from .view import ProcessView, boundary_line

FILTER_NAME = "stackstitch-continuations"
START_STUB = "stackstitch_continuation_start"  # engine/compiler/stubs.py


class Frame:
    """A frame printed as gdb prints it, through methods of our own that are cheap: gdb's
    default decorator looks each field up through several Python calls, which made a
    filtered `bt` four times as slow as gdb's own (benchmarks/gdb_plugin_bt.py).

    gdb asks a decorator only for what it has: this class has no `frame_args`, so it is
    for functions known to have no arguments (gdb prints `()`); `WithArguments` has them."""

    __slots__ = ("frame", "kind", "name", "sal", "key")

    def __init__(self, frame, kind: int, name: str | None, sal, key):
        self.frame, self.kind, self.name, self.sal, self.key = frame, kind, name, sal, key

    def inferior_frame(self):
        return self.frame

    def function(self):
        if self.kind == gdb.DUMMY_FRAME:
            return "<function called from gdb>"
        if self.kind == gdb.SIGTRAMP_FRAME:
            return "<signal handler called>"
        return self.name or "??"

    def address(self):
        return self.frame.pc()

    def filename(self):
        symtab = self.sal.symtab
        if symtab is not None and symtab.filename:
            return symtab.filename
        return gdb.solib_name(self.frame.pc())  # printed as `from LIBRARY`

    def line(self):
        return self.sal.line if self.sal.symtab is not None else None

    def frame_locals(self):
        return _variables(self, "locals")


class WithArguments(Frame):
    __slots__ = ()

    def frame_args(self):
        return _variables(self, "args")


class Boundary:
    """A continuation's start stub, drawn as `── continuation N, created from F`."""

    __slots__ = ("frame", "text")

    def __init__(self, frame, text: str):
        self.frame, self.text = frame, text

    def inferior_frame(self):
        return self.frame

    def function(self):
        return self.text


def _variables(decorated: Frame, kind: str):
    """The frame's arguments or locals through gdb's own FrameVars. A whole function's
    arguments are the same symbols in every frame of it (gdb reads their values per frame),
    so they are looked up once per function; inlined copies can differ, and locals depend
    on the lexical block at the pc, so those are looked up every time."""
    if decorated.key is None:
        return None
    variables = FrameVars(decorated.frame)
    if kind == "locals":
        return variables.fetch_frame_locals() or None
    remember = decorated.kind == gdb.NORMAL_FRAME
    found = _ARGUMENTS.get(decorated.key, _UNKNOWN) if remember else _UNKNOWN
    if found is _UNKNOWN or (found and not found[0].sym.is_valid()):  # its objfile went away
        found = variables.fetch_frame_args() or None
        if remember:
            _ARGUMENTS[decorated.key] = found
    return found


# (file, function) -> its arguments as gdb's FrameVars gives them, None for none: asking gdb
# for each frame is the slowest part of printing it.
_ARGUMENTS: dict[tuple, list | None] = {}
_UNKNOWN = object()


def decorate(frame):
    """Our decorator for a frame."""
    kind = frame.type()
    name = frame.name()
    # A start stub is a signal frame, except at the end of a grafted chain (selection.py).
    if kind == gdb.SIGTRAMP_FRAME or name == START_STUB:
        if name != START_STUB and name and name.startswith("stackstitch_"):
            kind = gdb.NORMAL_FRAME  # a signal-marked stub of ours: printed under its name
        else:
            text = boundary_text(frame)
            if text is not None:
                return Boundary(frame, text)
    sal = frame.find_sal()
    has_debug_info = kind not in (gdb.DUMMY_FRAME, gdb.SIGTRAMP_FRAME) and sal.symtab is not None
    key = (sal.symtab.filename, name) if has_debug_info else None
    known_empty = kind == gdb.NORMAL_FRAME and _ARGUMENTS.get(key, _UNKNOWN) is None
    cls = Frame if key is None or known_empty else WithArguments
    return cls(frame, kind, name, sal, key)


class ContinuationBoundaries:
    """Registered in gdb.frame_filters; `disable frame-filter global stackstitch-continuations`
    shows gdb's own lines again."""

    def __init__(self):
        self.name = FILTER_NAME
        self.priority = 100
        self.enabled = True
        gdb.frame_filters[self.name] = self

    def filter(self, frames):
        if selection.window is None and selection.graft() is None:
            if _only_filter():
                return walk_from(frames)
            return (decorate(decorator.inferior_frame()) for decorator in frames)
        return selected_frames(frames)


def walk_from(frames):
    """The frames from the first gdb gives, walked here: gdb's own iterator wraps each one
    in a default decorator first, which costs a long `bt` a good part of its time. Only
    when no other frame filter runs before this one (its decorators would be lost)."""
    first = next(frames, None)
    frame = first.inferior_frame() if first is not None else None
    while frame is not None:
        yield decorate(frame)
        frame = frame.older()


def _only_filter() -> bool:
    """Whether this is the only enabled frame filter, in gdb, the program space or an
    objfile."""
    registries = [gdb.frame_filters, gdb.current_progspace().frame_filters]
    registries += [objfile.frame_filters for objfile in gdb.objfiles()]
    return sum(f.enabled for registry in registries for f in registry.values()) == 1


def selected_frames(frames):
    """The frames while a continuation is selected or listed on its own."""
    low, high = selection.window or (0, 1 << 30)
    graft = selection.graft()
    for decorator in frames:
        frame = decorator.inferior_frame()
        level = frame.level()
        if level > high or (graft is not None and frame.pc() == 0):  # past the end
            return
        if level < low:
            continue
        if selection.is_placeholder(frame):
            yield Boundary(frame, f"── selected: continuation {graft.label} ({graft.state}); "
                                  f"the thread is in {frame.name() or '??'}")
        else:
            yield decorate(frame)


def boundary_text(frame) -> str | None:
    """The boundary line for a start-stub frame; None (gdb's own line) when the debug root
    cannot say, which must never break `bt` itself."""
    try:
        return start_stub_line(inferior.process_view(), frame)
    except Exception:
        return None


def start_stub_line(view: ProcessView, frame) -> str | None:
    """The boundary text if `frame` is the start stub of one of the engine's continuations
    (its record is just above the base frame: at the frame's rsp, or above its rbp)."""
    rsp, rbp = int(frame.read_register("rsp")), int(frame.read_register("rbp"))
    for candidate in (rsp, rbp + L.BASE_FRAME_SIZE):
        store = view.store_of_address(candidate)
        if store is not None and store.is_record(candidate):
            return boundary_line(store, candidate)
    return None


def register():
    ContinuationBoundaries()
    inferior.register()
