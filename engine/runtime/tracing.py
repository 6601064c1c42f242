"""The trace ring of a tracing store (`Store(trace_events=N)`: the last N events, N a
power of two), and what Python reads back from it (`read_trace`).

Generated code and stubs append fixed-size events (layout.TRACE_*) to a ring in native
memory; no Python runs per event. Timestamps are the processor's timestamp counter
(rdtsc), calibrated here against CLOCK_MONOTONIC from when the ring is made to when it is
read, so events become nanoseconds on the clock `time.monotonic_ns` reads.
"""

from __future__ import annotations

import ctypes
import mmap
import time
from dataclasses import dataclass, field

from .. import layout as L

DEFAULT_TRACE_EVENTS = 1 << 20
_KIND_MASK = (1 << L.TRACE_KIND_BITS) - 1


@dataclass(frozen=True)
class TraceEvent:
    """One event read back from the ring, its timestamp in nanoseconds."""

    ns: int  # CLOCK_MONOTONIC nanoseconds
    kind: int  # layout.TRACE_*
    detail: int  # a tag or function record's address, a trap code, or 0
    source: int  # continuation ids (0: the main stack): left, or the creator
    target: int  # entered, or created


@dataclass
class TraceLog:
    """What a run traced: its events in order, how many the ring lost (the oldest), and
    names for the ids and addresses the events hold."""

    events: list[TraceEvent]
    lost: int
    functions: dict[int, str] = field(default_factory=dict)  # function record -> name
    tags: dict[int, str] = field(default_factory=dict)  # tag record -> name


class TraceRing:
    """The ring, its runtime-block fields, and the clock calibration."""

    def __init__(self, runtime, events: int, read_tsc):
        if events < 1 or events & (events - 1):
            raise ValueError(f"trace ring size must be a power of two, got {events}")
        self.capacity = events
        # Populated up front: a page fault at the first event written to each page would
        # be charged to whichever stack runs then.
        self.memory = mmap.mmap(-1, events * L.TRACE_EVENT_SIZE,
                                flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)
        self.address = ctypes.addressof(ctypes.c_char.from_buffer(self.memory))
        self.runtime = runtime
        runtime[L.RT_TRACE_BUFFER // 8] = self.address
        runtime[L.RT_TRACE_MASK // 8] = events * L.TRACE_EVENT_SIZE - 1
        runtime[L.RT_TRACE_COUNT // 8] = 0
        self.read_tsc = read_tsc
        self.start = self.clock_pair()

    def clock_pair(self) -> tuple[int, int]:
        """(timestamp counter, CLOCK_MONOTONIC ns) read together."""
        before = time.monotonic_ns()
        tsc = self.read_tsc()
        return tsc, (before + time.monotonic_ns()) // 2

    def read(self) -> tuple[list[TraceEvent], int]:
        """The events the ring holds, oldest first, and how many were lost before them."""
        end = self.clock_pair()
        ticks = end[0] - self.start[0]
        ns_per_tick = (end[1] - self.start[1]) / ticks if ticks > 0 else 1.0
        count = self.runtime[L.RT_TRACE_COUNT // 8]
        kept = min(count, self.capacity)
        words = memoryview(self.memory).cast("Q")
        events = []
        for n in range(count - kept, count):
            k = (n % self.capacity) * (L.TRACE_EVENT_SIZE // 8)
            tsc, word, source, target = words[k:k + 4]
            events.append(TraceEvent(self.start[1] + round((tsc - self.start[0]) * ns_per_tick),
                                     word & _KIND_MASK, word >> L.TRACE_KIND_BITS, source, target))
        words.release()
        return events, count - kept


def read_trace(store) -> TraceLog:
    """The events a tracing store has written so far, with names for the functions and
    tags they refer to."""
    if store.trace_ring is None:
        raise ValueError("this store does not trace (Store(trace_events=N))")
    events, lost = store.trace_ring.read()
    log = TraceLog(events, lost)
    for func in store.funcs_by_ref.values():
        log.functions[func.ref] = func.name
    for instance in store.instances.values():
        for i, tag in enumerate(instance.tags):
            log.tags.setdefault(tag.address, instance.module.tag_name(i))
    return log
