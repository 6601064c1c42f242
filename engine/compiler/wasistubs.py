"""Native fast paths for the WASI calls a file-heavy program makes most: fd_read, fd_write
(readv, writev) and fd_seek (lseek) on a file descriptor.

Each is called as the host function it stands for (arguments from [rsp+8] on, the result
word written back there; r15 the host block) and does the system call itself when the
call is simple: the descriptor is a plain file (the host block's table, which the WASI
context keeps current, gives its host fd, else -1), every pointer is in bounds and
aligned, the iovec array has at most FAST_IOVS entries and the stack has room for their
native copy. Anything else, a failing system call included, goes on to the host trampoline
unchanged: the Python implementation decides, with its errno mapping and its traps. A
failed readv, writev or lseek transfers nothing, so doing it again there changes nothing.

Guest pointers are 32-bit and checked against the memory's current size before anything
is read or handed to the kernel, so a call reaches only linear memory.
"""

from __future__ import annotations

from .. import layout as L
from .frames import AT_CALL, RBP_FRAME, emit_pop_frame, emit_push_frame
from .x86 import (A, AE, B, BE, E, L as LESS, NE, R8, R9, R10, R11, R15, RAX, RBP, RCX, RDI, RDX, RSI,
                  RSP, Assembler, Label, Mem)

SYS_READV, SYS_WRITEV, SYS_LSEEK = 19, 20, 8
FAST_IOVS = 4  # iovec entries converted here; more go to Python
NATIVE_IOVEC = 16  # struct iovec: base, length
ARGUMENT = [16 + 8 * i for i in range(4)]  # the call's arguments, rbp-relative


def emit_wasi_stubs(a: Assembler, host_trampoline: Label) -> list[tuple[str, int, int, list]]:
    """Emit the three stubs; returns (name, start, end, cfi rows) for each."""
    stubs = []
    for name, emit in (("stackstitch_wasi_fd_read", lambda: emit_transfer(a, SYS_READV, host_trampoline)),
                       ("stackstitch_wasi_fd_write", lambda: emit_transfer(a, SYS_WRITEV, host_trampoline)),
                       ("stackstitch_wasi_fd_seek", lambda: emit_seek(a, host_trampoline))):
        start = a.pos
        rows = emit()
        stubs.append((name, start, a.pos, rows))
    return stubs


def _enter(a: Assembler, slow: Label) -> list:
    """The frame, and the call's host fd in rdi, its memory's base in r8 and size in r9
    (to `slow` if the descriptor is not a plain file or no memory is bound yet)."""
    rows = [(a.pos, AT_CALL)]
    emit_push_frame(a, rows)
    a.mov(32, RAX, Mem(RBP, ARGUMENT[0]))  # the WASI fd, zero-extended
    a.alu("cmp", 64, RAX, Mem(R15, L.HB_FAST_NFDS))
    a.jcc(AE, slow)
    a.mov(64, RCX, Mem(R15, L.HB_FAST_FDS))
    a.mov(64, RDI, Mem(RCX, 0, RAX, 8))
    a.alu_imm("cmp", 64, RDI, 0)
    a.jcc(LESS, slow)
    a.mov(64, RCX, Mem(R15, L.HB_FAST_MEMORY))
    a.test(64, RCX, RCX)
    a.jcc(E, slow)
    a.mov(64, R8, Mem(RCX, L.LM_BASE))
    a.mov(64, R9, Mem(RCX, L.LM_SIZE))
    return rows


def _check_result_pointer(a: Assembler, argument: int, size: int, slow: Label) -> None:
    """r10: the argument, a pointer to `size` bytes that must be in bounds and aligned."""
    a.mov(32, R10, Mem(RBP, argument))
    a.mov_imm(32, RAX, size - 1)
    a.test(32, R10, RAX)
    a.jcc(NE, slow)
    a.lea(RAX, Mem(R10, size))
    a.alu("cmp", 64, RAX, R9)
    a.jcc(A, slow)


def _leave(a: Assembler, rows: list, slow: Label, host_trampoline: Label) -> None:
    """Return errno 0; `slow` leaves the frame and goes on to the host trampoline."""
    a.store_imm(64, Mem(RBP, ARGUMENT[0]), 0)
    emit_pop_frame(a, rows)
    a.ret()
    rows.append((a.pos, RBP_FRAME))
    a.bind(slow)
    emit_pop_frame(a, rows)
    a.jmp(host_trampoline)


def emit_transfer(a: Assembler, syscall: int, host_trampoline: Label) -> list:
    """fd_read or fd_write(fd, iovs, iovs_len, nbytes_ptr) as readv or writev."""
    slow, pieces_done = Label(), Label()
    rows = _enter(a, slow)
    a.mov(64, RAX, Mem(R15, L.VM_RUNTIME))  # room for the native iovecs on this stack
    a.lea(R11, Mem(RSP, -NATIVE_IOVEC * FAST_IOVS))
    a.alu("cmp", 64, R11, Mem(RAX, L.RT_STACK_LIMIT))
    a.jcc(B, slow)
    _check_result_pointer(a, ARGUMENT[3], 4, slow)
    a.mov(32, RSI, Mem(RBP, ARGUMENT[1]))  # iovs
    a.mov(32, RDX, Mem(RBP, ARGUMENT[2]))  # iovs_len
    a.alu_imm("sub", 64, RDX, 1)  # 1..FAST_IOVS entries (0 wraps around)
    a.alu_imm("cmp", 64, RDX, FAST_IOVS - 1)
    a.jcc(A, slow)
    a.alu_imm("add", 64, RDX, 1)
    a.mov_imm(32, RAX, 3)
    a.test(32, RSI, RAX)
    a.jcc(NE, slow)
    a.lea(RAX, Mem(RSI, 0, RDX, 8))
    a.alu("cmp", 64, RAX, R9)
    a.jcc(A, slow)
    a.lea(R11, Mem(R8, 0, RSI))  # the guest's iovec array
    a.alu_imm("sub", 64, RSP, NATIVE_IOVEC * FAST_IOVS)
    for piece in range(FAST_IOVS):
        a.alu_imm("cmp", 64, RDX, piece)
        a.jcc(BE, pieces_done)
        a.mov(32, RAX, Mem(R11, 8 * piece))  # buf
        a.mov(32, RSI, Mem(R11, 8 * piece + 4))  # buf_len
        a.lea(RCX, Mem(RAX, 0, RSI))
        a.alu("cmp", 64, RCX, R9)
        a.jcc(A, slow)
        a.alu("add", 64, RAX, R8)
        a.mov(64, Mem(RSP, NATIVE_IOVEC * piece), RAX)
        a.mov(64, Mem(RSP, NATIVE_IOVEC * piece + 8), RSI)
    a.bind(pieces_done)
    a.mov_imm(32, RAX, syscall)
    a.mov(64, RSI, RSP)
    a.syscall()  # rdi: host fd, rsi: native iovecs, rdx: their count; clobbers rcx, r11
    a.alu_imm("cmp", 64, RAX, 0)
    a.jcc(LESS, slow)
    a.mov(32, Mem(R8, 0, R10), RAX)  # bytes transferred
    _leave(a, rows, slow, host_trampoline)
    return rows


def emit_seek(a: Assembler, host_trampoline: Label) -> list:
    """fd_seek(fd, offset, whence, newoffset_ptr) as lseek."""
    slow = Label()
    rows = _enter(a, slow)
    _check_result_pointer(a, ARGUMENT[3], 8, slow)
    a.mov(32, RDX, Mem(RBP, ARGUMENT[2]))  # whence: SET, CUR, END are 0, 1, 2 in both
    a.alu_imm("cmp", 64, RDX, 2)
    a.jcc(A, slow)
    a.mov(64, RSI, Mem(RBP, ARGUMENT[1]))  # offset, as a signed 64-bit value
    a.mov_imm(32, RAX, SYS_LSEEK)
    a.syscall()
    a.alu_imm("cmp", 64, RAX, 0)
    a.jcc(LESS, slow)
    a.mov(64, Mem(R8, 0, R10), RAX)  # the new offset
    _leave(a, rows, slow, host_trampoline)
    return rows
