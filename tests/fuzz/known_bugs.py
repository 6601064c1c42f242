"""Recognize mismatches caused by engine bugs that are already known and being fixed, so
that they are counted apart and do not hide new ones. Each rule looks at the mismatch
and at the module's text; a rule is a heuristic, and a reduced module is checked again.
Remove a rule when its bug is fixed: its mismatches must then disappear.
"""

from __future__ import annotations

from .differential import Verdict

# The known bugs: id -> (summary, rule(verdict, module text) -> bool). None is open: the
# six bugs this fuzzer was built to catch (instruction readers out of step, memory64 bounds
# wrapping, big block types, reinterpret of pinned locals, register leaks after tail calls,
# the symbolizer's switch opcode) are fixed, with regression tests.
KNOWN_BUGS: dict = {}


def known_bug(verdict: Verdict, module_text: str) -> str | None:
    """The id of the known bug that probably explains a mismatch, else None."""
    for bug, (_, rule) in KNOWN_BUGS.items():
        if rule(verdict, module_text):
            return bug
    return None
