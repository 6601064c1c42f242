"""Text reports of a profile: time per function, or per continuation.

Self time is what the sampled code itself took (the innermost frame); total time counts a
sample once for every function (or continuation) anywhere on its stack. Percentages weigh
samples by their period, as perf's do.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .samples import Sample
from .stacks import MAIN_STACK, boundary_name, continuation_of, frame_names

TOP_IN_CONTINUATION = 5


@dataclass
class Tally:
    period: int = 0
    samples: int = 0

    def add(self, sample: Sample) -> None:
        self.period += sample.period
        self.samples += 1


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:6.2f}%" if whole else "    n/a"


def _row(own: Tally, total: Tally, whole: int, label: str) -> str:
    return f"{_percent(own.period, whole)}  {_percent(total.period, whole)}  {own.samples:>9,}  {label}"


def by_function(samples: list[Sample], limit: int = 40) -> str:
    """Functions (and host groups) by self time, with their total time."""
    whole = sum(s.period for s in samples)
    self_time: dict[str, Tally] = defaultdict(Tally)
    total_time: dict[str, Tally] = defaultdict(Tally)
    for sample in samples:
        names = [n for n in frame_names(sample) if boundary_name(n) is None]
        if names:
            self_time[names[0]].add(sample)
            for name in set(names):
                total_time[name].add(sample)
    ranked = sorted(self_time.items(), key=lambda item: -item[1].period)[:limit]
    lines = [f"{'self':>7}  {'total':>7}  {'samples':>9}  function"]
    lines += [_row(own, total_time[name], whole, name) for name, own in ranked]
    return "\n".join(lines) + "\n"


def by_continuation(samples: list[Sample]) -> str:
    """Time per continuation, grouped by the function each was created from: self time on
    its own stack, total time with the continuations it resumed; under each, its top
    functions by self time."""
    whole = sum(s.period for s in samples)
    self_time: dict[str, Tally] = defaultdict(Tally)
    total_time: dict[str, Tally] = defaultdict(Tally)
    functions: dict[str, dict[str, Tally]] = defaultdict(lambda: defaultdict(Tally))
    for sample in samples:
        names = frame_names(sample)
        innermost = continuation_of(names)
        self_time[innermost].add(sample)
        if names and boundary_name(names[0]) is None:
            functions[innermost][names[0]].add(sample)
        for created_from in {boundary_name(n) for n in names} - {None} | {MAIN_STACK}:
            total_time[created_from].add(sample)
    lines = [f"{'self':>7}  {'total':>7}  {'samples':>9}  continuations created from"]
    for created_from, own in sorted(self_time.items(), key=lambda item: -item[1].period):
        lines.append(_row(own, total_time[created_from], whole, created_from))
        inner = sorted(functions[created_from].items(), key=lambda item: -item[1].period)
        for name, tally in inner[:TOP_IN_CONTINUATION]:
            lines.append(f"{_percent(tally.period, whole)}  {'':>7}  {tally.samples:>9,}      {name}")
    return "\n".join(lines) + "\n"
