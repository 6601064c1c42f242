"""The interestingness predicate `wasm-tools shrink` runs on each smaller candidate: does
this module still show the same mismatch? Exit status 0 if so.

    python -m tests.fuzz.recheck SIGNATURE RECIPE.json CANDIDATE.wasm
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from .differential import Worker, check_module
from .observe import Recipe


def main(argv: list[str]) -> int:
    signature, recipe_path, candidate = argv
    recipe = Recipe(**json.loads(Path(recipe_path).read_text()))
    wasm = Path(candidate).read_bytes()
    with tempfile.TemporaryDirectory(prefix="stackstitch-recheck-") as workdir:
        verdict = check_module(wasm, recipe, Path(workdir), Worker(in_process=True)).verdict
    return 0 if verdict.status == "mismatch" and verdict.signature() == signature else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
