"""poll_oneoff: clock subscriptions, stdin and stdio readiness, files (always ready).

Event fields follow Wasmtime 49: fd events report nbytes 1 (a file read at its end adds
the HANGUP flag), clock events nbytes 0, except a lone relative clock, which Wasmtime
serves as a plain sleep with nbytes 1. An absolute realtime clock is converted to a wait
relative to now; the CPU-time clocks cannot be waited on (EINVAL).
"""

from __future__ import annotations

import os
import select
import time

from .abi import (CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_THREAD_CPUTIME, EBADF, EINVAL, EVENT,
                  EVENT_FD_READWRITE_HANGUP, EVENTTYPE_CLOCK, EVENTTYPE_FD_READ,
                  EVENTTYPE_FD_WRITE, ESUCCESS, SUBCLOCK_ABSTIME, SUBSCRIPTION)
from .descriptors import File, Stream


def _stdin_fileno(stream: Stream) -> int | None:
    """The fd whose readiness is stdin's, or None for an in-memory stream (always ready)."""
    if stream.stream is None:
        return 0
    try:
        return stream.stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _readable(fds: list[int], timeout: float | None) -> set[int]:
    return set(select.select(fds, [], [], timeout)[0]) if fds else set()


class PollCalls:
    """Mixin of the Wasi class: `fds` is its DescriptorTable, `mem` its GuestMemory."""

    def poll_oneoff(self, in_ptr: int, out_ptr: int, nsubscriptions: int,
                    nevents_ptr: int) -> int:
        if nsubscriptions == 0:
            return EINVAL  # it would sleep forever
        subscriptions = [self.mem.unpack(SUBSCRIPTION, in_ptr + SUBSCRIPTION.size * i)
                         for i in range(nsubscriptions)]
        for _, tag, clock_id, _, _, flags in subscriptions:
            if tag > EVENTTYPE_FD_WRITE or (tag == EVENTTYPE_CLOCK and (
                    clock_id > CLOCK_THREAD_CPUTIME or flags & ~SUBCLOCK_ABSTIME)):
                return EINVAL
        userdata, tag, _, timeout, _, flags = subscriptions[0]
        if nsubscriptions == 1 and tag == EVENTTYPE_CLOCK and not flags & SUBCLOCK_ABSTIME:
            time.sleep(timeout / 1e9)
            self.mem.pack(EVENT, out_ptr, userdata, ESUCCESS, EVENTTYPE_CLOCK, 1, 0)
            self.mem.u32(nevents_ptr, 1)
            return ESUCCESS

        now = time.monotonic_ns()
        deadlines = {}  # subscription index -> monotonic deadline
        waiting_reads = {}  # subscription index -> stdin's fd
        for index, (_, tag, target, timeout, _, flags) in enumerate(subscriptions):
            if tag == EVENTTYPE_CLOCK:
                if target == CLOCK_MONOTONIC:
                    deadlines[index] = timeout if flags & SUBCLOCK_ABSTIME else now + timeout
                elif target == CLOCK_REALTIME:
                    if flags & SUBCLOCK_ABSTIME:
                        timeout = max(0, timeout - time.time_ns())
                    deadlines[index] = now + timeout
                else:
                    return EINVAL
                continue
            descriptor = self.fds.get(target)
            if type(descriptor) is File:
                continue
            if type(descriptor) is not Stream or descriptor.readable != (tag == EVENTTYPE_FD_READ):
                return EBADF
            if tag == EVENTTYPE_FD_READ:
                fileno = _stdin_fileno(descriptor)
                if fileno is not None:
                    waiting_reads[index] = fileno

        stdin_fds = sorted(set(waiting_reads.values()))
        ready_fds = _readable(stdin_fds, 0)
        while True:
            ready = [index for index in range(nsubscriptions)
                     if (deadlines[index] <= now if index in deadlines
                         else index not in waiting_reads or waiting_reads[index] in ready_fds)]
            if ready:
                break
            wait = max(0, min(deadlines.values()) - now) / 1e9 if deadlines else None
            if stdin_fds:
                ready_fds = _readable(stdin_fds, wait)
            else:
                time.sleep(wait)
            now = time.monotonic_ns()

        for count, index in enumerate(ready):
            userdata, tag, target, _, _, _ = subscriptions[index]
            nbytes, rw_flags = (0, 0) if tag == EVENTTYPE_CLOCK else (1, self._hangup(target, tag))
            self.mem.pack(EVENT, out_ptr + EVENT.size * count, userdata, ESUCCESS, tag,
                          nbytes, rw_flags)
        self.mem.u32(nevents_ptr, len(ready))
        return ESUCCESS

    def _hangup(self, fd: int, tag: int) -> int:
        """HANGUP for a read subscription on a file positioned at (or past) its end."""
        descriptor = self.fds.get(fd)
        if tag != EVENTTYPE_FD_READ or type(descriptor) is not File:
            return 0
        position = os.lseek(descriptor.host_fd, 0, os.SEEK_CUR)
        return EVENT_FD_READWRITE_HANGUP if os.fstat(descriptor.host_fd).st_size <= position else 0
