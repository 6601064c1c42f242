"""Where a campaign's modules come from: wasm-smith with two feature sets, and our own
stack-switching generator. Module `index` of a campaign with seed `seed` is always the
same module, so any one can be regenerated from the two numbers alone."""

from __future__ import annotations

import random

from . import tools
from .host import available_imports
from .observe import FUEL_EXPORT, Recipe
from .wasm_sections import export_last_global

SMITH_COMMON = [
    "--ensure-termination", "--fuel", "1000", "--export-everything", "true",
    "--canonicalize-nans", "true",
    "--memory-max-size-required", "true", "--max-memory32-bytes", "262144",
    "--max-memory64-bytes", "262144", "--table-max-size-required", "true",
    "--max-table-elements", "1000",
    # not implemented by the engine
    "--simd-enabled", "false", "--relaxed-simd-enabled", "false", "--gc-enabled", "false",
    "--threads-enabled", "false", "--shared-everything-threads-enabled", "false",
    "--custom-descriptors-enabled", "false", "--wide-arithmetic-enabled", "false",
    "--custom-page-sizes-enabled", "false", "--compact-imports-enabled", "false",
]
# (a) the MVP and the proposals finished before it: multi-value, bulk memory, reference
# types, sign extension, saturating conversions, extended constants.
SMITH_CORE = ["--exceptions-enabled", "false", "--tail-call-enabled", "false",
              "--memory64-enabled", "false", "--max-memories", "1"]
# (b) exceptions, tail calls, 64-bit and multiple memories, several tables.
SMITH_PROPOSALS = ["--exceptions-enabled", "true", "--tail-call-enabled", "true",
                   "--memory64-enabled", "true", "--max-memories", "4", "--max-tables", "3"]
SMITH_FEATURES = {"smith": SMITH_CORE, "proposals": SMITH_PROPOSALS}
FUEL = 1000  # smith's --fuel above: calls and loop iterations before a module traps


def rng_for(campaign: str, seed: int, index: int) -> random.Random:
    return random.Random(f"{campaign}/{seed}/{index}")


def smith_module(campaign: str, seed: int, index: int) -> tuple[bytes, Recipe]:
    """A smith module with its fuel global exported; a quarter of them use over-long
    LEB128 encodings, which every immediate reader must skip correctly."""
    rng = rng_for(campaign, seed, index)
    for attempt in range(20):
        entropy = rng.randbytes(rng.randrange(1024, 16384))
        options = list(SMITH_COMMON) + SMITH_FEATURES[campaign]
        options += ["--min-types", "1", "--min-funcs", str(rng.randrange(1, 12)), "--max-funcs", "40",
                    "--available-imports", str(available_imports(with_tag=campaign == "proposals")),
                    "--max-imports", str(rng.choice((0, 2, 6, 12)))]
        if rng.random() < 0.25:
            options += ["--min-uleb-size", str(rng.randrange(2, 6))]
        proc = tools.run_wasm_tools(["smith", *options], entropy)
        if proc.returncode == 0:
            wasm = export_last_global(proc.stdout, FUEL_EXPORT) or proc.stdout
            return wasm, Recipe(args_seed=rng.getrandbits(32), fuel=FUEL)
    raise RuntimeError(f"wasm-smith failed 20 times for module {index}: "
                       f"{proc.stderr.decode(errors='replace').strip()}")


def make_module(campaign: str, seed: int, index: int) -> tuple[bytes, Recipe]:
    if campaign in SMITH_FEATURES:
        return smith_module(campaign, seed, index)
    if campaign == "switching":
        from .switch_programs import switching_module
        return switching_module(seed, index)
    raise ValueError(f"unknown campaign {campaign!r}")
