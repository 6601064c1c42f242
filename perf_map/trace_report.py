"""`stackstitch trace report`: per continuation, from a Chrome trace-event file written by
`stackstitch trace record`: run time, suspended time, how often it was resumed, its
longest suspension (and on which tag), and who resumed it most."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field


class TraceFileError(Exception):
    """Not a trace `stackstitch trace record` wrote (message is one line)."""


@dataclass
class TrackSummary:
    tid: int
    name: str
    run_us: float = 0.0
    suspended_us: float = 0.0
    resumes: int = 0
    longest_suspension_us: float = 0.0
    longest_suspension_tag: str = ""
    resumed_by: Counter = field(default_factory=Counter)


def load_trace(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            document = json.load(f)
    except json.JSONDecodeError as e:
        raise TraceFileError(f"{path} is not JSON: {e.msg} (line {e.lineno})") from None
    if not isinstance(document, dict) or not isinstance(document.get("traceEvents"), list):
        raise TraceFileError(f"{path} has no traceEvents list")
    return document


def summarize(document: dict) -> list[TrackSummary]:
    tracks: dict[int, TrackSummary] = {}

    def track(tid: int) -> TrackSummary:
        return tracks.setdefault(tid, TrackSummary(tid, f"thread {tid}"))

    for event in document["traceEvents"]:
        if not isinstance(event, dict):
            continue
        tid, phase, args = event.get("tid"), event.get("ph"), event.get("args") or {}
        if phase == "M" and event.get("name") == "thread_name":
            track(tid).name = args.get("name", track(tid).name)
        elif phase == "X" and event.get("cat") == "run":
            summary = track(tid)
            summary.run_us += event["dur"]
            if args.get("resumed_by") is not None:
                summary.resumes += 1
                summary.resumed_by[args.get("resumed_by_name") or str(args["resumed_by"])] += 1
        elif phase == "X" and event.get("cat") == "suspended":
            summary = track(tid)
            summary.suspended_us += event["dur"]
            if event["dur"] > summary.longest_suspension_us:
                summary.longest_suspension_us = event["dur"]
                summary.longest_suspension_tag = args.get("tag", "")
    return [tracks[tid] for tid in sorted(tracks)]


def _time(us: float) -> str:
    if us >= 1e6:
        return f"{us / 1e6:.3f} s"
    if us >= 1e3:
        return f"{us / 1e3:.3f} ms"
    return f"{us:.3f} us"


def render_report(document: dict) -> str:
    summaries = summarize(document)
    total = sum(s.run_us for s in summaries)
    other = document.get("otherData") or {}
    lines = [f"{len(summaries)} stacks, {_time(total)} of running"
             + (f"; {other['lost_events']:,} oldest events lost (ring full)" if other.get("lost_events") else ""),
             f"{'stack':<34} {'run':>12} {'share':>7} {'suspended':>12} {'resumes':>8}  "
             f"{'longest suspension':<28} most resumed by"]
    for s in summaries:
        longest = (f"{_time(s.longest_suspension_us)} on {s.longest_suspension_tag}"
                   if s.longest_suspension_us else "-")
        by = ", ".join(f"{name} ({n})" for name, n in s.resumed_by.most_common(1)) or "-"
        share = f"{100 * s.run_us / total:.1f}%" if total else "-"
        lines.append(f"{s.name:<34} {_time(s.run_us):>12} {share:>7} {_time(s.suspended_us):>12} "
                     f"{s.resumes:>8}  {longest:<28} {by}")
    return "\n".join(lines) + "\n"
