"""Trace events written by generated code and stubs when a store traces (layout.TRACE_*).

Only a tracing store's stubs and the code compiled for it contain these instructions; with
tracing off, nothing here is emitted.
"""

from __future__ import annotations

from .. import layout as L
from .x86 import R10, R11, RAX, RCX, RDX, Assembler, Mem

CLOBBERED = (RCX, RDX, R10, R11)


def emit_trace_event(a: Assembler, word: int, first: int | None, second: int | None) -> None:
    """Append (timestamp counter, register `word`, id of record `first`, id of record
    `second`) to the ring; a record of None stands for id 0. rax: runtime, kept; clobbers
    rcx, rdx, r10, r11, which none of the inputs may be."""
    assert not {word, first, second} & set(CLOBBERED) and RAX not in (word, first, second)
    a.mov(64, RCX, RAX)
    a.rdtsc()
    a.shift_imm("shl", 64, RDX, 32)
    a.alu("or", 64, RAX, RDX)
    a.mov(64, RDX, Mem(RCX, L.RT_TRACE_COUNT))
    a.lea(R11, Mem(RDX, 1))
    a.mov(64, Mem(RCX, L.RT_TRACE_COUNT), R11)
    a.shift_imm("shl", 64, RDX, L.TRACE_EVENT_SIZE.bit_length() - 1)
    a.alu("and", 64, RDX, Mem(RCX, L.RT_TRACE_MASK))
    a.alu("add", 64, RDX, Mem(RCX, L.RT_TRACE_BUFFER))
    a.mov(64, Mem(RDX, 0), RAX)
    a.mov(64, Mem(RDX, 8), word)
    for offset, record in ((16, first), (24, second)):
        if record is None:
            a.store_imm(64, Mem(RDX, offset), 0)
        else:
            a.mov(64, R10, Mem(record, L.CR_ID))
            a.mov(64, Mem(RDX, offset), R10)
    a.mov(64, RAX, RCX)


def emit_trace_word(a: Assembler, dst: int, kind: int, detail: int | None = None) -> None:
    """dst = kind, with register `detail` (a tag or function record's address, a trap
    code) above its low TRACE_KIND_BITS."""
    if detail is None:
        a.mov_imm(32, dst, kind)
        return
    if detail != dst:
        a.mov(64, dst, detail)
    a.shift_imm("shl", 64, dst, L.TRACE_KIND_BITS)
    a.alu_imm("or", 64, dst, kind)
