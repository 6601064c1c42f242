"""Trap kinds: what both engines' trap messages mean, so that wording may differ.

stackstitch uses the spec's wording; Wasmtime has its own. Each kind maps the
stackstitch messages that mean it to the text that Wasmtime's message for the same kind
contains (which `wasmtime wast` then checks with a substring match, as `assert_trap`
does). Table accesses out of bounds are one kind because the spec says "undefined
element" for `call_indirect` and "out of bounds table access" for `table.get`, while
Wasmtime says both; every null reference is one kind because Wasmtime does not say what
was null.
"""

from __future__ import annotations

EXHAUSTION = "call stack exhausted"
UNHANDLED_TAG = "unhandled tag"

# kind: (stackstitch message prefixes, the text Wasmtime's message contains)
KINDS = {
    "unreachable": (("unreachable",), "unreachable"),
    "divide by zero": (("integer divide by zero",), "integer divide by zero"),
    "integer overflow": (("integer overflow",), "integer overflow"),
    "invalid conversion": (("invalid conversion to integer",), "invalid conversion to integer"),
    "memory out of bounds": (("out of bounds memory access",), "out of bounds memory access"),
    "table out of bounds": (("undefined element", "out of bounds table access"),
                            "out of bounds table access"),
    "uninitialized element": (("uninitialized element",), "uninitialized element"),
    "signature mismatch": (("indirect call type mismatch",), "indirect call type mismatch"),
    "null reference": (("null function reference", "null reference",
                        "null continuation reference", "null exception reference"),
                       "null reference"),
    "continuation consumed": (("continuation already consumed",), "continuation already consumed"),
    UNHANDLED_TAG: (("unhandled tag",), "unhandled tag"),
    EXHAUSTION: ((EXHAUSTION,), EXHAUSTION),
}


def kind_of(message: str) -> str | None:
    """The kind of a stackstitch trap message, or None for one no kind covers."""
    for kind, (prefixes, _) in KINDS.items():
        if message.startswith(prefixes):
            return kind
    return None


def wasmtime_text(kind: str) -> str:
    return KINDS[kind][1]
