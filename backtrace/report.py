"""Trap reports: text for people (rich styles on a terminal, plain otherwise) and JSON.

The text lists frames innermost first, grouped by the stack they ran on, each with its
source position (`at file:line:column`) where the module has DWARF; a function inlined
into another has a frame of its own, marked `inlined`. Each group ends
with a line naming its stack; for a continuation that is the boundary line: its id, the
function it was created from, the resume site in its parent and the handlers that resume
installed. Repeated frames (recursion, including mutual recursion of a few functions) are
collapsed to one block and a count. The message comes last, where the eye lands.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TextIO

from .model import Backtrace, Frame, Stack

MAX_PERIOD = 8       # longest run of frames recognised as one repeating block
MIN_REPEATS = 3      # a block must occur this many times in a row to be collapsed
NAME_WIDTH = 32      # function names are padded to the longest, up to this

STYLE_INDEX = "dim"
STYLE_NAME = "bold cyan"
STYLE_OFFSET = "yellow"
STYLE_SOURCE = "green"
STYLE_BOUNDARY = "magenta"
STYLE_REPEAT = "dim italic"
STYLE_NOTE = "bold yellow"
STYLE_MESSAGE = "bold red"


class _Lines:
    """Report text with style spans, built in one pass (rich's Text.append per piece is
    too slow for reports of tens of thousands of frames)."""

    def __init__(self):
        self.parts: list[str] = []
        self.spans: list[tuple[int, int, str]] = []
        self.length = 0

    def add(self, text: str, style: str | None = None):
        if style:
            self.spans.append((self.length, self.length + len(text), style))
        self.parts.append(text)
        self.length += len(text)

    def plain(self) -> str:
        return "".join(self.parts)

    def rich_text(self):
        from rich.text import Span, Text
        return Text(self.plain(), spans=[Span(*s) for s in self.spans])


def collapse(keys: list) -> list[tuple[int, int, int]]:
    """Runs of `keys` as (start, period, repeats): keys[start:start+period] occurs
    `repeats` times in a row. Picks, at each point, the block that covers the most frames."""
    runs = []
    i, n = 0, len(keys)
    while i < n:
        best_period, best_repeats = 1, 1
        for period in range(1, min(MAX_PERIOD, (n - i) // MIN_REPEATS) + 1):
            j = i + period
            while j < n and keys[j] == keys[j - period]:
                j += 1
            repeats = (j - i) // period
            if repeats >= MIN_REPEATS and repeats * period > best_repeats * best_period:
                best_period, best_repeats = period, repeats
                if j == n:
                    break
        runs.append((i, best_period, best_repeats))
        i += best_period * best_repeats
    return runs


def _frame_line(out: _Lines, number: int, frame: Frame, width: int):
    out.add(f"  #{number:<5} ", STYLE_INDEX)
    out.add(frame.func_name.ljust(width), STYLE_NAME)
    out.add(f"  @ 0x{frame.wasm_offset:x}", STYLE_OFFSET)
    out.add(f"  (function {frame.func_index}{', inlined' if frame.inlined else ''})")
    if frame.file is not None:
        out.add(f"  at {frame.file}:{frame.line}" + (f":{frame.column}" if frame.column else ""), STYLE_SOURCE)
    out.add("\n")


def _stack_line(out: _Lines, stack: Stack, last: bool):
    if stack.kind == "main":
        text = "── main stack, entered from the host"
        if stack.func_name:
            text += f" at {stack.func_name}"
    else:
        text = f"── continuation {stack.id}, created from {stack.func_name}"
        if stack.resumed_at is not None:
            text += f", resumed at {stack.resumed_at.func_name} @ 0x{stack.resumed_at.wasm_offset:x}"
        elif last:
            text += ", not followed further"
        text += f"; handlers: {', '.join(stack.handlers) if stack.handlers else 'none'}"
    out.add(text + "\n", STYLE_BOUNDARY)


def build(trace: Backtrace) -> _Lines:
    """The report's text with its style spans."""
    out = _Lines()
    if trace.stacks:
        out.add("wasm backtrace, innermost frame first:\n")
    width = min(max((len(f.func_name) for f in trace.frames), default=0), NAME_WIDTH)
    number = 0
    for index, (stack, group) in enumerate(trace.groups()):
        keys = [(f.func_index, f.wasm_offset, f.func_name) for f in group]
        for run_start, period, repeats in collapse(keys):
            for k in range(period):
                _frame_line(out, number + k, group[run_start + k], width)
            if repeats > 1:
                what = "the frame above" if period == 1 else f"the {period} frames above"
                first, last = number + period, number + period * repeats - 1
                out.add(f"         … {what} repeated {repeats - 1:,} more times (#{first}–#{last})\n",
                        STYLE_REPEAT)
            number += period * repeats
        _stack_line(out, stack, index == len(trace.stacks) - 1)
    if trace.note:
        out.add(f"note: the walk stopped early: {trace.note}\n", STYLE_NOTE)
    if trace.detail:
        out.add(trace.detail + "\n", STYLE_MESSAGE)
    if trace.message:
        last_line = trace.message if trace.message.startswith(trace.kind) else f"{trace.kind}: {trace.message}"
        if trace.tag and trace.tag not in trace.message:
            last_line += f": {trace.tag}"
        out.add(last_line + "\n", STYLE_MESSAGE)
    return out


def render_text(trace: Backtrace) -> str:
    """The text report without styles."""
    return build(trace).plain()


def print_text(trace: Backtrace, file: TextIO | None = None, color: bool | None = None):
    """Print the text report; styled only on a terminal, unless `color` says otherwise
    (and never when NO_COLOR is set)."""
    file = file if file is not None else sys.stderr
    if color is None:
        color = file.isatty() and not os.environ.get("NO_COLOR")
    lines = build(trace)
    if not color:
        file.write(lines.plain())
        return
    from rich.console import Console  # only here: importing rich takes ~80 ms
    Console(file=file, force_terminal=True, highlight=False, soft_wrap=True).print(
        lines.rich_text(), end="")


def render_json(trace: Backtrace) -> str:
    """One JSON document in the trap-report schema (README)."""
    return json.dumps(trace.to_json())
