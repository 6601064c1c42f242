"""Campaign (d): malformed input through the command line.

Small seed modules (from the three module campaigns in turn) are truncated at every
offset, have bytes flipped, and are mutated by `wasm-tools mutate`. Each input goes to
`stackstitch run FILE` under a time limit. An input wasm-tools rejects must end with exit
status 1 and one line on stderr; a valid one may run, and then ends with 0, 1 (it cannot
be linked: one line), 134 (a trap report) or the time limit, if Wasmtime also runs that
long. Never a traceback, an internal error (70), a signal or another status.
"""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from . import tools
from .generators import SMITH_COMMON, SMITH_CORE, SMITH_PROPOSALS
from .switch_programs import switching_module

CLI_TIMEOUT = 10.0
FLIPS, MUTATIONS = 300, 300  # per seed module, after its truncations (mutate may fail)
EXIT_LOAD_ERROR, EXIT_TRAP = 1, 134


@dataclass
class Input:
    label: str  # how it was made, e.g. "seed 3 (smith) truncated at 120"
    data: bytes


def seed_module(seed: int, n: int) -> tuple[str, bytes]:
    """Seed module `n`: small, so that truncating it at every offset stays affordable."""
    rng = random.Random(f"malformed/{seed}/{n}")
    kind = ("smith", "proposals", "switching")[n % 3]
    if kind == "switching":
        return kind, switching_module(seed, 100_000 + n)[0]
    features = SMITH_CORE if kind == "smith" else SMITH_PROPOSALS
    for _ in range(20):
        entropy = rng.randbytes(rng.randrange(200, 1200))
        proc = tools.run_wasm_tools(["smith", *SMITH_COMMON, *features, "--max-imports", "0", "--min-types", "1",
                                     "--min-funcs", "2", "--max-funcs", "6"], entropy)
        if proc.returncode == 0:
            return kind, proc.stdout
    raise RuntimeError(f"wasm-smith failed for malformed seed {n}")


def mutations(wasm: bytes, rng: random.Random, count: int, scratch: Path) -> Iterator[bytes]:
    source = scratch / "seed.wasm"
    source.write_bytes(wasm)
    for _ in range(count):
        proc = tools.run_wasm_tools(["mutate", "--seed", str(rng.getrandbits(32)), str(source)])
        if proc.returncode == 0:
            yield proc.stdout


def inputs(seed: int, count: int, scratch: Path) -> Iterator[Input]:
    """The campaign's inputs, in a fixed order: seed after seed, its truncations at every
    offset, byte flips and mutants taken in turn (so that any slice has all three)."""
    produced, n = 0, 0
    while True:
        kind, wasm = seed_module(seed, n)
        rng = random.Random(f"malformed/{seed}/{n}/edits")
        name = f"seed {n} ({kind})"
        truncated = [Input(f"{name} truncated at {k}", wasm[:k]) for k in range(len(wasm))]
        flipped = []
        for _ in range(FLIPS):
            data = bytearray(wasm)
            for _ in range(rng.randrange(1, 4)):
                data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
            flipped.append(Input(f"{name} with bytes flipped", bytes(data)))
        mutated = [Input(f"{name} mutated", m) for m in mutations(wasm, rng, MUTATIONS, scratch)]
        family = [item for group in itertools.zip_longest(truncated, flipped, mutated)
                  for item in group if item is not None]
        for item in family:
            if produced == count:
                return
            produced += 1
            yield item
        n += 1


@dataclass
class MalformedSummary:
    seed: int
    inputs: int = 0
    invalid: int = 0  # rejected by wasm-tools, and by stackstitch with one line
    valid: int = 0
    endings: Counter = field(default_factory=Counter)  # how valid inputs ended
    failures: Counter = field(default_factory=Counter)  # by kind
    seconds: float = 0.0
    findings: list[dict] = field(default_factory=list)

    def text(self) -> str:
        per_thousand = 1000 * self.seconds / self.inputs if self.inputs else 0
        lines = [f"campaign malformed, seed {self.seed}: {self.inputs} inputs, "
                 f"{self.seconds:.0f} s ({per_thousand:.0f} s per 1000 inputs)",
                 f"  invalid, rejected with one line: {self.invalid}",
                 f"  valid: {self.valid} {dict(self.endings)}",
                 f"  failures: {sum(self.failures.values())} {dict(self.failures)}"]
        lines += [f"  - {f['kind']}: {f['label']}: {f['directory']}\n      {f['detail'][:300]}"
                  for f in self.findings]
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def judge_cli(valid: bool, status: int | None, stderr: str) -> tuple[str, str | None]:
    """(ending, failure kind or None) for one run of the command line."""
    lines = stderr.splitlines()
    if status is None:
        return "time limit", None if valid else "hang"
    if status < 0:
        return f"signal {-status}", "crash"
    if "Traceback" in stderr:
        return f"exit {status}", "traceback"
    if status == 70:
        return "exit 70", "internal error"
    if not valid:
        if status != EXIT_LOAD_ERROR:
            return f"exit {status}", "accepted invalid input"
        return "rejected", None if len(lines) == 1 and lines[0].startswith("stackstitch: error:") \
            else "not one line"
    if status == 0:
        return "ran", None
    if status == EXIT_LOAD_ERROR:
        return "load error", None if len(lines) == 1 else "not one line"
    if status == EXIT_TRAP:
        return "trapped", None if lines and lines[-1].startswith("trap: ") else "bad trap report"
    return f"exit {status}", "unexpected status"


def wasmtime_hangs(path: Path) -> bool:
    """Does Wasmtime also run this module past the time limit (then so may we)?"""
    try:
        subprocess.run([tools.wasmtime(), "run", "-W", tools.WASMTIME_FEATURES, str(path)],
                       capture_output=True, timeout=CLI_TIMEOUT, env=tools.TOOL_ENV)
    except subprocess.TimeoutExpired:
        return True
    return False


def run_malformed(count: int, seed: int, jobs: int, results: Path, log=sys.stderr) -> MalformedSummary:
    summary = MalformedSummary(seed)
    out_dir = results / f"malformed-seed{seed}"
    stackstitch = str(Path(sys.executable).parent / "stackstitch")
    lock = threading.Lock()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="stackstitch-fuzz-") as scratch_name:
        scratch = Path(scratch_name)

        def check(number: int, item: Input) -> None:
            path = scratch / f"input{number}.wasm"
            path.write_bytes(item.data)
            valid = tools.is_valid(item.data)
            try:
                proc = subprocess.run([stackstitch, "run", str(path)], capture_output=True,
                                      timeout=CLI_TIMEOUT, cwd=scratch)
                status, stderr = proc.returncode, proc.stderr.decode("utf-8", "replace")
            except subprocess.TimeoutExpired:
                status, stderr = None, ""
            ending, failure = judge_cli(valid, status, stderr)
            if status is None and valid and not wasmtime_hangs(path):
                failure = "hang"
            with lock:
                summary.inputs += 1
                if valid:
                    summary.valid += 1
                    summary.endings[ending] += 1
                elif failure is None:
                    summary.invalid += 1
                if failure:
                    summary.failures[failure] += 1
                    directory = out_dir / str(number)
                    directory.mkdir(parents=True, exist_ok=True)
                    (directory / "input.wasm").write_bytes(item.data)
                    finding = {"kind": failure, "label": item.label, "directory": str(directory),
                               "valid": valid, "status": status, "detail": stderr.strip()[-2000:]}
                    (directory / "finding.json").write_text(json.dumps(finding, indent=1))
                    summary.findings.append(finding)
                    print(f"malformed: input {number} ({item.label}): {failure}", file=log, flush=True)
                if summary.inputs % 1000 == 0:
                    print(f"malformed: {summary.inputs}/{count} inputs, "
                          f"{sum(summary.failures.values())} failures, "
                          f"{time.monotonic() - started:.0f} s", file=log, flush=True)
            path.unlink()

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(check, number, item)
                       for number, item in enumerate(inputs(seed, count, scratch))]
            for future in futures:
                future.result()
    summary.seconds = time.monotonic() - started
    return summary
