"""Run a fuzzing campaign; see README.md.

    python -m tests.fuzz --campaign smith --count 10000 --seed 1 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .campaign import Summary, run_campaign
from .differential import Worker
from .malformed import run_malformed
from .shrink import shrink_finding
from .tools import ToolMissing, wasm_tools, wasmtime

CAMPAIGNS = ("smith", "proposals", "switching", "malformed")
DEFAULT_RESULTS = Path(__file__).resolve().parent / "results"
KNOWN_SHRUNK = 2  # known-bug mismatches reduced per bug under --shrink=new
NEW_ATTEMPTS, KNOWN_ATTEMPTS = 1000, 200  # wasm-tools shrink attempts: about 0.3 s each


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz",
                                     description="Differential fuzzing of stackstitch against Wasmtime.")
    parser.add_argument("--campaign", choices=CAMPAIGNS, required=True,
                        help="smith: core features; proposals: exceptions, tail calls, memory64, "
                             "multi-memory; switching: generated stack-switching programs; "
                             "malformed: broken input through the command line")
    parser.add_argument("--count", type=int, default=100, help="modules (inputs) to check")
    parser.add_argument("--seed", type=int, default=1, help="campaign seed")
    parser.add_argument("--first", type=int, default=0,
                        help="index of the first module (to replay module N: --first N --count 1)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel lanes")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS,
                        help=f"where findings and summaries go (default: {DEFAULT_RESULTS})")
    parser.add_argument("--shrink", choices=("new", "all", "none"), default="new",
                        help="reduce new mismatches (and a few per known bug), all, or none")
    return parser.parse_args(argv)


def shrink_findings(summary: Summary, mode: str, jobs: int) -> None:
    chosen, per_bug = [], {}
    for finding in summary.findings:
        verdict = finding.verdict
        if verdict["status"] != "mismatch" or mode == "none":
            continue
        bug = verdict["known_bug"]
        if mode == "all" or bug is None or per_bug.get(bug, 0) < KNOWN_SHRUNK:
            per_bug[bug] = per_bug.get(bug, 0) + 1
            chosen.append(finding)

    def shrink(finding) -> None:
        worker = Worker()
        attempts = KNOWN_ATTEMPTS if finding.verdict["known_bug"] else NEW_ATTEMPTS
        try:
            reduced = shrink_finding(Path(finding.directory), worker, attempts)
        finally:
            worker.close()
        if reduced is not None:
            finding.reduced = str(Path(finding.directory) / "reduced.wasm")
            finding.verdict["reduced_verdict"] = {"kind": reduced.kind, "status": reduced.status,
                                                  "known_bug": reduced.known_bug}

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(shrink, chosen))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        wasm_tools(), wasmtime()
    except ToolMissing as e:
        print(f"fuzz: {e}", file=sys.stderr)
        return 2
    args.results.mkdir(parents=True, exist_ok=True)
    if args.campaign == "malformed":
        summary = run_malformed(args.count, args.seed, args.jobs, args.results)
        failed = sum(summary.failures.values())
    else:
        summary = run_campaign(args.campaign, args.count, args.seed, args.jobs, args.results,
                               first=args.first)
        shrink_findings(summary, args.shrink, args.jobs)
        failed = summary.new_mismatches
    name = f"{args.campaign}-seed{args.seed}"
    (args.results / f"{name}-summary.json").write_text(json.dumps(summary.to_json(), indent=1, default=str))
    (args.results / f"{name}-summary.txt").write_text(summary.text() + "\n")
    print(summary.text())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
