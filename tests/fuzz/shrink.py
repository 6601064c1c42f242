"""Reduce a saved mismatch with `wasm-tools shrink`, keeping what makes it the same
mismatch (`Verdict.signature`), and check the reduced module again for the report."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from . import tools
from .differential import Verdict, Worker, check_module
from .known_bugs import known_bug
from .observe import Recipe

SHRINK_TIMEOUT = 600.0


def predicate_script(directory: Path, signature: str) -> Path:
    script = directory / "predicate.sh"
    script.write_text("#!/bin/sh\n"
                      f"cd {shlex.quote(str(tools.REPO_ROOT))} || exit 2\n"
                      f"exec {shlex.quote(sys.executable)} -m tests.fuzz.recheck "
                      f"{shlex.quote(signature)} {shlex.quote(str(directory / 'recipe.json'))} \"$1\"\n")
    script.chmod(0o755)
    return script


def shrink_finding(directory: Path, worker: Worker, attempts: int) -> Verdict | None:
    """Write reduced.wasm and reduced.wat, and the reduced module's run (script, verdict,
    Wasmtime's answer) into `directory`/reduced-run; returns that run's verdict, or None
    if shrinking failed."""
    saved = json.loads((directory / "verdict.json").read_text())
    signature = Verdict(**{k: v for k, v in saved.items() if k in Verdict.__dataclass_fields__}).signature()
    predicate = predicate_script(directory, signature)
    reduced = directory / "reduced.wasm"
    try:
        proc = tools.run_wasm_tools(["shrink", "--attempts", str(attempts), str(predicate),
                                     str(directory / "module.wasm"), "-o", str(reduced)],
                                    timeout=SHRINK_TIMEOUT)
        if proc.returncode != 0:
            (directory / "shrink-error.txt").write_bytes(proc.stderr)
    except subprocess.TimeoutExpired:
        pass  # wasm-tools writes each smaller module as it finds it: keep the smallest
    if not reduced.exists():
        return None
    (directory / "reduced.wat").write_text(tools.to_text(reduced.read_bytes()))
    recipe = Recipe(**json.loads((directory / "recipe.json").read_text()))
    run_dir = directory / "reduced-run"
    run = check_module(reduced.read_bytes(), recipe, run_dir, worker, detail=True)
    run.verdict.known_bug = (known_bug(run.verdict, (directory / "reduced.wat").read_text())
                             if run.verdict.status == "mismatch" else None)
    (run_dir / "verdict.json").write_text(json.dumps(asdict(run.verdict), indent=1))
    (run_dir / "wasmtime.txt").write_text(
        f"{run.reference.status} at line {run.reference.line}\n{run.reference.message}\n")
    return run.verdict
