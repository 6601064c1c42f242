"""A fixed-seed slice of every fuzzing campaign, and proof that the harness can fail.

The slices are small (about a minute in all on two cores); the campaigns themselves run
from the command line (README.md). Under CI=true a missing wasmtime or wasm-tools fails.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from conftest import unavailable

from . import tools
from .campaign import run_campaign
from .differential import judge
from .malformed import judge_cli, run_malformed
from .observe import Recipe, observe
from .reference import run_script
from .switch_programs import switching_module
from .wast_script import render

JOBS = 2
SLICES = {"smith": 200, "proposals": 150, "switching": 100}
MALFORMED_SLICE = 150


@pytest.fixture(autouse=True)
def reference_tools():
    try:
        tools.wasm_tools(), tools.wasmtime()
    except tools.ToolMissing as e:
        unavailable(str(e))


@pytest.mark.parametrize("campaign", list(SLICES))
def test_campaign_slice_agrees(campaign, tmp_path):
    summary = run_campaign(campaign, SLICES[campaign], seed=1, jobs=JOBS, results=tmp_path)
    assert summary.new_mismatches == 0, summary.text()
    # The slice exercised the engines: calls ran, some returned and some trapped.
    assert summary.calls > 3 * SLICES[campaign]
    assert 0 < summary.traps < summary.calls
    if campaign == "switching":
        assert summary.exceptions > 0


def test_malformed_slice_gets_one_line_errors(tmp_path):
    summary = run_malformed(MALFORMED_SLICE, seed=1, jobs=JOBS, results=tmp_path)
    assert summary.inputs == MALFORMED_SLICE
    assert not summary.failures, summary.text()
    assert summary.invalid > 0 and summary.endings["ran"] > 0, summary.text()


def test_switching_programs_are_deterministic_and_switch():
    first, _ = switching_module(7, 3)
    again, _ = switching_module(7, 3)
    assert first == again
    text = tools.to_text(first)
    for instruction in ("cont.new", "resume", "suspend"):
        assert instruction in text


# ---------------------------------------------------------------- the harness can fail

MODULE = """(module
  (memory (export "memory") 1)
  (global $g (export "g") (mut i32) (i32.const 0))
  (tag $e (param i32))
  (func (export "add") (param i32 i32) (result i32)
    (global.set $g (local.get 0))
    (i32.store (i32.const 8) (local.get 1))
    (i32.add (local.get 0) (local.get 1)))
  (func (export "div") (param i32) (result i32) (i32.div_u (i32.const 100) (local.get 0)))
  (func (export "throw") (param i32) (throw $e (local.get 0))))
"""


def observed(wasm: bytes) -> list[dict]:
    events = []
    observe(wasm, Recipe(args_seed=5), events.append)
    return events


def verdict_for(wasm: bytes, events: list[dict], tmp_path: Path):
    script = render(wasm, events, fuel=0, detail=True)
    path = tmp_path / "script.wast"
    path.write_text(script.text)
    return judge(events, script, run_script(path, timeout=30))


def edit(events: list[dict], export: str, change) -> list[dict]:
    """A copy of `events` with the first call to `export` after `change(returned event)`."""
    events = copy.deepcopy(events)
    calling = next(k for k, e in enumerate(events)
                   if e["event"] == "calling" and e["call"]["export"] == export)
    change(events[calling + 1])
    return events


def set_values(values):
    def change(event):
        event["outcome"] = {"kind": "return", "values": values}
    return change


def test_harness_reports_each_kind_of_difference(tmp_path):
    wasm = tools.run_wasm_tools(["parse", "-"], MODULE.encode()).stdout
    events = observed(wasm)
    assert verdict_for(wasm, events, tmp_path).status == "agree"

    def add_result(event):
        event["outcome"]["values"][0] += 1

    def trap_kind(event):
        event["outcome"] = {"kind": "trap", "trap": "unreachable", "message": "unreachable"}

    def state(event):
        event["state"]["hash"] ^= 1

    def exception(event):
        event["outcome"] = {"kind": "exception"}

    cases = [("add", add_result, "result"), ("add", trap_kind, "trap"), ("add", state, "state"),
             ("throw", set_values([]), "trap"), ("div", exception, "trap")]
    for export, change, kind in cases:
        verdict = verdict_for(wasm, edit(events, export, change), tmp_path)
        assert (verdict.status, verdict.kind) == ("mismatch", kind), (export, kind, verdict)


def test_malformed_judge():
    assert judge_cli(False, 1, "stackstitch: error: x.wasm: invalid module: ...\n")[1] is None
    assert judge_cli(False, 1, "stackstitch: error: a\nmore\n")[1] == "not one line"
    assert judge_cli(False, 0, "")[1] == "accepted invalid input"
    assert judge_cli(True, 70, "stackstitch: internal error: KeyError: 3\n")[1] == "internal error"
    assert judge_cli(True, -11, "")[1] == "crash"
    assert judge_cli(True, 134, "wasm backtrace:\n  #0 ...\ntrap: unreachable\n")[1] is None
    assert judge_cli(True, 1, "Traceback (most recent call last):\n")[1] == "traceback"
