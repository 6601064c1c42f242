"""Real perf samples of the switching kernels (benchmarks/kernels), both switching modes:
every sample in JIT code has a frame-pointer chain that reaches the entry stub, and every
sample taken inside a continuation names the right resumer with no false frame in
between. tests/test_fp_chains.py checks the same at every instruction, without sampling.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from stackstitch.perf_map.samples import SCRIPT_FIELDS, parse_perf_script

KERNELS = Path(__file__).resolve().parent.parent / "benchmarks" / "kernels"
ENTRY = "stackstitch_entry"
START = "stackstitch_continuation_start"
FREQUENCY = 10_000
MIN_CONTINUATION_SAMPLES = 10_000  # over all kernels and modes

# kernel file, export, argument, the function its continuations run, and the Wasm
# functions a chain may show (innermost first, stubs left out).
KERNEL_RUNS = [
    ("switch_generator.wat", "run", 20_000_000, "countdown", r"(countdown )?run"),
    ("switch_pingpong.wat", "run", 20_000_000, "player", r"(player )?run"),
    ("switch_handlers.wat", "run", 4_000_000, "level", r"(level ){0,11}run"),
    ("switch_churn.wat", "churn", 2_500_000, "once", r"((once )?drain )?churn"),
]


def profile(require_tool, tmp_path: Path, kernel: str, export: str, n: int, mode: str):
    perf = require_tool("perf")
    out = tmp_path / f"{kernel}-{mode}"
    proc = subprocess.run([sys.executable, "-m", "stackstitch.engine.cli", "perf", "record",
                           "-o", out, "-F", str(FREQUENCY), KERNELS / kernel,
                           f"--switching={mode}", "--invoke", export, str(n)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    script = subprocess.run([perf, "script", "-F", SCRIPT_FIELDS, "-i", out / "perf.jit.data"],
                            capture_output=True, text=True, timeout=300)
    assert script.returncode == 0, script.stderr
    return parse_perf_script(script.stdout)


@pytest.mark.parametrize("mode", ("native", "libcall"))
def test_every_continuation_sample_reaches_the_entry_through_its_resumer(require_tool, tmp_path, mode):
    in_continuations = 0
    for kernel, export, n, body, allowed in KERNEL_RUNS:
        samples = profile(require_tool, tmp_path, kernel, export, n, mode)
        wasm = {body, export, "drain", "level"}
        ours = 0
        for sample in samples:
            names = [frame.symbol for frame in sample.user_frames]
            if not names or not (names[0] in wasm or names[0].startswith("stackstitch_")):
                continue  # host code
            ours += 1
            context = f"{kernel} ({mode}): {names}"
            assert ENTRY in names, "the chain does not reach the entry: " + context
            chain = names[:names.index(ENTRY)]
            if START not in chain and body not in chain:
                continue  # on the main stack
            in_continuations += 1
            functions = " ".join(name for name in chain if not name.startswith("stackstitch_"))
            assert re.fullmatch(allowed, functions), "wrong resumer or a false frame: " + context
        assert ours > 1000, f"{kernel} ({mode}): only {ours} samples in JIT code"
    print(f"{mode}: {in_continuations} continuation samples, all reaching the entry through "
          "their resumer")
    assert in_continuations >= MIN_CONTINUATION_SAMPLES // 2
