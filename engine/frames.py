"""Frame-state rules the code generators record per instruction, for unwind info.

A rule says how to find the caller's frame at a pc: the CFA (the caller's rsp after the
return) as a register plus offset, where callee-saved registers were saved relative to
the CFA, and, as always on x86-64, the return address at CFA-8. `unwind` turns the
(native offset, rule) rows into DWARF CFI; `backtrace` evaluates them directly.
"""

from __future__ import annotations

from typing import NamedTuple


class CfaRule(NamedTuple):
    register: object  # "rsp" or "rbp", or a unwind.dwarf.Expression computing the CFA
    offset: int
    saved: tuple = ()  # (register name, offset from the CFA or an Expression for its address)


AT_CALL = CfaRule("rsp", 8)  # first instruction of a function: only the return address
AFTER_PUSH_RBP = CfaRule("rsp", 16, (("rbp", -16),))
RBP_FRAME = CfaRule("rbp", 16, (("rbp", -16),))  # the body of every Wasm function
