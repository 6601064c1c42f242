"""Run a differential campaign: many modules, checked in parallel lanes, mismatches saved.

Each lane is a thread with its own worker process; the heavy work happens in the worker,
in wasm-tools and in Wasmtime, all separate processes, so `jobs` lanes keep that many
cores busy. Every mismatch and allowed difference is saved under the results directory
as module.wasm, the recipe to replay it, stackstitch's events, the script Wasmtime ran
(with every global and memory checked on its own) and Wasmtime's answer.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import tools
from .differential import Run, Verdict, Worker, check_module
from .generators import make_module
from .known_bugs import known_bug
from .observe import Recipe


@dataclass
class Finding:
    """A saved mismatch or allowed difference."""

    index: int
    directory: str
    verdict: dict
    reduced: str | None = None  # the reduced module, once shrunk


@dataclass
class Summary:
    campaign: str
    seed: int
    modules: int = 0
    calls: int = 0
    traps: int = 0  # calls that trapped the same way in both engines
    exceptions: int = 0
    agree: int = 0
    hang_both: int = 0  # modules where both engines ran past the time limit
    crashes: int = 0  # stackstitch crashed: new or known bug alike
    hangs: int = 0  # stackstitch ran past the time limit alone
    allowed: Counter = field(default_factory=Counter)
    mismatches: Counter = field(default_factory=Counter)  # new ones, by kind
    known: Counter = field(default_factory=Counter)  # by known bug
    seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)

    def add(self, verdict: Verdict) -> None:
        self.modules += 1
        self.calls += verdict.calls
        self.traps += verdict.traps
        self.exceptions += verdict.exceptions
        self.hang_both += verdict.hang_both
        self.crashes += verdict.kind == "crash"
        self.hangs += verdict.kind == "hang"
        if verdict.status == "agree":
            self.agree += 1
        elif verdict.status == "allowed":
            self.allowed[verdict.kind] += 1
        elif verdict.known_bug:
            self.known[verdict.known_bug] += 1
        else:
            self.mismatches[verdict.kind] += 1

    @property
    def new_mismatches(self) -> int:
        return sum(self.mismatches.values())

    def text(self) -> str:
        per_thousand = 1000 * self.seconds / self.modules if self.modules else 0
        lines = [f"campaign {self.campaign}, seed {self.seed}: {self.modules} modules, "
                 f"{self.calls} calls ({self.traps} trapped, {self.exceptions} threw), "
                 f"{self.seconds:.0f} s ({per_thousand:.0f} s per 1000 modules)",
                 f"  agree: {self.agree} (both past the time limit: {self.hang_both})",
                 f"  new mismatches: {self.new_mismatches} {dict(self.mismatches)}",
                 f"  crashes: {self.crashes}, hangs: {self.hangs} (new or known)",
                 f"  known bugs: {sum(self.known.values())} {dict(self.known)}",
                 f"  allowed differences: {sum(self.allowed.values())} {dict(self.allowed)}"]
        for finding in self.findings:
            v = finding.verdict
            label = f"known:{v['known_bug']}" if v["known_bug"] else v["status"]
            reduced = f", reduced: {finding.reduced}" if finding.reduced else ""
            lines.append(f"  - {label} {v['kind']} #{finding.index}: {finding.directory}{reduced}\n"
                         f"      {v['detail'][:300]}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["findings"] = [asdict(f) for f in self.findings]
        data["new_mismatches"] = self.new_mismatches
        return data


def save_finding(run: Run, wasm: bytes, recipe: Recipe, directory: Path, worker: Worker) -> None:
    """Keep everything needed to look at a mismatch again; the script is rerun with every
    global and memory checked on its own, to say which one differs."""
    directory.mkdir(parents=True, exist_ok=True)
    detailed = check_module(wasm, recipe, directory, worker, detail=True)
    (directory / "recipe.json").write_text(json.dumps(asdict(recipe)))
    (directory / "stackstitch.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in detailed.events))
    reference = detailed.reference
    (directory / "wasmtime.txt").write_text(
        f"{reference.status} at line {reference.line}\n{reference.message}\n")
    verdict = asdict(run.verdict)
    verdict["detailed"] = asdict(detailed.verdict)
    (directory / "verdict.json").write_text(json.dumps(verdict, indent=1))


def run_campaign(campaign: str, count: int, seed: int, jobs: int, results: Path,
                 first: int = 0, log=sys.stderr) -> Summary:
    """Check modules first .. first+count-1 of the campaign."""
    summary = Summary(campaign, seed)
    out_dir = results / f"{campaign}-seed{seed}"
    lock = threading.Lock()
    lanes = threading.local()
    scratch = Path(tempfile.mkdtemp(prefix="stackstitch-fuzz-"))
    started = time.monotonic()
    workers: list[Worker] = []

    def lane_worker() -> Worker:
        if not hasattr(lanes, "worker"):
            lanes.worker = Worker()
            lanes.dir = Path(tempfile.mkdtemp(dir=scratch))
            with lock:
                workers.append(lanes.worker)
        return lanes.worker

    def check(index: int) -> None:
        worker = lane_worker()
        directory = out_dir / str(index)
        try:
            wasm, recipe = make_module(campaign, seed, index)
            run = check_module(wasm, recipe, lanes.dir, worker)
            verdict = run.verdict
            if verdict.status == "mismatch":
                verdict.known_bug = known_bug(verdict, tools.to_text(wasm))
            if verdict.status != "agree":
                save_finding(run, wasm, recipe, directory, worker)
        except Exception:  # a bug of the harness: counted and shown, the campaign goes on
            verdict = Verdict("mismatch", "harness", traceback.format_exc())
        with lock:
            summary.add(verdict)
            if verdict.status != "agree":
                summary.findings.append(Finding(index, str(directory), asdict(verdict)))
            if summary.modules % 500 == 0 or verdict.status == "mismatch" and not verdict.known_bug:
                elapsed = time.monotonic() - started
                print(f"{campaign}: {summary.modules}/{count} modules, "
                      f"{summary.new_mismatches} new mismatches, {sum(summary.known.values())} known, "
                      f"{elapsed:.0f} s" + (f"  [#{index}: {verdict.kind}: {verdict.detail[:200]}]"
                                            if verdict.status == "mismatch" and not verdict.known_bug else ""),
                      file=log, flush=True)

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for future in [pool.submit(check, i) for i in range(first, first + count)]:
                future.result()
    finally:
        for worker in workers:
            worker.close()
        shutil.rmtree(scratch, ignore_errors=True)
    summary.seconds = time.monotonic() - started
    summary.findings.sort(key=lambda f: f.index)
    return summary
