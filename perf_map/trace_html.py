"""A self-contained HTML page for a switch timeline: the Chrome trace-event document
embedded as JSON, drawn by the page's script as one row per stack (running intervals in
the stack's colour, suspended ones grey and labelled with their tag, an arrow at every
switch from the stack left to the stack entered), with the `trace report` table below.

Zoom with the mouse wheel or the + and - buttons, drag to pan; `page.html#t0=US&t1=US`
opens on that time range (microseconds from the start).
"""

from __future__ import annotations

import json
from html import escape

from .trace_report import render_report, summarize

MAX_ARROWS = 4000  # arrows drawn at once; zoom in to see them all


def render_html(document: dict, title: str) -> str:
    data = json.dumps(document, separators=(",", ":")).replace("</", "<\\/")
    rows = "".join(
        f"<tr><td>{escape(s.name)}</td><td>{s.run_us:,.3f}</td><td>{s.suspended_us:,.3f}</td>"
        f"<td>{s.resumes:,}</td><td>{s.longest_suspension_us:,.3f}</td>"
        f"<td>{escape(s.longest_suspension_tag)}</td>"
        f"<td>{escape(', '.join(f'{n} ({c})' for n, c in s.resumed_by.most_common(1)))}</td></tr>"
        for s in summarize(document))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<div id="controls"><button id="zoom-in">+</button> <button id="zoom-out">&minus;</button>
<button id="reset">whole run</button> <span id="range"></span> <span id="note"></span></div>
<svg id="timeline" xmlns="http://www.w3.org/2000/svg"></svg>
<table id="summary"><thead><tr><th>stack</th><th>run (us)</th><th>suspended (us)</th>
<th>resumes</th><th>longest suspension (us)</th><th>on tag</th><th>most resumed by</th></tr></thead>
<tbody>{rows}</tbody></table>
<pre id="report">{escape(render_report(document))}</pre>
<script type="application/json" id="trace">{data}</script>
<script>{_SCRIPT.replace("MAX_ARROWS", str(MAX_ARROWS))}</script>
</body></html>
"""


_STYLE = """
body { font-family: sans-serif; margin: 1em; }
#timeline { display: block; border: 1px solid #ccc; background: #fff; cursor: grab; }
.track-label { font-size: 12px; }
.run { stroke: #333; stroke-width: 0.3; }
.suspended { fill: url(#hatch); stroke: #888; stroke-width: 0.3; }
.slice-label { font-size: 10px; pointer-events: none; }
.flow { stroke: #c03; stroke-width: 1; marker-end: url(#arrow); opacity: 0.7; }
.axis { font-size: 10px; fill: #555; }
table { border-collapse: collapse; margin-top: 1em; font-size: 13px; }
td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
"""

_SCRIPT = r"""
(function () {
  const NS = "http://www.w3.org/2000/svg";
  const doc = JSON.parse(document.getElementById("trace").textContent);
  const names = new Map(), order = new Map(), slices = new Map(), starts = new Map(), flows = [];
  let end = 0;
  for (const e of doc.traceEvents) {
    if (e.ph === "M" && e.name === "thread_name") names.set(e.tid, e.args.name);
    else if (e.ph === "M" && e.name === "thread_sort_index") order.set(e.tid, e.args.sort_index);
    else if (e.ph === "X") {
      if (!slices.has(e.tid)) slices.set(e.tid, []);
      slices.get(e.tid).push(e);
      end = Math.max(end, e.ts + e.dur);
    } else if (e.ph === "s") starts.set(e.id, e);
    else if (e.ph === "f" && starts.has(e.id)) flows.push([starts.get(e.id), e]);
  }
  const tids = Array.from(names.keys()).sort((a, b) => (order.get(a) ?? a) - (order.get(b) ?? b));
  const row = new Map(tids.map((tid, k) => [tid, k]));
  const LABEL = 230, WIDTH = 1000, ROW = 26, TOP = 24;
  const svg = document.getElementById("timeline");
  svg.setAttribute("width", LABEL + WIDTH + 10);
  svg.setAttribute("height", TOP + ROW * tids.length + 10);
  let view = [0, end || 1];
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has("t0") && params.has("t1")) view = [+params.get("t0"), +params.get("t1")];

  function el(name, attrs, parent, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    parent.appendChild(node);
    return node;
  }
  function colour(tid) { return tid === 0 ? "hsl(210,15%,70%)" : `hsl(${(tid * 47) % 360},65%,62%)`; }

  function draw() {
    svg.textContent = "";
    const defs = el("defs", {}, svg);
    const hatch = el("pattern", {id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse",
                                 patternTransform: "rotate(45)"}, defs);
    el("rect", {width: 6, height: 6, fill: "#e4e4e4"}, hatch);
    el("line", {x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#aaa", "stroke-width": 2}, hatch);
    const marker = el("marker", {id: "arrow", viewBox: "0 0 6 6", refX: 6, refY: 3,
                                 markerWidth: 6, markerHeight: 6, orient: "auto-start-reverse"}, defs);
    el("path", {d: "M0,0 L6,3 L0,6 z", fill: "#c03"}, marker);
    const [t0, t1] = view, scale = WIDTH / (t1 - t0);
    const x = (t) => LABEL + (t - t0) * scale;
    for (let k = 0; k <= 5; k++) {
      const t = t0 + (t1 - t0) * k / 5;
      el("text", {class: "axis", x: x(t), y: 12, "text-anchor": k === 5 ? "end" : "middle"},
         svg, `${t.toFixed(1)} us`);
    }
    for (const tid of tids) {
      const y = TOP + row.get(tid) * ROW;
      el("text", {class: "track-label", x: 4, y: y + ROW / 2 + 4}, svg, names.get(tid));
      const group = el("g", {class: "track", "data-tid": tid}, svg);
      for (const e of slices.get(tid) || []) {
        if (e.ts + e.dur < t0 || e.ts > t1) continue;
        const left = Math.max(x(e.ts), LABEL), right = Math.min(x(e.ts + e.dur), LABEL + WIDTH);
        const w = Math.max(right - left, 0.5);
        const rect = el("rect", {class: e.cat === "run" ? "run" : "suspended", x: left, y: y + 3,
                                 width: w, height: ROW - 6, "data-ts": e.ts, "data-dur": e.dur},
                        group);
        if (e.cat === "run") rect.setAttribute("fill", colour(tid));
        el("title", {}, rect, `${e.name}: ${e.dur.toFixed(3)} us at ${e.ts.toFixed(3)} us`);
        const label = e.cat === "run" ? e.name : e.name.replace("suspended: ", "");
        if (w > label.length * 6 + 6)
          el("text", {class: "slice-label", x: left + 3, y: y + ROW / 2 + 3}, group, label);
      }
    }
    const visible = flows.filter(([s, f]) => f.ts >= t0 && f.ts <= t1);
    const note = document.getElementById("note");
    note.textContent = visible.length > MAX_ARROWS ?
      `${visible.length} switches in view: zoom in to see their arrows` : "";
    if (visible.length <= MAX_ARROWS) {
      for (const [s, f] of visible) {
        if (!row.has(s.tid) || !row.has(f.tid) || s.tid === f.tid) continue;
        const ys = TOP + row.get(s.tid) * ROW + ROW / 2, yf = TOP + row.get(f.tid) * ROW + ROW / 2;
        const line = el("line", {class: "flow", x1: x(f.ts), y1: ys, x2: x(f.ts), y2: yf,
                                 "data-from": s.tid, "data-to": f.tid}, svg);
        el("title", {}, line, `${f.name}: ${names.get(s.tid)} -> ${names.get(f.tid)}`);
      }
    }
    document.getElementById("range").textContent = `${t0.toFixed(1)} - ${t1.toFixed(1)} us`;
  }

  function zoom(factor, at) {
    const [t0, t1] = view, centre = at ?? (t0 + t1) / 2;
    view = [centre - (centre - t0) * factor, centre + (t1 - centre) * factor];
    draw();
  }
  document.getElementById("zoom-in").onclick = () => zoom(0.5);
  document.getElementById("zoom-out").onclick = () => zoom(2);
  document.getElementById("reset").onclick = () => { view = [0, end || 1]; draw(); };
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const t = view[0] + (e.offsetX - LABEL) * (view[1] - view[0]) / WIDTH;
    zoom(e.deltaY < 0 ? 0.8 : 1.25, t);
  });
  let drag = null;
  svg.addEventListener("mousedown", (e) => { drag = [e.clientX, view.slice()]; });
  window.addEventListener("mouseup", () => { drag = null; });
  window.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const shift = (drag[0] - e.clientX) * (drag[1][1] - drag[1][0]) / WIDTH;
    view = [drag[1][0] + shift, drag[1][1] + shift];
    draw();
  });
  draw();
})();
"""
