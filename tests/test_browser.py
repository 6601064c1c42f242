"""What the profiling outputs look like in a real browser (Debian's chromium, headless): the
flame graph of a 3-level producer/consumer pipeline, with its scripts run, read back
through the page's DOM."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent / "data" / "profiling"
SVG = "{http://www.w3.org/2000/svg}"
LEVELS = ("consumer", "filter", "producer")


def browser_dom(require_tool, tmp_path: Path, url: str) -> str:
    """The DOM of `url` after its scripts ran, serialized by chromium."""
    chromium = require_tool("chromium")
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
                           "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def pipeline_flamegraph(tmp_path_factory) -> Path:
    """A flame graph of data/profiling/pipeline.wat, through `stackstitch perf`."""
    from conftest import find_tool, unavailable
    if find_tool("perf") is None:
        unavailable("perf is not installed")
    tmp = tmp_path_factory.mktemp("pipeline")
    cli = [sys.executable, "-m", "stackstitch.engine.cli", "perf"]
    proc = subprocess.run([*cli, "record", "-o", tmp / "profile", "-F", "5000", DATA / "pipeline.wat",
                           "--invoke", "main", "200000"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    svg = tmp / "flame.svg"
    proc = subprocess.run([*cli, "report", "-o", tmp / "profile", "--by", "continuation",
                           "--flamegraph", svg, "--folded", tmp / "folded.txt"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for level in LEVELS:  # time per continuation, grouped by the function it was created from
        assert re.search(rf"^\s+[\d.]+%\s+[\d.]+%\s+[\d,]+\s+{level}$", proc.stdout, re.M), proc.stdout
    return svg


def frames(document: ET.Element) -> list[ET.Element]:
    return [g for g in document.iter(f"{SVG}g") if "frame" in g.get("class", "").split()]


def shown(g: ET.Element) -> bool:
    return "display: none" not in g.get("style", "")


def test_flame_graph_marks_every_continuation_boundary(require_tool, tmp_path, pipeline_flamegraph):
    document = ET.fromstring(browser_dom(require_tool, tmp_path, pipeline_flamegraph.as_uri()))
    all_frames = frames(document)
    assert len(all_frames) > 10
    for g in all_frames:
        rect = g.find(f"{SVG}rect")
        assert float(rect.get("width")) > 0 and g.find(f"{SVG}title").text
    boundaries = {g.get("data-name"): g for g in all_frames if "boundary" in g.get("class").split()}
    depth = {}
    for level in LEVELS:
        g = boundaries[f"[continuation: {level}]"]  # a distinct frame, labelled
        assert g.find(f"{SVG}text").text == f"continuation: {level}"
        assert g.find(f"{SVG}rect").get("fill") == "rgb(70,130,220)"
        depth[level] = int(g.get("data-d"))
        # The continuation's own function sits right on its boundary.
        above = [f for f in all_frames if f.get("data-name") == level
                 and int(f.get("data-d")) == depth[level] + 1]
        assert above, level
    assert depth["consumer"] < depth["filter"] < depth["producer"]
    wasm_colours = {g.find(f"{SVG}rect").get("fill") for g in all_frames if "wasm" in g.get("class")}
    assert "rgb(70,130,220)" not in wasm_colours


def test_flame_graph_search_and_zoom_run_in_the_browser(require_tool, tmp_path, pipeline_flamegraph):
    url = pipeline_flamegraph.as_uri() + "#search=^work$&zoom=[continuation: filter]"
    document = ET.fromstring(browser_dom(require_tool, tmp_path, url))
    all_frames = frames(document)
    matched = next(t for t in document.iter(f"{SVG}text") if t.get("id") == "matched")
    share = float(re.fullmatch(r"Matched: ([\d.]+)%", matched.text).group(1))
    hits = [g for g in all_frames if "match" in g.get("class").split()]
    assert hits and 0 < share <= 100
    assert all(g.get("data-name") == "work" for g in hits)
    assert all(g.find(f"{SVG}rect").get("fill") == "rgb(230,0,230)" for g in hits)

    zoomed = next(g for g in all_frames if g.get("data-name") == "[continuation: filter]")
    plot = float(document.get("data-plot"))
    assert float(zoomed.find(f"{SVG}rect").get("width")) == pytest.approx(plot)
    visible = [g for g in all_frames if shown(g)]
    names = {g.get("data-name") for g in visible}
    assert {"filter", "producer", "[continuation: producer]"} <= names
    assert "consumer" in names  # an ancestor, spanning the width
    hidden = [g for g in all_frames if not shown(g)]
    assert hidden  # frames beside the zoomed one
    x0 = int(zoomed.get("data-x"))
    x1 = x0 + int(zoomed.get("data-w"))
    for g in visible:
        x, w, d = int(g.get("data-x")), int(g.get("data-w")), int(g.get("data-d"))
        if d >= int(zoomed.get("data-d")):
            assert x0 <= x and x + w <= x1, g.get("data-name")


# ---- the switch timeline ------------------------------------------------------------------

def html_elements(dom: str, tag: str, cls: str | None = None) -> list[str]:
    """The opening tags (with attributes) of the elements named `tag` (of class `cls`)."""
    found = re.findall(rf"<{tag}\b[^>]*>", dom)
    return [t for t in found if cls is None or re.search(rf'class="[^"]*\b{cls}\b', t)]


@pytest.fixture(scope="module")
def scheduler_timeline(tmp_path_factory) -> tuple[Path, dict]:
    """`stackstitch trace record --html` of the 10-task scheduler, 40 switches."""
    import json
    tmp = tmp_path_factory.mktemp("timeline")
    proc = subprocess.run([sys.executable, "-m", "stackstitch.engine.cli", "trace", "record",
                           "-o", tmp / "trace.json", "--html", tmp / "timeline.html",
                           DATA / "scheduler.wat", "--invoke", "main", "40", "20"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return tmp / "timeline.html", json.loads((tmp / "trace.json").read_text())


def test_html_timeline_draws_every_stack_interval_and_switch(require_tool, tmp_path, scheduler_timeline):
    page, trace = scheduler_timeline
    dom = browser_dom(require_tool, tmp_path, page.as_uri())
    events = trace["traceEvents"]
    threads = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    runs = [e for e in events if e.get("cat") == "run"]
    suspensions = [e for e in events if e.get("cat") == "suspended"]
    switches = [e for e in events if e["ph"] == "f"]
    assert len(threads) == 11 and suspensions and len(switches) == 42

    labels = re.findall(r'<text class="track-label"[^>]*>([^<]*)</text>', dom)
    assert labels == [threads[tid] for tid in sorted(threads)]  # one row per stack, in order
    assert len(html_elements(dom, "rect", "run")) == len(runs)
    suspended = re.findall(r'<rect class="suspended"[^>]*><title>([^<]*)</title>', dom)
    assert len(suspended) == len(suspensions) and all(t.startswith("suspended: yield") for t in suspended)
    arrows = html_elements(dom, "line", "flow")
    assert len(arrows) == len(switches)
    pairs = {(int(re.search(r'data-from="(\d+)"', a).group(1)), int(re.search(r'data-to="(\d+)"', a).group(1)))
             for a in arrows}
    assert (1, 2) in pairs and (10, 1) in pairs and (0, 1) in pairs  # ring order; main starts task 1
    rows = re.findall(r"<tr><td>([^<]*)</td>", dom)
    assert rows == [threads[tid] for tid in sorted(threads)]  # the report table


def test_html_timeline_zooms_to_a_time_range(require_tool, tmp_path, scheduler_timeline):
    page, trace = scheduler_timeline
    whole = len(html_elements(browser_dom(require_tool, tmp_path, page.as_uri()), "rect", "run"))
    middle = trace["otherData"]["duration_us"] / 2
    dom = browser_dom(require_tool, tmp_path, page.as_uri() + f"#t0={middle:.3f}&t1={middle + 5:.3f}")
    assert f"{middle:.1f} - {middle + 5:.1f} us" in dom
    assert 0 < len(html_elements(dom, "rect", "run")) < whole
