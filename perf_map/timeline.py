"""A switch timeline: the traced events (engine/runtime/tracing.py) as one track per
continuation (and one for the main stack), each a sequence of intervals: running, or
suspended on a tag; and the switches between them, from the stack left to the one entered.

Between its intervals a continuation waits in a resume of its own (a continuation it
resumed is running), or has not started, or has finished.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stackstitch.engine import layout as L

MAIN = 0  # the id of the main stack (every entry's root record)
SWITCH_KINDS = {L.TRACE_RESUME: "resume", L.TRACE_RESUME_THROW: "resume_throw",
                L.TRACE_SUSPEND: "suspend", L.TRACE_SWITCH: "switch", L.TRACE_RETURN: "return",
                L.TRACE_TRAP: "trap"}


@dataclass
class Interval:
    start: int  # ns
    end: int
    state: str  # "running" or "suspended"
    label: str = ""  # suspended: the tag
    by: int | None = None  # running: the id of the stack that switched here


@dataclass
class Track:
    id: int
    name: str  # the function the continuation was created from; "main stack"
    created: int | None = None  # ns
    created_by: int | None = None
    ended: str | None = None  # "returned", "trapped"
    intervals: list[Interval] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.name if self.id == MAIN else f"continuation {self.id} ({self.name})"


@dataclass
class Switch:
    ns: int
    kind: str  # SWITCH_KINDS' names
    source: int
    target: int
    tag: str = ""


@dataclass
class Timeline:
    tracks: dict[int, Track]
    switches: list[Switch]
    start: int
    end: int
    lost: int  # events the ring dropped before these


def build_timeline(log) -> Timeline:
    """The timeline of a `TraceLog` (engine.runtime.tracing.read_trace)."""
    events = log.events
    tracks: dict[int, Track] = {MAIN: Track(MAIN, "main stack")}
    switches: list[Switch] = []
    open_at: dict[int, Interval] = {}  # the interval each track is in, if any
    current: int | None = None
    entered: list[int | None] = []  # what ran before each nested entry

    def track(ident: int) -> Track:
        return tracks.setdefault(ident, Track(ident, "?"))

    def close(ident: int | None, ns: int) -> None:
        interval = open_at.pop(ident, None) if ident is not None else None
        if interval is not None:
            interval.end = ns

    def begin(ident: int, ns: int, state: str, label: str = "", by: int | None = None) -> None:
        close(ident, ns)
        interval = Interval(ns, ns, state, label, by)
        track(ident).intervals.append(interval)
        open_at[ident] = interval

    for e in events:
        if e.kind == L.TRACE_NEW:
            new = track(e.target)
            new.name, new.created, new.created_by = log.functions.get(e.detail, "?"), e.ns, e.source
            continue
        if e.kind == L.TRACE_ENTER:
            close(current, e.ns)
            entered.append(current)
            current = MAIN
            begin(MAIN, e.ns, "running")
            continue
        if e.kind == L.TRACE_EXIT:
            close(current, e.ns)
            current = entered.pop() if entered else None
            if current is not None:
                begin(current, e.ns, "running")
            continue
        tag = log.tags.get(e.detail & ~1, "") if e.kind in (L.TRACE_SUSPEND, L.TRACE_SWITCH,
                                                               L.TRACE_RESUME_THROW) else ""
        if current is not None and current != e.source:
            close(current, e.ns)  # events were lost, or the stack changed untraced
        if e.kind in (L.TRACE_SUSPEND, L.TRACE_SWITCH):
            begin(e.source, e.ns, "suspended", tag)
        else:
            close(e.source, e.ns)
            if e.kind in (L.TRACE_RETURN, L.TRACE_TRAP):
                track(e.source).ended = "returned" if e.kind == L.TRACE_RETURN else "trapped"
        begin(e.target, e.ns, "running", by=e.source)
        current = e.target
        switches.append(Switch(e.ns, SWITCH_KINDS[e.kind], e.source, e.target, tag))

    end = events[-1].ns if events else 0
    for interval in open_at.values():
        interval.end = end
    return Timeline(tracks, switches, events[0].ns if events else 0, end, log.lost)
