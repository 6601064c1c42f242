"""SVG flame graphs from folded stacks: one self-contained file with search and zoom.

Every frame is a rectangle as wide as its share of the samples, stacked on its caller
(root at the bottom), with the frame's name and share as its tooltip (`<title>`). Wasm
functions are warm colours, the engine's stubs violet, host frames grey; a continuation
boundary (`[continuation: F]`, see stacks.py) is a blue bar labelled with the function
the continuation was created from, so each switched stack starts visibly.

The embedded script zooms into a frame on click (its ancestors span the width, frames
beside it are hidden; "Reset zoom" or Escape goes back) and searches frame names with a
regular expression ("Search" or Ctrl-F), colouring matches and showing their share. The
URL fragment can do both on load: `flame.svg#search=REGEX&zoom=NAME`.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from .stacks import boundary_name

CHAR_WIDTH = 7  # px per character of the 11 px label font, for truncating labels
PAD = 10


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


def frame_kind(name: str) -> str:
    """boundary, stub, host or wasm: how a frame is drawn."""
    if boundary_name(name) is not None:
        return "boundary"
    if name.startswith("stackstitch_"):
        return "stub"
    if name.startswith("["):
        return "host"
    return "wasm"


def _colour(name: str, kind: str) -> str:
    """A stable colour per name within its kind's hue."""
    h = hashlib.md5(name.encode()).digest()
    if kind == "boundary":
        return "rgb(70,130,220)"
    if kind == "stub":
        return f"rgb({150 + h[0] % 40},{110 + h[1] % 40},{210 + h[2] % 40})"
    if kind == "host":
        grey = 170 + h[0] % 50
        return f"rgb({grey},{grey},{grey + 10})"
    return f"rgb({205 + h[0] % 50},{h[1] % 230},{h[2] % 55})"


def _label(name: str, width: float) -> str:
    if len(name) * CHAR_WIDTH < width:
        return name
    keep = int(width / CHAR_WIDTH) - 2
    return name[:keep] + ".." if keep > 0 else ""


def render_svg(folded: Counter, title: str = "Flame graph", width: int = 1200,
               row_height: int = 16, min_width: float = 0.1,
               amount=lambda weight: f"{weight:,} samples") -> str:
    """The SVG document for `folded` ({(outermost, ..., innermost): weight}); `amount`
    says what a weight is, in tooltips."""
    root = _tree(folded)
    total = root.value or 1
    plot = width - 2 * PAD
    scale = plot / total

    def depth(node: _Node) -> int:
        return 1 + max((depth(c) for c in node.children.values()), default=0)

    height = (depth(root) + 4) * row_height
    frames: list[str] = []

    def draw(node: _Node, x: int, level: int) -> None:
        w = node.value * scale
        if w < min_width:
            return
        y = height - (level + 2) * row_height
        kind = "host" if level <= 1 else frame_kind(node.name)  # "all", the command name
        created_from = boundary_name(node.name)
        shown = f"continuation: {created_from}" if created_from is not None else node.name
        tip = f"{node.name} ({amount(node.value)}, {100 * node.value / total:.2f}%)"
        frames.append(
            f'<g class="frame {kind}" data-name={quoteattr(node.name)} data-label={quoteattr(shown)} '
            f'data-x="{x}" data-w="{node.value}" data-d="{level}"><title>{escape(tip)}</title>'
            f'<rect x="{PAD + x * scale:.2f}" y="{y}" width="{w:.2f}" height="{row_height - 1}" '
            f'fill="{_colour(node.name, kind)}" rx="2"/>'
            f'<text x="{PAD + x * scale + 3:.2f}" y="{y + row_height - 4}">{escape(_label(shown, w - 3))}</text>'
            "</g>")
        for child in sorted(node.children.values(), key=lambda c: c.name):
            draw(child, x, level + 1)
            x += child.value

    draw(root, 0, 0)
    return (f'<?xml version="1.0" standalone="no"?>\n'
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="Verdana, sans-serif" font-size="11" '
            f'data-total="{total}" data-plot="{plot}" data-pad="{PAD}">\n'
            f"<style>{_STYLE}</style>\n"
            f'<rect width="100%" height="100%" fill="#f8f8f8"/>\n'
            f'<text x="{width / 2}" y="{row_height}" text-anchor="middle" font-size="15">'
            f"{escape(title)}</text>\n"
            f'<text id="reset" class="control" x="{PAD}" y="{row_height}" display="none">Reset zoom</text>\n'
            f'<text id="search" class="control" x="{width - PAD}" y="{row_height}" '
            f'text-anchor="end">Search</text>\n'
            f'<text id="matched" x="{width - PAD}" y="{height - row_height / 2}" text-anchor="end"></text>\n'
            + "\n".join(frames)
            + f"\n<script><![CDATA[{_SCRIPT}]]></script>\n</svg>\n")


_STYLE = """
.frame text { pointer-events: none; }
.frame:hover rect { stroke: black; stroke-width: 0.5; }
.boundary rect { stroke: rgb(20,50,120); stroke-width: 1; }
.boundary text { fill: white; font-weight: bold; }
.control { cursor: pointer; fill: rgb(60,60,160); }
.parent rect { opacity: 0.5; }
"""

# Zoom and search. Positions are in samples (data-x, data-w) and rows (data-d); the
# drawing is recomputed from them, so a zoom is exact at any depth.
_SCRIPT = r"""
(function () {
  const svg = document.documentElement;
  const total = +svg.dataset.total, plot = +svg.dataset.plot, pad = +svg.dataset.pad;
  const frames = Array.from(document.querySelectorAll("g.frame"));
  const resetButton = document.getElementById("reset");
  const matchedText = document.getElementById("matched");

  function label(g, width) {
    const name = g.dataset.label, fit = Math.floor(width / 7) - 2;
    return name.length * 7 < width ? name : (fit > 0 ? name.slice(0, fit) + ".." : "");
  }

  function place(g, x, w) {
    const rect = g.querySelector("rect"), text = g.querySelector("text");
    rect.setAttribute("x", (pad + x).toFixed(2));
    rect.setAttribute("width", w.toFixed(2));
    text.setAttribute("x", (pad + x + 3).toFixed(2));
    text.textContent = label(g, w - 3);
  }

  function zoom(target) {
    const zx = target ? +target.dataset.x : 0, zw = target ? +target.dataset.w : total;
    const zd = target ? +target.dataset.d : 0, scale = plot / zw;
    for (const g of frames) {
      const x = +g.dataset.x, w = +g.dataset.w, d = +g.dataset.d;
      let shown;
      if (d < zd) {  // an ancestor spans the width
        shown = x <= zx && zx + zw <= x + w;
        if (shown) place(g, 0, plot);
      } else {
        shown = zx <= x && x + w <= zx + zw && w * scale >= 0.1;
        if (shown) place(g, (x - zx) * scale, w * scale);
      }
      g.style.display = shown ? "" : "none";
      g.classList.toggle("parent", Boolean(target) && d < zd);
    }
    resetButton.setAttribute("display", target ? "inline" : "none");
  }

  function search(pattern) {
    let regex = null;
    try { regex = pattern ? new RegExp(pattern) : null; } catch (e) { regex = null; }
    const spans = [];
    for (const g of frames) {
      const rect = g.querySelector("rect");
      if (!rect.dataset.fill) rect.dataset.fill = rect.getAttribute("fill");
      const hit = regex !== null && regex.test(g.dataset.name);
      rect.setAttribute("fill", hit ? "rgb(230,0,230)" : rect.dataset.fill);
      g.classList.toggle("match", hit);
      if (hit) spans.push([+g.dataset.x, +g.dataset.x + +g.dataset.w]);
    }
    spans.sort((a, b) => a[0] - b[0]);  // a match inside a match counts once
    let covered = 0, end = -1;
    for (const [start, stop] of spans) {
      if (stop <= end) continue;
      covered += stop - Math.max(start, end);
      end = stop;
    }
    matchedText.textContent = regex === null ? "" :
      "Matched: " + (100 * covered / total).toFixed(2) + "%";
  }

  for (const g of frames) g.addEventListener("click", () => zoom(g));
  resetButton.addEventListener("click", () => zoom(null));
  document.getElementById("search").addEventListener("click", () => {
    const pattern = prompt("Search frames (regular expression):", "");
    if (pattern !== null) search(pattern);
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { zoom(null); search(""); }
    if ((e.ctrlKey || e.metaKey) && e.key === "f") {
      e.preventDefault();
      const pattern = prompt("Search frames (regular expression):", "");
      if (pattern !== null) search(pattern);
    }
  });

  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("zoom")) zoom(frames.find((g) => g.dataset.name === params.get("zoom")) || null);
  if (params.get("search")) search(params.get("search"));
})();
"""
