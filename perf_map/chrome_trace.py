"""A timeline as Chrome trace-event JSON (the Trace Event Format that Perfetto and
chrome://tracing open): one process, one thread per continuation (tid = its id, 0 for the
main stack), a complete event (`ph: X`) per running interval and per suspended interval
(named after the tag), flow arrows (`ph: s` / `f`) from the stack that switched to the
one it entered, and instant events for cont.new and traps.

Timestamps are microseconds (with nanosecond decimals) from the first event. The `args`
of each interval carry what `trace report` summarises, so the file alone is enough.
"""

from __future__ import annotations

import json

from .timeline import MAIN, Timeline

PID = 1
FLOW_LEAD_US = 0.001  # a flow starts 1 ns before the switch, inside the slice it leaves


def _us(ns: int, origin: int) -> float:
    return round((ns - origin) / 1000, 3)


def chrome_trace(timeline: Timeline, title: str) -> dict:
    origin = timeline.start
    events: list[dict] = [{"name": "process_name", "ph": "M", "pid": PID, "tid": MAIN,
                           "args": {"name": title}}]
    for track in sorted(timeline.tracks.values(), key=lambda t: t.id):
        events.append({"name": "thread_name", "ph": "M", "pid": PID, "tid": track.id,
                       "args": {"name": track.label}})
        events.append({"name": "thread_sort_index", "ph": "M", "pid": PID, "tid": track.id,
                       "args": {"sort_index": track.id}})
        if track.created is not None:
            events.append({"name": "cont.new", "cat": "lifecycle", "ph": "i", "s": "t", "pid": PID,
                           "tid": track.id, "ts": _us(track.created, origin),
                           "args": {"function": track.name, "created_by": track.created_by}})
        for interval in track.intervals:
            event = {"pid": PID, "tid": track.id, "ph": "X", "ts": _us(interval.start, origin),
                     "dur": round((interval.end - interval.start) / 1000, 3)}
            if interval.state == "running":
                by = timeline.tracks.get(interval.by)
                event.update(name=track.name, cat="run",
                             args={"resumed_by": interval.by,
                                   "resumed_by_name": by.label if by is not None else None})
            else:
                event.update(name=f"suspended: {interval.label}", cat="suspended", cname="grey",
                             args={"tag": interval.label})
            events.append(event)
    for n, switch in enumerate(timeline.switches, 1):
        ts = _us(switch.ns, origin)
        name = switch.kind + (f" {switch.tag}" if switch.tag else "")
        events.append({"name": name, "cat": "switch", "ph": "s", "id": n, "pid": PID,
                       "tid": switch.source, "ts": max(0.0, round(ts - FLOW_LEAD_US, 3))})
        events.append({"name": name, "cat": "switch", "ph": "f", "bp": "e", "id": n, "pid": PID,
                       "tid": switch.target, "ts": ts})
        if switch.kind == "trap":
            events.append({"name": "trap", "cat": "lifecycle", "ph": "i", "s": "t", "pid": PID,
                           "tid": switch.source, "ts": ts})
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"producer": "stackstitch trace", "lost_events": timeline.lost,
                          "duration_us": _us(timeline.end, origin)}}


def write_chrome_trace(timeline: Timeline, path: str, title: str) -> dict:
    document = chrome_trace(timeline, title)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(document, f, separators=(",", ":"))
    return document
