"""Flame graphs from `perf script` output: fold the call stacks, then draw nested rects.

Folding turns every sample into one line of frames, outermost first, weighted by the
sample's period; drawing gives each frame a rectangle as wide as its share of the
samples, stacked on its caller, with the frame's name as the rectangle's SVG title.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

# A callchain line of `perf script`: address, symbol (+offset), optional (dso).
_FRAME = re.compile(r"^\s+([0-9a-fA-F]+)\s+(.*?)(?:\s+\((.*)\))?$")
_OFFSET = re.compile(r"\+0x[0-9a-fA-F]+$")


def _frame_name(symbol: str, dso: str | None) -> str:
    symbol = _OFFSET.sub("", symbol.strip()) or "[unknown]"
    if symbol == "[unknown]" and dso and dso != "[unknown]":
        return f"[{dso.rsplit('/', 1)[-1]}]"
    return symbol.replace(";", ":")


def fold_perf_script(text: str) -> Counter:
    """{(root, ..., leaf): weight}; the root is the command name, as in stackcollapse."""
    folded: Counter = Counter()
    header: str | None = None
    frames: list[str] = []

    def finish():
        if header is not None:
            fields = header.split()
            weight = int(fields[-1]) if len(fields) > 1 and fields[-1].isdigit() else 1
            folded[tuple([fields[0] if fields else "?"] + frames[::-1])] += weight

    for line in text.splitlines():
        if not line.strip():
            finish()
            header, frames = None, []
        elif line[0].isspace():
            match = _FRAME.match(line)
            if match and header is not None:
                frames.append(_frame_name(match.group(2), match.group(3)))
        else:
            finish()
            header, frames = line.rstrip(":"), []
    finish()
    return folded


@dataclass
class _Node:
    name: str
    value: int = 0
    children: dict = field(default_factory=dict)


def _tree(folded: Counter) -> _Node:
    root = _Node("all")
    for stack, weight in folded.items():
        node = root
        node.value += weight
        for name in stack:
            node = node.children.setdefault(name, _Node(name))
            node.value += weight
    return root


def _colour(name: str) -> str:
    """A stable warm colour per name, so the same function looks the same everywhere."""
    h = hashlib.md5(name.encode()).digest()
    return f"rgb({205 + h[0] % 50},{h[1] % 230},{h[2] % 55})"


def render_svg(folded: Counter, title: str = "Flame graph", width: int = 1200,
               row_height: int = 16, min_width: float = 0.1) -> str:
    """An SVG flame graph (root at the bottom); every frame has a <title> tooltip."""
    root = _tree(folded)
    total = root.value or 1
    scale = (width - 20) / total

    def depth(node: _Node) -> int:
        return 1 + max((depth(c) for c in node.children.values()), default=0)

    levels = depth(root)
    height = (levels + 3) * row_height
    rects: list[str] = []

    def draw(node: _Node, x: float, level: int) -> None:
        w = node.value * scale
        if w < min_width:
            return
        y = height - (level + 2) * row_height
        label = f"{node.name} ({100 * node.value / total:.2f}%)"
        text = node.name if len(node.name) * 7 < w else node.name[:max(0, int(w / 7) - 2)] + ".."
        rects.append(
            f'<g><title>{escape(label)}</title>'
            f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{row_height - 1}" '
            f'fill="{_colour(node.name)}" rx="2"/>'
            + (f'<text x="{x + 3:.2f}" y="{y + row_height - 4}">{escape(text)}</text>'
               if w > 21 else "") + "</g>")
        for child in sorted(node.children.values(), key=lambda c: c.name):
            draw(child, x, level + 1)
            x += child.value * scale

    draw(root, 10, 0)
    return (f'<?xml version="1.0" standalone="no"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="Verdana, sans-serif" font-size="11">\n'
            f'<rect width="100%" height="100%" fill="#f8f8f8"/>\n'
            f'<text x="{width / 2}" y="{row_height}" text-anchor="middle" font-size="15">'
            f'{escape(title)}</text>\n' + "\n".join(rects) + "\n</svg>\n")
