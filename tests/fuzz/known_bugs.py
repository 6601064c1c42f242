"""Recognize mismatches caused by engine bugs that are already known and being fixed, so
that they are counted apart and do not hide new ones. Each rule looks at the mismatch
and at the module's text; a rule is a heuristic, and a reduced module is checked again.
Remove a rule when its bug is fixed: its mismatches must then disappear.
"""

from __future__ import annotations

import re

from .differential import Verdict

# The known bugs: id -> (summary, rule(verdict, module text) -> bool)
READERS = re.compile(r"\b(skip|scan_loop_nest|local_reads_in_loop|_skip_immediates|blocktype)\b")
MULTI_MEMORY_MEMARG = re.compile(r"\.(load|store)\w* [1-9]")
BIG_BLOCK_TYPE = re.compile(r"\b(block|loop|if|try_table) \(type (6[4-9]|[7-9]\d|\d{3,})\)")
HUGE_OFFSET = re.compile(r"offset=(\d{19,20})")
REINTERPRET = re.compile(r"\b(i64\.reinterpret_f64|f64\.reinterpret_i64|i32\.reinterpret_f32|"
                         r"f32\.reinterpret_i32)\b")
TAIL_CALL_OUT = re.compile(r"\breturn_call(_indirect|_ref)?\b")


def huge_offset(text: str) -> bool:
    return any(int(m) + 8 >= 1 << 64 for m in HUGE_OFFSET.findall(text))


KNOWN_BUGS = {
    "reader": ("instruction readers disagree: memarg memory index or multi-byte block "
               "type read wrong outside the main compiler path (bugs 1, 3)",
               lambda v, text: v.kind == "error" and bool(READERS.search(v.detail))),
    "memarg": ("dead-code skipping ignores a memarg's memory index (bug 1)",
               lambda v, text: bool(MULTI_MEMORY_MEMARG.search(text))),
    "blocktype": ("block type index >= 64 decoded as a value type (bug 3)",
                  lambda v, text: bool(BIG_BLOCK_TYPE.search(text))),
    "memory64-wrap": ("memory64 bounds check wraps for offset + size >= 2^64 (bug 2)",
                      lambda v, text: "i64" in text and huge_offset(text)),
    "reinterpret": ("reinterpret of a loop-pinned local reads the other register class (bug 4)",
                    lambda v, text: "loop" in text and bool(REINTERPRET.search(text))),
    "tail-call-registers": ("register leak at if joins after tail calls (bug 5)",
                            lambda v, text: "out of registers" in v.detail
                            and bool(TAIL_CALL_OUT.search(text))),
}


def known_bug(verdict: Verdict, module_text: str) -> str | None:
    """The id of the known bug that probably explains a mismatch, else None."""
    for bug, (_, rule) in KNOWN_BUGS.items():
        if rule(verdict, module_text):
            return bug
    return None
