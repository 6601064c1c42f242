"""Conversions between raw Wasm values and text: CLI arguments, printed results, wast JSON.

A raw value is the 64-bit unsigned integer that crosses the native boundary (see DESIGN.md,
"Values at the Python boundary"). The CLI reads and prints the text forms `wasmtime run
--invoke` uses; the wast runner reads the value forms of `wasm-tools json-from-wast`.
"""

from __future__ import annotations

import math
import re
import struct

from .frontend.types import RefType, ValType

INT_WIDTH = {"i32": 32, "i64": 64}
FLOAT_BITS = {"f32": 32, "f64": 64}

F32_SIGN, F32_QUIET_NAN = 0x8000_0000, 0x7FC0_0000
F64_SIGN, F64_QUIET_NAN = 0x8000_0000_0000_0000, 0x7FF8_0000_0000_0000

_HEX_INT = re.compile(r"[+-]?0[xX][0-9a-fA-F_]+")
_DEC_INT = re.compile(r"[+-]?[0-9][0-9_]*")


# ---------------------------------------------------------------- floats <-> bit patterns

def f32_to_bits(x: float) -> int:
    """Round a Python float to the nearest f32; out-of-range magnitudes become infinities."""
    try:
        return struct.unpack("<I", struct.pack("<f", x))[0]
    except OverflowError:
        return 0x7F80_0000 | (F32_SIGN if x < 0 else 0)


def f64_to_bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def bits_to_f32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits & 0xFFFF_FFFF))[0]


def bits_to_f64(bits: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", bits & 0xFFFF_FFFF_FFFF_FFFF))[0]


def is_canonical_nan(bits: int, valtype: str) -> bool:
    if valtype == "f32":
        return bits & ~F32_SIGN & 0xFFFF_FFFF == F32_QUIET_NAN
    return bits & ~F64_SIGN & 0xFFFF_FFFF_FFFF_FFFF == F64_QUIET_NAN


def is_arithmetic_nan(bits: int, valtype: str) -> bool:
    """A NaN with the quiet bit set; the payload's other bits may be anything."""
    quiet = F32_QUIET_NAN if valtype == "f32" else F64_QUIET_NAN
    return bits & quiet == quiet


# ---------------------------------------------------------------- CLI arguments

def parse_arg(text: str, valtype: ValType) -> int:
    """Parse a command-line argument for a parameter of `valtype` into a raw value.

    Integers are decimal or hex (`0x...`), may be negative, and may be written signed or
    unsigned: `-1` and `0xffffffff` are the same i32. Floats accept Python's syntax, hex
    floats (`0x1p-3`), `nan`, `inf` and `-0`. A reference parameter accepts only `null`.
    Raises ValueError with a one-line message.
    """
    if valtype in INT_WIDTH:
        return _parse_int(text, INT_WIDTH[valtype])
    if valtype in FLOAT_BITS:
        value = _parse_float(text)
        return f32_to_bits(value) if valtype == "f32" else f64_to_bits(value)
    if isinstance(valtype, RefType):
        if not valtype.nullable:
            raise ValueError(f"a {valtype} parameter cannot be given on the command line")
        if text != "null":
            raise ValueError(f"a {valtype} parameter only accepts `null` on the command line")
        return 0
    raise ValueError(f"parameters of type {valtype} are not supported on the command line")


def _parse_int(text: str, width: int) -> int:
    if _HEX_INT.fullmatch(text):
        value = int(text.replace("_", ""), 16)
    elif _DEC_INT.fullmatch(text):
        value = int(text.replace("_", ""), 10)
    else:
        raise ValueError(f"`{text}` is not an integer")
    if not -(1 << (width - 1)) <= value < (1 << width):
        raise ValueError(f"`{text}` does not fit in i{width}")
    return value & ((1 << width) - 1)


def _parse_float(text: str) -> float:
    body = text.lstrip("+-")
    sign = -1.0 if text.startswith("-") else 1.0
    try:
        if body[:2].lower() == "0x":
            return sign * float.fromhex(body)
        return float(text)
    except ValueError:
        raise ValueError(f"`{text}` is not a number") from None


# ---------------------------------------------------------------- printed results

def format_result(raw: int, valtype: ValType) -> str:
    """Render a result the way `wasmtime run --invoke` prints it."""
    if valtype in INT_WIDTH:
        width = INT_WIDTH[valtype]
        value = raw & ((1 << width) - 1)
        return str(value - (1 << width) if value >> (width - 1) else value)
    if valtype == "f32":
        return _format_float(bits_to_f32(raw), _shortest_f32_repr(raw))
    if valtype == "f64":
        value = bits_to_f64(raw)
        return _format_float(value, repr(value))
    if valtype == "v128":
        return f"{raw:#034x}"
    if isinstance(valtype, RefType):
        return f"<{'null ' if raw == 0 else ''}{_ref_name(valtype)}>"
    raise ValueError(f"cannot print a value of type {valtype}")


def _ref_name(reftype: RefType) -> str:
    """Wasmtime names abstract heap types (`funcref`); typed references print as `ref`."""
    return f"{reftype.heap}ref" if isinstance(reftype.heap, str) else "ref"


def _shortest_f32_repr(raw: int) -> str:
    """The shortest decimal that reads back as the same f32, as Rust's Display picks."""
    value = bits_to_f32(raw)
    if not math.isfinite(value):
        return repr(value)
    for digits in range(1, 10):
        text = f"{value:.{digits}g}"
        if f32_to_bits(float(text)) == raw & 0xFFFF_FFFF:
            return text
    return repr(value)


def _format_float(value: float, shortest: str) -> str:
    """Positional notation without exponent or trailing `.0`, like Rust's `{}` for floats."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    from decimal import Decimal  # only for printing floats (a C module worth loading late)
    return format(Decimal(shortest).normalize(), "f")


# ---------------------------------------------------------------- wast JSON values

class HostRef(int):
    """The host object behind `(ref.extern N)` in a script: compared by its number."""


def wast_arg(const: dict, store) -> int:
    """Raw value for an argument written in `json-from-wast` form."""
    kind, value = const["type"], const.get("value")
    if kind in INT_WIDTH:
        return int(value) & ((1 << INT_WIDTH[kind]) - 1)
    if kind in FLOAT_BITS:
        return int(value)
    if value is None or value == "null":
        return 0
    if kind in ("externref", "anyref"):
        return store.extern_ref(HostRef(int(value)))
    raise ValueError(f"unsupported argument {const}")


# Expected-result kinds that stand for "some null reference" and "some non-null one".
_NULL_KINDS = frozenset({"refnull", "nullref", "nullfuncref", "nullexternref",
                         "nullexnref", "nullcontref"})
_NON_NULL_KINDS = frozenset({"eqref", "arrayref", "structref", "i31ref", "i31refshared"})


def wast_matches(expected: dict, raw: int, store) -> bool:
    """Does raw result `raw` satisfy an expected result in `json-from-wast` form?"""
    kind, value = expected["type"], expected.get("value")
    if kind in INT_WIDTH:
        mask = (1 << INT_WIDTH[kind]) - 1
        return raw & mask == int(value) & mask
    if kind in FLOAT_BITS:
        bits = raw & ((1 << FLOAT_BITS[kind]) - 1)
        if value == "nan:canonical":
            return is_canonical_nan(bits, kind)
        if value == "nan:arithmetic":
            return is_arithmetic_nan(bits, kind)
        return bits == int(value)
    if kind == "either":
        return any(wast_matches(alternative, raw, store) for alternative in expected["values"])
    if kind in _NULL_KINDS or value == "null":
        return raw == 0
    if kind in _NON_NULL_KINDS or value is None:
        return raw != 0
    if kind in ("externref", "anyref"):
        return raw != 0 and store.extern_value(raw) == HostRef(int(value))
    if kind == "funcref":
        return raw != 0
    raise ValueError(f"unsupported expected value {expected}")


def describe_expected(expected: dict) -> str:
    """Short text for an expected value in a failure message."""
    kind, value = expected["type"], expected.get("value")
    if kind == "either":
        return " | ".join(describe_expected(alternative) for alternative in expected["values"])
    if kind in FLOAT_BITS and value is not None and not value.startswith("nan"):
        return describe_actual(int(value), kind)
    return f"{kind}:{value}" if value is not None else kind


def describe_actual(raw: int, kind: str) -> str:
    """Short text for a raw result, read as the expected value's kind."""
    if kind == "either":
        return f"raw:{raw:#x}"
    if kind in INT_WIDTH:
        return f"{kind}:{format_result(raw, kind)}"
    if kind in FLOAT_BITS:
        bits = raw & ((1 << FLOAT_BITS[kind]) - 1)
        return f"{kind}:{format_result(bits, kind)} ({bits:#x})"
    return f"{kind}:{'null' if raw == 0 else hex(raw)}"
