"""Numeric kernels over boundary inputs (NaNs, infinities, signed zeros, extreme integers),
run on stackstitch and on the Wasmtime CLI: every result must agree, NaNs as NaNs."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from stackstitch.engine.frontend import wasmtools
from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Store
from stackstitch.engine.values import bits_to_f32, bits_to_f64, f32_to_bits, f64_to_bits
from conftest import require_wasm_tools_for_module

require_wasm_tools_for_module()

MASK32 = 0xFFFFFFFF
MASK64 = (1 << 64) - 1


def signed(raw: int, bits: int) -> int:
    return raw - (1 << bits) if raw >> (bits - 1) else raw


WASMTIME_FLAGS = ["-W", "stack-switching=y,function-references=y,exceptions=y"]

# Each kernel takes raw bit patterns and returns bit patterns (floats reinterpreted), so both
# engines print integers; `kinds` says how to compare each result.
KERNELS = """
(module
  (func (export "f64_binary") (param i64 i64) (result i64 i64 i64 i64 i64 i64 i64 i32 i32)
    (local f64 f64)
    local.get 0 f64.reinterpret_i64 local.set 2
    local.get 1 f64.reinterpret_i64 local.set 3
    local.get 2 local.get 3 f64.min i64.reinterpret_f64
    local.get 2 local.get 3 f64.max i64.reinterpret_f64
    local.get 2 local.get 3 f64.copysign i64.reinterpret_f64
    local.get 2 local.get 3 f64.add i64.reinterpret_f64
    local.get 2 local.get 3 f64.sub i64.reinterpret_f64
    local.get 2 local.get 3 f64.mul i64.reinterpret_f64
    local.get 2 local.get 3 f64.div i64.reinterpret_f64
    local.get 2 local.get 3 f64.lt
    local.get 2 local.get 3 f64.ne)
  (func (export "f32_binary") (param i32 i32) (result i32 i32 i32 i32 i32 i32 i32)
    (local f32 f32)
    local.get 0 f32.reinterpret_i32 local.set 2
    local.get 1 f32.reinterpret_i32 local.set 3
    local.get 2 local.get 3 f32.min i32.reinterpret_f32
    local.get 2 local.get 3 f32.max i32.reinterpret_f32
    local.get 2 local.get 3 f32.copysign i32.reinterpret_f32
    local.get 2 local.get 3 f32.add i32.reinterpret_f32
    local.get 2 local.get 3 f32.div i32.reinterpret_f32
    local.get 2 local.get 3 f32.ge
    local.get 2 local.get 3 f32.eq)
  (func (export "f64_unary") (param i64)
    (result i64 i64 i64 i64 i64 i64 i64 i32 i32 i32 i32 i64 i64 i64 i64 i32)
    (local f64)
    local.get 0 f64.reinterpret_i64 local.set 1
    local.get 1 f64.nearest i64.reinterpret_f64
    local.get 1 f64.floor i64.reinterpret_f64
    local.get 1 f64.ceil i64.reinterpret_f64
    local.get 1 f64.trunc i64.reinterpret_f64
    local.get 1 f64.sqrt i64.reinterpret_f64
    local.get 1 f64.neg i64.reinterpret_f64
    local.get 1 f64.abs i64.reinterpret_f64
    local.get 1 f32.demote_f64 i32.reinterpret_f32
    local.get 1 f32.demote_f64 f32.nearest i32.reinterpret_f32
    local.get 1 i32.trunc_sat_f64_s
    local.get 1 i32.trunc_sat_f64_u
    local.get 1 i64.trunc_sat_f64_s
    local.get 1 i64.trunc_sat_f64_u
    local.get 0 f64.convert_i64_u i64.reinterpret_f64
    local.get 0 f64.convert_i64_s i64.reinterpret_f64
    local.get 0 f32.convert_i64_u i32.reinterpret_f32)
  (func (export "f32_unary") (param i32) (result i32 i32 i32 i32 i64 i32 i64 i32 i32 i32)
    (local f32)
    local.get 0 f32.reinterpret_i32 local.set 1
    local.get 1 f32.nearest i32.reinterpret_f32
    local.get 1 f32.floor i32.reinterpret_f32
    local.get 1 f32.sqrt i32.reinterpret_f32
    local.get 1 f32.trunc i32.reinterpret_f32
    local.get 1 f64.promote_f32 i64.reinterpret_f64
    local.get 1 i32.trunc_sat_f32_u
    local.get 1 i64.trunc_sat_f32_s
    local.get 0 f32.convert_i32_u i32.reinterpret_f32
    local.get 0 f32.convert_i32_s i32.reinterpret_f32
    local.get 1 f32.neg i32.reinterpret_f32)
  (func (export "i64_ops") (param i64 i64)
    (result i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i32 i32 i32 i64 i64)
    local.get 0 local.get 1 i64.shl
    local.get 0 local.get 1 i64.shr_s
    local.get 0 local.get 1 i64.shr_u
    local.get 0 local.get 1 i64.rotl
    local.get 0 local.get 1 i64.rotr
    local.get 0 local.get 1 i64.mul
    local.get 0 local.get 1 local.get 1 i64.eqz i64.extend_i32_u i64.or i64.div_u
    local.get 0 local.get 1 local.get 1 i64.eqz i64.extend_i32_u i64.or i64.rem_s
    local.get 0 i64.clz
    local.get 0 i64.popcnt
    local.get 0 i32.wrap_i64 local.get 1 i32.wrap_i64 i32.rotl
    local.get 0 i32.wrap_i64 i32.ctz
    local.get 0 local.get 1 i64.lt_s
    local.get 0 i64.extend8_s
    local.get 0 i64.extend32_s)
  (memory 1)
  (func (export "i32_ops") (param i32 i32) (result i32 i32 i32 i32 i32 i32 i32 i32 i64 i64 i32 i64)
    local.get 0 i32.const 3 local.get 1 local.get 1 i32.const 1 i32.add i32.const 2 i32.lt_u select
    i32.div_s (; divisors 0 and -1 replaced by 3 ;)
    local.get 0 local.get 1 local.get 1 i32.eqz i32.or i32.rem_u
    local.get 0 local.get 1 i32.shr_s
    local.get 0 i32.clz
    local.get 0 i32.popcnt
    local.get 0 i32.extend16_s
    local.get 0 local.get 1 i32.lt_u
    local.get 0 local.get 1 i32.mul
    local.get 0 i64.extend_i32_s
    i32.const 8 local.get 0 i32.store
    i32.const 9 i64.load32_s
    i32.const 11 i32.load8_s
    i32.const 10 i64.load16_u)
)
"""

KINDS = {
    "f64_binary": ["f64"] * 7 + ["i32"] * 2,
    "f32_binary": ["f32"] * 5 + ["i32"] * 2,
    "f64_unary": ["f64"] * 7 + ["f32"] * 2 + ["i32", "i32", "i64", "i64", "f64", "f64", "f32"],
    "f32_unary": ["f32"] * 4 + ["f64", "i32", "i64", "f32", "f32", "f32"],
    "i64_ops": ["i64"] * 10 + ["i32"] * 3 + ["i64"] * 2,
    "i32_ops": ["i32"] * 8 + ["i64"] * 2 + ["i32", "i64"],
}
PARAM_BITS = {"f64_binary": (64, 64), "f32_binary": (32, 32), "f64_unary": (64,),
              "f32_unary": (32,), "i64_ops": (64, 64), "i32_ops": (32, 32)}

F64_INPUTS = [0.0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 3.5, 4503599627370495.5, 2.0**53 + 1,
              5e-324, -2.2250738585072014e-308, 1e300, 2147483647.0, 2147483647.5, -2147483648.0,
              -2147483649.0, 4294967295.0, 4294967296.0, 9.223372036854775e18, -9.223372036854776e18,
              1.8446744073709552e19, 3.4028235677973366e38, 1.401298464324817e-45,
              math.inf, -math.inf]
F64_BITS = [f64_to_bits(x) for x in F64_INPUTS] + [0x7FF8000000000000, 0xFFF8000000000000,
                                                   0x7FF0000000000001, 1 << 63 | 1, MASK64]
F32_BITS = [f32_to_bits(x) for x in (0.0, -0.0, 0.5, -1.5, 2.5, 8388607.5, 16777217.0, 1e-45,
                                     -1.1754942e-38, 3.4028235e38, 2147483648.0, 4294967296.0,
                                     -2147483904.0, 9.2233720e18, math.inf, -math.inf)]
F32_BITS += [0x7FC00000, 0xFFC00000, 0x7F800001, 0x80000001, MASK32, 0x4F000000]
I32_INPUTS = [0, 1, 2, 31, 32, 33, 0x7F, 0x80, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000,
              0x8765_4321, MASK32 - 1, MASK32]
I64_INPUTS = [0, 1, 2, 63, 64, 65, 0x7F, 0x80, 0xFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 32,
              (1 << 63) - 1, 1 << 63, MASK64, 0x0123_4567_89AB_CDEF, (-100) & MASK64]


def kernel_calls() -> list[tuple[str, tuple[int, ...]]]:
    binary_f64 = [(a, b) for a in F64_BITS for b in F64_BITS[::3]]
    binary_f32 = list(itertools.product(F32_BITS, F32_BITS[::2]))
    return ([("f64_unary", (a,)) for a in F64_BITS + I64_INPUTS]
            + [("f32_unary", (a,)) for a in F32_BITS]
            + [("f64_binary", args) for args in binary_f64]
            + [("f32_binary", args) for args in binary_f32]
            + [("i64_ops", args) for args in itertools.product(I64_INPUTS, I64_INPUTS[::2])]
            + [("i32_ops", args) for args in itertools.product(I32_INPUTS, I32_INPUTS[::2])])


def comparable(raw: int, kind: str):
    """Raw bits as both engines must agree on them: any NaN matches any NaN, because the
    spec leaves NaN sign and payload of arithmetic results nondeterministic."""
    if kind == "f64" and math.isnan(bits_to_f64(raw)):
        return "nan"
    if kind == "f32" and math.isnan(bits_to_f32(raw)):
        return "nan"
    return raw


def wasmtime_binary(require_tool) -> str:
    """The wheel's CLI binary itself when usable: the venv's `wasmtime` is a Python launcher
    that costs ~80 ms per call, and this test makes hundreds of calls."""
    try:
        import wasmtime_cli
    except ImportError:
        return require_tool("wasmtime")
    binary = Path(wasmtime_cli.__file__).parent / "wasmtime"
    return str(binary) if os.access(binary, os.X_OK) else require_tool("wasmtime")


def run_wasmtime(wasmtime: str, wasm_path, name: str, args: tuple[int, ...]) -> list[int]:
    cli_args = [str(signed(a, bits)) for a, bits in zip(args, PARAM_BITS[name])]
    proc = subprocess.run([wasmtime, "run", *WASMTIME_FLAGS, "--invoke", name, str(wasm_path),
                           *cli_args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"wasmtime {name} {cli_args}: {proc.stderr.split('Stack backtrace')[0][-500:]}"
    return [int(line) for line in proc.stdout.split()]


def test_numeric_kernels_match_wasmtime(require_tool, tmp_path):
    wasmtime = wasmtime_binary(require_tool)
    wasm = wasmtools.wat_to_wasm(KERNELS.encode())
    wasm_path = tmp_path / "kernels.wasm"
    wasm_path.write_bytes(wasm)
    inst = Store().instantiate(load_bytes(wasm, "kernels.wasm"), {})
    calls = kernel_calls()
    with ThreadPoolExecutor(max_workers=8) as pool:
        references = list(pool.map(lambda call: run_wasmtime(wasmtime, wasm_path, *call), calls))
    mismatches = []
    for (name, args), reference in zip(calls, references):
        kinds = KINDS[name]
        ours = inst.invoke(name, list(args))
        assert len(reference) == len(ours) == len(kinds), (name, reference, ours)
        masks = [MASK32 if k in ("i32", "f32") else MASK64 for k in kinds]
        expected = [comparable(v & m, k) for v, m, k in zip(reference, masks, kinds)]
        actual = [comparable(v, k) for v, k in zip(ours, kinds)]
        for position, (want, got) in enumerate(zip(expected, actual)):
            if want != got:
                mismatches.append(f"{name}{tuple(hex(a) for a in args)} result {position}: "
                                  f"wasmtime {want if want == 'nan' else hex(want)}, "
                                  f"ours {got if got == 'nan' else hex(got)}")
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:20])
