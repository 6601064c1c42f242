"""Test support: how far below their limits continuation stacks were written. The margin
of every carved stack, [low end, limit), is filled with a pattern first; whatever is no
longer the pattern afterwards was written. Used in-process and by child processes."""

from __future__ import annotations

import ctypes

POISON = 0xA5


def poison_margins(store) -> None:
    pool = store.continuations
    for low in pool.stack_lows():
        ctypes.memset(low, POISON, pool.margin)


def deepest_write_below_limit(store) -> int:
    """How far below its limit any stack was written since poison_margins (0: not at all)."""
    pool = store.continuations
    deepest = 0
    for low in pool.stack_lows():
        margin = ctypes.string_at(low, pool.margin)
        untouched = len(margin) - len(margin.lstrip(bytes([POISON])))
        deepest = max(deepest, pool.margin - untouched)
    return deepest
