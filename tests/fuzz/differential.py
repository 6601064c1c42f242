"""One differential check: a module on stackstitch (through a worker), then the script of
its observations on Wasmtime, then a verdict.

Verdicts: "agree"; "allowed" (a difference listed in README.md, such as the depth at
which the stack runs out); or a mismatch of one of these kinds:

  result       both returned, different values
  trap         they ended differently: values, trap kinds, an exception
  state        a global or memory differs after a call (or after instantiation)
  instantiate  instantiation ended differently
  error        stackstitch raised an error that is not a trap (internal or compile error)
  rejected     stackstitch refused a module Wasmtime accepts
  crash        generated code killed the process
  hang         stackstitch ran past the time limit, Wasmtime did not
  wasmtime     Wasmtime did something the script cannot compare (it hung, rejected the
               module, or failed in a way we cannot read)
  harness      a bug of the fuzzer itself
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import tools
from .observe import Recipe
from .reference import ReferenceRun, run_script
from .trap_kinds import EXHAUSTION
from .wast_script import Script, render

STACKSTITCH_TIMEOUT = 10.0  # seconds of silence from a module before it counts as hung
WASMTIME_TIMEOUT = 30.0


class Worker:
    """The parent's handle on a `worker` process (see worker.py). `in_process` forks from
    this process instead, which must then be single-threaded (the shrink predicate)."""

    def __init__(self, in_process: bool = False):
        self.proc = None
        self.in_process = in_process

    def start(self):
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.fuzz.worker"], cwd=tools.REPO_ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     bufsize=1)

    def run(self, wasm_path: Path, recipe: Recipe, timeout: float) -> list[dict]:
        job = {"wasm": str(wasm_path), "recipe": asdict(recipe), "timeout": timeout}
        if self.in_process:
            from .worker import run_job
            events = []
            run_job(job, lambda line: events.append(json.loads(line)))
            return events
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        events = []
        for line in self.proc.stdout:
            event = json.loads(line)
            if event["event"] == "done":
                return events
            events.append(event)
        self.proc = None
        return events + [{"event": "harness error", "message": "the worker exited"}]

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()
            self.proc = None


@dataclass
class Verdict:
    status: str  # "agree", "allowed" or "mismatch"
    kind: str = ""  # the mismatch kind (see above), or the allowed difference
    detail: str = ""
    calls: int = 0
    traps: int = 0  # calls that trapped, in both engines alike
    exceptions: int = 0
    hang_both: bool = False
    known_bug: str | None = None
    stackstitch: str = ""  # how stackstitch ended at the line in question
    wasmtime: str = ""  # and Wasmtime

    def signature(self) -> str:
        """What a reduced module must still show to count as the same mismatch: for an
        error, its message without numbers; for a trap, how each engine ended."""
        if self.kind == "error":
            return "error|" + re.sub(r"0x[0-9a-f]+|\d+", "N", self.detail)
        if self.kind in ("trap", "instantiate"):
            return f"{self.kind}|{self.stackstitch}|{self.wasmtime}"
        if self.kind in ("crash", "hang"):
            return f"{self.kind}|{self.stackstitch}"
        return self.kind


@dataclass
class Run:
    """Everything about one module's check, kept for a mismatch report."""

    verdict: Verdict
    events: list[dict] = field(default_factory=list)
    script: Script | None = None
    reference: ReferenceRun | None = None


def check_module(wasm: bytes, recipe: Recipe, workdir: Path, worker: Worker,
                 detail: bool = False) -> Run:
    """Run `wasm` on both engines and judge; leaves module.wasm and script.wast in workdir."""
    workdir.mkdir(parents=True, exist_ok=True)
    wasm_path = workdir / "module.wasm"
    wasm_path.write_bytes(wasm)
    events = worker.run(wasm_path, recipe, STACKSTITCH_TIMEOUT)
    script = render(wasm, events, recipe.fuel, detail=detail)
    script_path = workdir / "script.wast"
    script_path.write_text(script.text)
    reference = run_script(script_path, WASMTIME_TIMEOUT)
    verdict = judge(events, script, reference)
    count_outcomes(events, verdict)
    return Run(verdict, events, script, reference)


def count_outcomes(events: list[dict], verdict: Verdict) -> None:
    for event in events:
        if event["event"] == "returned":
            verdict.calls += 1
            kind = event["outcome"]["kind"]
            verdict.traps += kind == "trap"
            verdict.exceptions += kind == "exception"


def outcome_text(outcome: dict | None) -> str:
    if outcome is None:
        return ""
    if outcome["kind"] == "trap":
        return "trap:" + outcome["trap"]
    return outcome["kind"]


def judge(events: list[dict], script: Script, reference: ReferenceRun) -> Verdict:
    end = events[-1]["event"] if events else "harness error"
    if end == "harness error":
        return Verdict("mismatch", "harness", events[-1].get("message", "no events") if events else "no events")
    if reference.status == "error":
        return Verdict("mismatch", "harness", "Wasmtime could not read the script: " + reference.message)
    last_line = max(script.lines)
    failed = script.lines.get(reference.line) if reference.status == "fail" else None
    first_difference_is_last = failed is None or reference.line == last_line

    if end == "crash":
        how = events[-1].get("signal", events[-1].get("status"))
        return Verdict("mismatch", "crash", json.dumps(events[-1]), stackstitch=f"crash:{how}",
                       wasmtime=reference.outcome if reference.status == "fail" else reference.status)
    if end == "rejected":
        if reference.status == "fail" and failed.what == "module":
            return Verdict("agree", detail="both reject the module")
        return Verdict("mismatch", "rejected", events[-1]["message"], stackstitch="rejected",
                       wasmtime="accepted")
    if end == "hang" and first_difference_is_last:
        if reference.status == "timeout":
            return Verdict("agree", detail="both run past the time limit", hang_both=True)
        wasmtime = "exception" if reference.status == "pass" else reference.outcome
        return Verdict("mismatch", "hang", "stackstitch ran past the time limit",
                       stackstitch="hang", wasmtime=wasmtime)
    if reference.status == "timeout":
        return Verdict("mismatch", "wasmtime", "Wasmtime ran past the time limit",
                       wasmtime="timeout")
    if reference.status == "pass":
        final = script.lines[last_line]
        if final.expected and final.expected.get("kind") == "error":
            return Verdict("mismatch", "error", final.expected["message"],
                           stackstitch="error", wasmtime="exception")
        return Verdict("agree")
    return judge_failure(failed, reference)


def judge_failure(failed, reference: ReferenceRun) -> Verdict:
    """Wasmtime disagreed with the assertion on line `reference.line`."""
    wasmtime = reference.outcome
    expected = failed.expected or {}
    message = reference.message
    if failed.what == "state":
        return Verdict("mismatch", "state", message, stackstitch="state", wasmtime="state")
    if failed.what in ("host", "driver", "refuel"):
        return Verdict("mismatch", "harness", f"the driver failed: {message}")
    ours = outcome_text(expected) if failed.what in ("call", "module") and expected else ""
    if EXHAUSTION in (ours.removeprefix("trap:"), wasmtime.removeprefix("trap:")):
        return Verdict("allowed", "stack depth", message, stackstitch=ours, wasmtime=wasmtime)
    if expected.get("kind") == "error":
        return Verdict("mismatch", "error", expected["message"], stackstitch="error", wasmtime=wasmtime)
    if failed.what == "module":
        if ours == "exception" and wasmtime == "exception":  # no assertion says so for a module
            return Verdict("agree", detail="instantiation throws in both")
        if not expected:
            return Verdict("mismatch", "wasmtime", f"Wasmtime rejected the module: {message}",
                           wasmtime="rejected")
        return Verdict("mismatch", "instantiate", message, stackstitch=ours, wasmtime=wasmtime)
    if expected.get("kind") == "return" and wasmtime == "values differ":
        return Verdict("mismatch", "result", message, stackstitch="return", wasmtime="return")
    return Verdict("mismatch", "trap", message, stackstitch=ours, wasmtime=wasmtime)
