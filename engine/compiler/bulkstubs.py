"""Native stubs for memory.grow, memory.copy and memory.fill (and the table and segment
instructions built on them): Wasm code calls them with no Python and no C in between.

Generated code does every bounds check itself, so a trap names the Wasm instruction, and
calls a stub only for the part that cannot fail. Arguments are in registers; a stub
changes only BULK_CLOBBERS, SCRATCH (r11) and XSCRATCH (xmm15), so values the caller
keeps elsewhere, loop-pinned locals included, survive the call.

memory.grow   rdi: the memory's record (layout LM_*), rsi: delta in pages.
              rax: the old size in pages, or -1. Growing is one mprotect system call over
              the already reserved range, then the new size goes into the record and into
              every vmctx copy of it (LM_SIZE_FIELDS); failing or growing by 0 makes no
              system call.
memory.copy   rdi: destination address, rsi: source address, rdx: length. As memmove:
              overlapping ranges in either direction are copied as if through a buffer.
memory.fill   rdi: destination address, sil: the byte, rdx: length.
"""

from __future__ import annotations

from .. import layout as L
from .frames import SAME_VALUE, CfaRule
from .x86 import A, AE, B, BE, E, NE, R11, RAX, RCX, RDI, RDX, RSI, Assembler, Label, Mem

BULK_CLOBBERS = (RAX, RCX, RDX, RSI, RDI)
XSCRATCH = 15

# The registers a callee may change by the System V ABI that the stubs keep, loop pins among
# them: their rules say so, or a debugger (lldb) takes them for lost in the caller's frame.
_KEPT = tuple((name, SAME_VALUE) for name in ("r8", "r9", "r10", *(f"xmm{n}" for n in range(XSCRATCH))))
_AT_CALL = CfaRule("rsp", 8, _KEPT)
# At a stub's first instruction nothing has changed yet, not even the scratch registers; the
# next row, one byte on, covers the rest of the stub. So a stub's rules are never a single
# row: lldb 14 follows the rules of the function it stopped in only if they have two rows or
# more (its own analysis of the instructions otherwise, which knows nothing of _KEPT).
_AT_ENTRY = CfaRule("rsp", 8, _KEPT + (("r11", SAME_VALUE), (f"xmm{XSCRATCH}", SAME_VALUE)))

SYS_MPROTECT = 10
PROT_READ_WRITE = 3
REP_MOVS_MIN = 512  # from this length on, rep movsb/stosb beat the 16-byte loops
BYTE_BROADCAST = 0x0101010101010101


def emit_memory_grow(a: Assembler) -> list:
    """Returns the stub's CFI rows after its entry's (it pushes one word around the system
    call)."""
    rows = []
    fail, done = Label(), Label()
    a.mov(64, RAX, Mem(RDI, L.LM_MAX))
    a.alu("sub", 64, RAX, Mem(RDI, L.LM_SIZE))
    a.shift_imm("shr", 64, RAX, 16)
    a.alu("cmp", 64, RSI, RAX)  # unsigned: a delta beyond what is left fails, however large
    a.jcc(A, fail)
    a.mov(64, RAX, Mem(RDI, L.LM_SIZE))
    a.test(64, RSI, RSI)
    a.jcc(E, done)
    a.push(RDI)
    rows.append((a.pos, CfaRule("rsp", 16, _KEPT)))
    a.shift_imm("shl", 64, RSI, 16)
    a.mov(64, RDI, Mem(RDI, L.LM_BASE))
    a.alu("add", 64, RDI, RAX)
    a.mov_imm(32, RDX, PROT_READ_WRITE)
    a.mov_imm(32, RAX, SYS_MPROTECT)
    a.syscall()  # mprotect(base + size, delta bytes, read+write): keeps rdi, rsi, rdx
    a.pop(RDI)
    rows.append((a.pos, _AT_CALL))
    a.test(64, RAX, RAX)
    a.jcc(NE, fail)
    a.mov(64, RAX, Mem(RDI, L.LM_SIZE))
    a.alu("add", 64, RSI, RAX)
    a.mov(64, Mem(RDI, L.LM_SIZE), RSI)
    a.mov(64, RCX, Mem(RDI, L.LM_SIZE_FIELD_COUNT))
    a.mov(64, RDX, Mem(RDI, L.LM_SIZE_FIELDS))
    update, updated = Label(), Label()
    a.bind(update)
    a.test(64, RCX, RCX)
    a.jcc(E, updated)
    a.alu_imm("sub", 64, RCX, 1)
    a.mov(64, R11, Mem(RDX, 0, RCX, 8))
    a.mov(64, Mem(R11, 0), RSI)
    a.jmp(update)
    a.bind(updated)
    a.bind(done)
    a.shift_imm("shr", 64, RAX, 16)
    a.ret()
    a.bind(fail)
    a.mov_imm(64, RAX, -1)
    a.ret()
    return rows


def emit_memory_copy(a: Assembler):
    """memmove of rdx bytes from rsi to rdi. Up to 32 bytes: every load before any store.
    Longer: a 16-byte loop whose last (forward) or first (backward) block is loaded up
    front, or rep movsb forward from REP_MOVS_MIN bytes on."""
    above_16, above_32, below_8, below_4, below_2, backward, rep = (Label() for _ in range(7))
    a.alu_imm("cmp", 64, RDX, 16)
    a.jcc(A, above_16)
    a.alu_imm("cmp", 64, RDX, 8)
    a.jcc(B, below_8)
    a.mov(64, RAX, Mem(RSI, 0))  # 8..16: two words, overlapping in the middle
    a.mov(64, RCX, Mem(RSI, -8, RDX))
    a.mov(64, Mem(RDI, 0), RAX)
    a.mov(64, Mem(RDI, -8, RDX), RCX)
    a.ret()
    a.bind(below_8)
    a.alu_imm("cmp", 64, RDX, 4)
    a.jcc(B, below_4)
    a.mov(32, RAX, Mem(RSI, 0))
    a.mov(32, RCX, Mem(RSI, -4, RDX))
    a.mov(32, Mem(RDI, 0), RAX)
    a.mov(32, Mem(RDI, -4, RDX), RCX)
    a.ret()
    a.bind(below_4)
    a.alu_imm("cmp", 64, RDX, 2)
    a.jcc(B, below_2)
    a.movzx(32, 16, RAX, Mem(RSI, 0))
    a.movzx(32, 16, RCX, Mem(RSI, -2, RDX))
    a.mov(16, Mem(RDI, 0), RAX)
    a.mov(16, Mem(RDI, -2, RDX), RCX)
    a.ret()
    a.bind(below_2)
    a.test(64, RDX, RDX)
    zero = Label()
    a.jcc(E, zero)
    a.movzx(32, 8, RAX, Mem(RSI, 0))
    a.mov(8, Mem(RDI, 0), RAX)
    a.bind(zero)
    a.ret()
    a.bind(above_16)
    a.alu_imm("cmp", 64, RDX, 32)
    a.jcc(A, above_32)
    a.movups(XSCRATCH, Mem(RSI, 0))  # 17..32: 16 bytes, then the last 16 as two words
    a.mov(64, RAX, Mem(RSI, -16, RDX))
    a.mov(64, RCX, Mem(RSI, -8, RDX))
    a.movups(Mem(RDI, 0), XSCRATCH)
    a.mov(64, Mem(RDI, -16, RDX), RAX)
    a.mov(64, Mem(RDI, -8, RDX), RCX)
    a.ret()
    a.bind(above_32)
    a.mov(64, RAX, RDI)
    a.alu("sub", 64, RAX, RSI)
    a.alu("cmp", 64, RAX, RDX)
    a.jcc(B, backward)  # the destination starts inside the source: copy from the end
    a.alu_imm("cmp", 64, RDX, REP_MOVS_MIN)
    a.jcc(AE, rep)
    # Forward: keep the source's last 16 bytes for the end, copy 16-byte blocks up to them.
    forward = Label()
    a.mov(64, RAX, Mem(RSI, -16, RDX))
    a.mov(64, RCX, Mem(RSI, -8, RDX))
    a.lea(R11, Mem(RDI, -16, RDX))
    a.bind(forward)
    a.movups(XSCRATCH, Mem(RSI, 0))
    a.movups(Mem(RDI, 0), XSCRATCH)
    a.alu_imm("add", 64, RSI, 16)
    a.alu_imm("add", 64, RDI, 16)
    a.alu_imm("sub", 64, RDX, 16)
    a.alu_imm("cmp", 64, RDX, 16)
    a.jcc(A, forward)
    a.mov(64, Mem(R11, 0), RAX)
    a.mov(64, Mem(R11, 8), RCX)
    a.ret()
    a.bind(rep)  # forward and long: byte-by-byte semantics, any overlap with dst < src
    a.mov(64, RCX, RDX)
    a.rep_movsb()
    a.ret()
    # Backward: keep the source's first 16 bytes for the end, copy 16-byte blocks from the
    # top down; each block is loaded before it is stored, and every store lands above the
    # source bytes still to be read.
    a.bind(backward)
    down = Label()
    a.mov(64, RAX, Mem(RSI, 0))
    a.mov(64, RCX, Mem(RSI, 8))
    a.bind(down)
    a.alu_imm("sub", 64, RDX, 16)
    a.movups(XSCRATCH, Mem(RSI, 0, RDX))
    a.movups(Mem(RDI, 0, RDX), XSCRATCH)
    a.alu_imm("cmp", 64, RDX, 16)
    a.jcc(A, down)
    a.mov(64, Mem(RDI, 0), RAX)
    a.mov(64, Mem(RDI, 8), RCX)
    a.ret()


def emit_memory_fill(a: Assembler):
    """memset of rdx bytes at rdi to sil: overlapping stores of the broadcast byte up to
    32 bytes, a 16-byte loop, or rep stosb from REP_MOVS_MIN bytes on."""
    above_16, above_32, below_8, below_4, done, rep = (Label() for _ in range(6))
    a.movzx(32, 8, RAX, RSI)
    a.mov_imm(64, R11, BYTE_BROADCAST)
    a.imul(64, RAX, R11)
    a.alu_imm("cmp", 64, RDX, 16)
    a.jcc(A, above_16)
    a.alu_imm("cmp", 64, RDX, 8)
    a.jcc(B, below_8)
    a.mov(64, Mem(RDI, 0), RAX)
    a.mov(64, Mem(RDI, -8, RDX), RAX)
    a.ret()
    a.bind(below_8)
    a.alu_imm("cmp", 64, RDX, 4)
    a.jcc(B, below_4)
    a.mov(32, Mem(RDI, 0), RAX)
    a.mov(32, Mem(RDI, -4, RDX), RAX)
    a.ret()
    a.bind(below_4)  # 0..3: the first, the last and the second byte
    a.test(64, RDX, RDX)
    a.jcc(E, done)
    a.mov(8, Mem(RDI, 0), RAX)
    a.mov(8, Mem(RDI, -1, RDX), RAX)
    a.alu_imm("cmp", 64, RDX, 2)
    a.jcc(BE, done)
    a.mov(8, Mem(RDI, 1), RAX)
    a.bind(done)
    a.ret()
    a.bind(above_16)
    a.movq_to_xmm(64, XSCRATCH, RAX)
    a.punpcklqdq(XSCRATCH, XSCRATCH)
    a.alu_imm("cmp", 64, RDX, 32)
    a.jcc(A, above_32)
    a.movups(Mem(RDI, 0), XSCRATCH)
    a.movups(Mem(RDI, -16, RDX), XSCRATCH)
    a.ret()
    a.bind(above_32)
    a.alu_imm("cmp", 64, RDX, REP_MOVS_MIN)
    a.jcc(AE, rep)
    blocks = Label()
    a.lea(R11, Mem(RDI, -16, RDX))
    a.bind(blocks)
    a.movups(Mem(RDI, 0), XSCRATCH)
    a.alu_imm("add", 64, RDI, 16)
    a.alu_imm("sub", 64, RDX, 16)
    a.alu_imm("cmp", 64, RDX, 16)
    a.jcc(A, blocks)
    a.movups(Mem(R11, 0), XSCRATCH)
    a.ret()
    a.bind(rep)
    a.mov(64, RCX, RDX)
    a.rep_stosb()
    a.ret()


def emit_bulk_stubs(a: Assembler) -> list[tuple[str, int, int, list]]:
    """Emit the three stubs; returns (name, start, end, cfi rows) for each."""
    stubs = []
    for name, emit in (("stackstitch_memory_grow", emit_memory_grow),
                       ("stackstitch_memory_copy", emit_memory_copy),
                       ("stackstitch_memory_fill", emit_memory_fill)):
        start = a.pos
        later_rows = emit(a) or []
        stubs.append((name, start, a.pos, [(start, _AT_ENTRY), (start + 1, _AT_CALL), *later_rows]))
    return stubs
