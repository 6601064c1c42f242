"""Frame-state rules the code generators record per instruction, for unwind info.

A rule says how to find the caller's frame at a pc: the CFA (the caller's rsp after the
return) as a register plus offset, where callee-saved registers were saved relative to
the CFA, and, as always on x86-64, the return address at CFA-8. `unwind` turns the
(native offset, rule) rows into DWARF CFI; `backtrace` evaluates them directly.
"""

from __future__ import annotations

from ..records import record
from .x86 import RBP, RSP


@record
class PointerChain:
    """A value reached through memory: register + steps[0], then for each further step
    load the word there and add the step; with `load_last`, load once more at the end.

    This is how rules describe frames across a stack switch, where the caller's registers
    are found in a continuation record rather than relative to the CFA (OCaml 5's
    caml_runstack technique). `unwind` turns chains into DWARF expressions."""

    base: str
    steps: tuple[int, ...]
    load_last: bool = False


# A `saved` entry's place for a register the code has not changed, although the System V
# ABI would let it (DW_CFA_same_value): a caller's value that is still in the register.
SAME_VALUE = "same value"


@record
class CfaRule:
    register: object  # "rsp" or "rbp", or a PointerChain (or unwind Expression) for the CFA
    offset: int
    saved: tuple = ()  # (register, offset from the CFA, a PointerChain to its save slot, or
    # SAME_VALUE); ("rip", ...) overrides the return address's default slot at CFA-8


AT_CALL = CfaRule("rsp", 8)  # first instruction of a function: only the return address
AFTER_PUSH_RBP = CfaRule("rsp", 16, (("rbp", -16),))
RBP_FRAME = CfaRule("rbp", 16, (("rbp", -16),))  # the body of every Wasm function


def emit_push_frame(a, rows: list) -> None:
    """`push rbp; mov rbp, rsp`, with the rule after each (the first row, AT_CALL at the
    function's start, is the caller's to add)."""
    a.push(RBP)
    rows.append((a.pos, AFTER_PUSH_RBP))
    a.mov(64, RBP, RSP)
    rows.append((a.pos, RBP_FRAME))


def emit_pop_frame(a, rows: list) -> None:
    """`mov rsp, rbp; pop rbp`: from there on, the caller's rule at a call (AT_CALL)."""
    a.mov(64, RSP, RBP)
    a.pop(RBP)
    rows.append((a.pos, AT_CALL))
