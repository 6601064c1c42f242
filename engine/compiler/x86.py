"""A small x86-64 encoder for the forms the compiler emits.

Hand-written because the compiler's inner loop is dominated by encoding: iced-x86 measured
1.9 us per instruction from Python, several times the budget for 1 MB/s of Wasm. Each form
here is checked against capstone in tests/test_x86.py.
"""

from __future__ import annotations

import functools
import struct

from ..records import record

RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI = range(8)
R8, R9, R10, R11, R12, R13, R14, R15 = range(8, 16)
GPR_NAMES = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]

# Condition codes (the low nibble of jcc/setcc/cmovcc opcodes).
O, NO, B, AE, E, NE, BE, A, S, NS, P, NP, L, GE, LE, G = range(16)
_JCC_REL32 = [bytes((0x0F, 0x80 | cc)) for cc in range(16)]  # jcc rel32's opcode, by condition


def negate(cc: int) -> int:
    """The condition that holds exactly when `cc` does not (codes come in such pairs)."""
    return cc ^ 1

_pack_i32 = struct.Struct("<i").pack
_pack_i32_into = struct.Struct("<i").pack_into
_pack_u32 = struct.Struct("<I").pack
_pack_q = struct.Struct("<q").pack
_pack_Q = struct.Struct("<Q").pack


@record
class Mem:
    """A memory operand [base + index*scale + disp]. A tuple, so that an instruction's
    operands hash (in C) into the key of the encodings already computed."""

    base: int
    disp: int = 0
    index: int | None = None
    scale: int = 1


class Rip:
    """A memory operand at a label: [rip + disp32], relative to the end of the instruction.
    Only forms without an immediate after the operand take one."""

    __slots__ = ("label",)
    __hash__ = None  # never a remembered form's key: the displacement depends on the position

    def __init__(self, label: "Label"):
        self.label = label


class Label:
    """A code position, possibly not yet bound; `fixups` are rel32 fields waiting for it."""

    __slots__ = ("pos", "fixups")

    def __init__(self):
        self.pos: int | None = None
        self.fixups: list[int] = []


_SCALE_BITS = {1: 0, 2: 1, 4: 2, 8: 3}


def _encode(prefix: int, w: int, opcode: bytes, reg: int, rm, force_rex: bool) -> bytes:
    """[prefix] [REX] opcode modrm [sib] [disp] for register `reg` and operand `rm`."""
    buf = bytearray()
    if prefix:
        buf.append(prefix)
    if rm.__class__ is int:
        rex = 0x40 | (w << 3) | ((reg & 8) >> 1) | ((rm & 8) >> 3)
        if rex != 0x40 or force_rex:
            buf.append(rex)
        buf += opcode
        buf.append(0xC0 | ((reg & 7) << 3) | (rm & 7))
        return bytes(buf)
    base, index, disp = rm.base, rm.index, rm.disp
    rex = 0x40 | (w << 3) | ((reg & 8) >> 1) | (((index or 0) & 8) >> 2) | ((base & 8) >> 3)
    if rex != 0x40 or force_rex:
        buf.append(rex)
    buf += opcode
    low = base & 7
    if disp == 0 and low != RBP:
        mod = 0
    elif -128 <= disp < 128:
        mod = 0x40
    else:
        mod = 0x80
    if index is not None:
        buf.append(mod | ((reg & 7) << 3) | 4)
        buf.append((_SCALE_BITS[rm.scale] << 6) | ((index & 7) << 3) | low)
    elif low == RSP:
        buf.append(mod | ((reg & 7) << 3) | 4)
        buf.append(0x24)
    else:
        buf.append(mod | ((reg & 7) << 3) | low)
    if mod == 0x40:
        buf.append(disp & 0xFF)
    elif mod == 0x80:
        buf += _pack_i32(disp)
    return bytes(buf)


def _encode_rip(prefix: int, w: int, opcode: bytes, reg: int, force_rex: bool) -> bytes:
    """[prefix] [REX] opcode modrm for a rip-relative operand; the disp32 follows."""
    buf = bytearray()
    if prefix:
        buf.append(prefix)
    rex = 0x40 | (w << 3) | ((reg & 8) >> 1)
    if rex != 0x40 or force_rex:
        buf.append(rex)
    buf += opcode
    buf.append(0x05 | ((reg & 7) << 3))
    return bytes(buf)


# Encodings already computed: the compiler emits the same few thousand forms over and over
# (frame slots at fixed rbp offsets), so most instructions are one dictionary lookup.
_ENCODINGS: dict[tuple, bytes] = {}


def remembered(form):
    """For a form whose bytes depend on nothing but its arguments: encode each argument
    tuple once, then copy the bytes (the most frequent forms skip `_emit` that way)."""
    encodings: dict[tuple, bytes] = {}

    @functools.wraps(form)
    def emit(self, *args):
        try:
            encoded = encodings.get(args)
        except TypeError:  # a label's operand (Rip), whose bytes depend on where they are
            form(self, *args)
            return
        if encoded is None:
            start = len(self.buf)
            form(self, *args)
            encodings[args] = bytes(self.buf[start:])
        else:
            self.buf += encoded

    return emit


class Assembler:
    """Appends encoded instructions to `buf`. Sizes: 8/16/32/64 where a form has a width."""

    def __init__(self):
        self.buf = bytearray()

    @property
    def pos(self) -> int:
        return len(self.buf)

    # ---- encoding core ---------------------------------------------------------------

    def _emit(self, prefix: int, w: int, opcode: bytes, reg: int, rm, force_rex: bool = False):
        """Emit [prefix] [REX] opcode modrm [sib] [disp] for register `reg` and operand `rm`."""
        if rm.__class__ is Rip:
            self.buf += _encode_rip(prefix, w, opcode, reg, force_rex)
            self._rel32(rm.label)
            return
        key = (prefix, w, opcode, reg, rm, force_rex)
        encoded = _ENCODINGS.get(key)
        if encoded is None:
            encoded = _ENCODINGS[key] = _encode(prefix, w, opcode, reg, rm, force_rex)
        self.buf += encoded

    def encoded_since(self, start: int) -> bytes:
        """The bytes encoded from offset `start` on, for `repeat`."""
        return bytes(self.buf[start:])

    def repeat(self, encoded: bytes):
        """Emit again what `encoded_since` returned: for a sequence with no labels whose
        bytes depend on nothing but what it was encoded for."""
        self.buf += encoded

    def patch_i32(self, at: int, value: int):
        """Fill in a 32-bit field left by one of the patchable forms below."""
        _pack_i32_into(self.buf, at, value)

    def data32(self, value: int = 0) -> int:
        """A 32-bit data word in the code (a jump table entry); returns its offset."""
        at = len(self.buf)
        self.buf += _pack_i32(value)
        return at

    def data64(self, value: int):
        """A 64-bit data word in the code (a constant read through a Rip operand)."""
        self.buf += _pack_Q(value & 0xFFFFFFFFFFFFFFFF)

    def align(self, boundary: int):
        """Pad with int3 up to a multiple of `boundary` (before data, never executed)."""
        self.buf += b"\xcc" * (-len(self.buf) % boundary)

    # ---- moves -----------------------------------------------------------------------

    @remembered
    def mov(self, size: int, dst, src):
        """mov between registers and memory; `size` 8/16/32/64 (8/16 only for stores)."""
        if isinstance(dst, Mem):
            if size == 8:
                self._emit(0, 0, b"\x88", src, dst, force_rex=src >= 4)
            elif size == 16:
                self._emit(0x66, 0, b"\x89", src, dst)
            else:
                self._emit(0, size == 64, b"\x89", src, dst)
        else:
            self._emit(0, size == 64, b"\x8b", dst, src)

    def mov_imm(self, size: int, dst: int, imm: int):
        """Load a constant into a register with the shortest exact form."""
        if size == 32 or 0 <= imm < 1 << 32:
            imm &= 0xFFFFFFFF
            if imm == 0:
                self._emit(0, 0, b"\x31", dst, dst)  # xor r32, r32 (clobbers flags)
                return
            if dst >= 8:
                self.buf.append(0x41)
            self.buf.append(0xB8 | (dst & 7))
            self.buf += _pack_u32(imm)
        else:
            imm &= 0xFFFFFFFFFFFFFFFF
            if imm >= 1 << 63 and imm - (1 << 64) >= -(1 << 31):
                self._emit(0, 1, b"\xc7", 0, dst)
                self.buf += _pack_i32(imm - (1 << 64))
            else:
                self.buf.append(0x48 | (dst >> 3))
                self.buf.append(0xB8 | (dst & 7))
                self.buf += _pack_Q(imm)

    @remembered
    def mov_imm_noflags(self, dst: int, imm: int):
        """Like mov_imm but never uses xor, so flags survive (used between cmp and jcc)."""
        imm &= 0xFFFFFFFFFFFFFFFF
        if imm < 1 << 32:
            if dst >= 8:
                self.buf.append(0x41)
            self.buf.append(0xB8 | (dst & 7))
            self.buf += _pack_u32(imm)
        else:
            self.buf.append(0x48 | (dst >> 3))
            self.buf.append(0xB8 | (dst & 7))
            self.buf += _pack_Q(imm)

    @remembered
    def store_imm(self, size: int, dst: Mem, imm: int):
        """mov [mem], imm (imm32 sign-extended for size 64)."""
        if size == 8:
            self._emit(0, 0, b"\xc6", 0, dst)
            self.buf.append(imm & 0xFF)
        elif size == 16:
            self._emit(0x66, 0, b"\xc7", 0, dst)
            self.buf += struct.pack("<H", imm & 0xFFFF)
        else:
            self._emit(0, size == 64, b"\xc7", 0, dst)
            self.buf += _pack_u32(imm & 0xFFFFFFFF)

    @remembered
    def movzx(self, size: int, src_size: int, dst: int, src):
        """Zero-extending load/move from 8 or 16 bits (32 -> 64 is a plain 32-bit mov)."""
        op = b"\x0f\xb6" if src_size == 8 else b"\x0f\xb7"
        force = src_size == 8 and not isinstance(src, Mem) and 4 <= src < 8
        self._emit(0, size == 64, op, dst, src, force_rex=force)

    @remembered
    def movsx(self, size: int, src_size: int, dst: int, src):
        """Sign-extending load/move from 8, 16 or 32 bits."""
        if src_size == 32:
            self._emit(0, 1, b"\x63", dst, src)
            return
        op = b"\x0f\xbe" if src_size == 8 else b"\x0f\xbf"
        force = src_size == 8 and not isinstance(src, Mem) and 4 <= src < 8
        self._emit(0, size == 64, op, dst, src, force_rex=force)

    def lea_rip(self, dst: int, label: Label):
        """dst = the address of `label` (rip-relative)."""
        self.buf += bytes((0x48 | ((dst & 8) >> 1), 0x8D, 0x05 | ((dst & 7) << 3)))
        self._rel32(label)

    def lea_patchable(self, dst: int, base: int) -> int:
        """lea dst, [base + disp32], the displacement to be patched; returns its offset."""
        self._emit(0, 1, b"\x8d", dst, Mem(base, 1 << 30))  # any disp beyond disp8
        at = len(self.buf) - 4
        self.patch_i32(at, 0)
        return at

    @remembered
    def push_mem(self, src: Mem):
        self._emit(0, 0, b"\xff", 6, src)

    @remembered
    def lea(self, dst: int, src: Mem, size: int = 64):
        """dst = the address of src; with size 32, its low half, zero-extended."""
        self._emit(0, size == 64, b"\x8d", dst, src)

    def push(self, reg: int):
        if reg >= 8:
            self.buf.append(0x41)
        self.buf.append(0x50 | (reg & 7))

    def pop(self, reg: int):
        if reg >= 8:
            self.buf.append(0x41)
        self.buf.append(0x58 | (reg & 7))

    # ---- integer arithmetic ----------------------------------------------------------

    _ALU = {"add": 0, "or": 1, "adc": 2, "sbb": 3, "and": 4, "sub": 5, "xor": 6, "cmp": 7}

    @remembered
    def alu(self, op: str, size: int, dst, src):
        """add/or/adc/sbb/and/sub/xor/cmp; dst register with src register/memory, or dst memory with src register."""
        n = self._ALU[op]
        if isinstance(dst, Mem):
            self._emit(0, size == 64, bytes((n * 8 + 1,)), src, dst)
        else:
            self._emit(0, size == 64, bytes((n * 8 + 3,)), dst, src)

    @remembered
    def alu_imm(self, op: str, size: int, dst, imm: int):
        """ALU op with a sign-extended 8- or 32-bit immediate."""
        n = self._ALU[op]
        if -128 <= imm < 128:
            self._emit(0, size == 64, b"\x83", n, dst)
            self.buf.append(imm & 0xFF)
        else:
            self._emit(0, size == 64, b"\x81", n, dst)
            self.buf += _pack_u32(imm & 0xFFFFFFFF)

    def alu_imm_patchable(self, op: str, size: int, dst) -> int:
        """ALU op with a 32-bit immediate to be patched (a frame size known only at the
        end of the function); returns the immediate's offset."""
        self._emit(0, size == 64, b"\x81", self._ALU[op], dst)
        return self.data32()

    @remembered
    def test(self, size: int, a, b: int):
        self._emit(0, size == 64, b"\x85", b, a)

    @remembered
    def imul(self, size: int, dst: int, src):
        self._emit(0, size == 64, b"\x0f\xaf", dst, src)

    @remembered
    def imul_imm(self, size: int, dst: int, src, imm: int):
        if -128 <= imm < 128:
            self._emit(0, size == 64, b"\x6b", dst, src)
            self.buf.append(imm & 0xFF)
        else:
            self._emit(0, size == 64, b"\x69", dst, src)
            self.buf += _pack_u32(imm & 0xFFFFFFFF)

    @remembered
    def unary(self, op: str, size: int, operand):
        """not/neg/mul/imul1/div/idiv: the F7 group."""
        n = {"not": 2, "neg": 3, "mul": 4, "imul1": 5, "div": 6, "idiv": 7}[op]
        self._emit(0, size == 64, b"\xf7", n, operand)

    _SHIFT = {"rol": 0, "ror": 1, "shl": 4, "shr": 5, "sar": 7}

    @remembered
    def shift_cl(self, op: str, size: int, dst):
        self._emit(0, size == 64, b"\xd3", self._SHIFT[op], dst)

    @remembered
    def shift_imm(self, op: str, size: int, dst, imm: int):
        self._emit(0, size == 64, b"\xc1", self._SHIFT[op], dst)
        self.buf.append(imm & 0xFF)

    @remembered
    def bitcount(self, op: str, size: int, dst: int, src):
        """lzcnt/tzcnt/popcnt (F3-prefixed)."""
        opcode = {"lzcnt": b"\x0f\xbd", "tzcnt": b"\x0f\xbc", "popcnt": b"\x0f\xb8"}[op]
        self._emit(0xF3, size == 64, opcode, dst, src)

    def cdq(self):
        self.buf.append(0x99)

    def cqo(self):
        self.buf += b"\x48\x99"

    @remembered
    def setcc(self, cc: int, dst: int):
        self._emit(0, 0, bytes((0x0F, 0x90 | cc)), 0, dst, force_rex=4 <= dst < 8)

    @remembered
    def cmov(self, cc: int, size: int, dst: int, src):
        self._emit(0, size == 64, bytes((0x0F, 0x40 | cc)), dst, src)

    # ---- control flow ----------------------------------------------------------------

    def bind(self, label: Label):
        label.pos = len(self.buf)
        if label.fixups:
            buf, pos = self.buf, label.pos
            for at in label.fixups:
                _pack_i32_into(buf, at, pos - (at + 4))
            label.fixups = []

    def _rel32(self, label: Label):
        if label.pos is not None:
            self.buf += _pack_i32(label.pos - (len(self.buf) + 4))
        else:
            label.fixups.append(len(self.buf))
            self.buf += b"\0\0\0\0"

    def jmp(self, label: Label):
        if label.pos is not None and -128 <= label.pos - (len(self.buf) + 2) < 128:
            self.buf.append(0xEB)
            self.buf.append((label.pos - (len(self.buf) + 1)) & 0xFF)
            return
        self.buf.append(0xE9)
        self._rel32(label)

    def jcc(self, cc: int, label: Label):
        if label.pos is not None and -128 <= label.pos - (len(self.buf) + 2) < 128:
            self.buf.append(0x70 | cc)
            self.buf.append((label.pos - (len(self.buf) + 1)) & 0xFF)
            return
        self.buf += _JCC_REL32[cc]
        self._rel32(label)

    def jmp_near(self, label: Label):
        """jmp rel32 even to a label within reach of the short form: a jump to another
        function, which may be in another part of a module compiled in pieces."""
        self.buf.append(0xE9)
        self._rel32(label)

    def call_label(self, label: Label):
        self.buf.append(0xE8)
        self._rel32(label)

    @remembered
    def call_indirect(self, target):
        self._emit(0, 0, b"\xff", 2, target)

    @remembered
    def jmp_indirect(self, target):
        self._emit(0, 0, b"\xff", 4, target)

    def ret(self):
        self.buf.append(0xC3)

    def repz_ret(self):
        """A `ret` whose first byte is not 0xC3 (see the libcall switch in stubs.py)."""
        self.buf += b"\xf3\xc3"

    def ud2(self):
        self.buf += b"\x0f\x0b"

    def int3(self):
        self.buf.append(0xCC)

    def rdtsc(self):
        self.buf += b"\x0f\x31"

    def rep_movsq(self):
        self.buf += b"\xf3\x48\xa5"

    def rep_stosq(self):
        self.buf += b"\xf3\x48\xab"

    def rep_movsb(self):
        self.buf += b"\xf3\xa4"

    def rep_stosb(self):
        self.buf += b"\xf3\xaa"

    def syscall(self):
        self.buf += b"\x0f\x05"

    # ---- SSE -------------------------------------------------------------------------

    @remembered
    def movs(self, size: int, dst, src):
        """movss/movsd between xmm registers and memory (size 32 or 64)."""
        prefix = 0xF3 if size == 32 else 0xF2
        if isinstance(dst, Mem):
            self._emit(prefix, 0, b"\x0f\x11", src, dst)
        else:
            self._emit(prefix, 0, b"\x0f\x10", dst, src)

    @remembered
    def movaps(self, dst: int, src: int):
        self._emit(0, 0, b"\x0f\x28", dst, src)

    def movups(self, dst, src):
        """16-byte unaligned move between an xmm register and memory."""
        if isinstance(dst, Mem):
            self._emit(0, 0, b"\x0f\x11", src, dst)
        else:
            self._emit(0, 0, b"\x0f\x10", dst, src)

    def punpcklqdq(self, dst: int, src: int):
        """dst's high quadword = src's low one (with src = dst: broadcast the low quadword)."""
        self._emit(0x66, 0, b"\x0f\x6c", dst, src)

    @remembered
    def movq_to_xmm(self, size: int, dst: int, src):
        """movd/movq xmm, r/m."""
        self._emit(0x66, size == 64, b"\x0f\x6e", dst, src)

    @remembered
    def movq_from_xmm(self, size: int, dst, src: int):
        """movd/movq r/m, xmm."""
        self._emit(0x66, size == 64, b"\x0f\x7e", src, dst)

    _ARITH = {"add": 0x58, "mul": 0x59, "sub": 0x5C, "min": 0x5D, "div": 0x5E, "max": 0x5F,
              "sqrt": 0x51}

    @remembered
    def farith(self, op: str, size: int, dst: int, src):
        prefix = 0xF3 if size == 32 else 0xF2
        self._emit(prefix, 0, bytes((0x0F, self._ARITH[op])), dst, src)

    @remembered
    def ucomis(self, size: int, a: int, b):
        self._emit(0x66 if size == 64 else 0, 0, b"\x0f\x2e", a, b)

    _LOGIC = {"and": 0x54, "andn": 0x55, "or": 0x56, "xor": 0x57}

    @remembered
    def flogic(self, op: str, size: int, dst: int, src):
        """andps/andpd etc. (whole-register bitwise logic)."""
        self._emit(0x66 if size == 64 else 0, 0, bytes((0x0F, self._LOGIC[op])), dst, src)

    @remembered
    def cvtsi2f(self, fsize: int, isize: int, dst: int, src):
        self._emit(0xF3 if fsize == 32 else 0xF2, isize == 64, b"\x0f\x2a", dst, src)

    @remembered
    def cvttf2si(self, fsize: int, isize: int, dst: int, src):
        self._emit(0xF3 if fsize == 32 else 0xF2, isize == 64, b"\x0f\x2c", dst, src)

    @remembered
    def cvtf2f(self, src_size: int, dst: int, src):
        """cvtss2sd (src_size 32) or cvtsd2ss (src_size 64)."""
        self._emit(0xF3 if src_size == 32 else 0xF2, 0, b"\x0f\x5a", dst, src)

    @remembered
    def rounds(self, size: int, dst: int, src, mode: int):
        """roundss/roundsd with an immediate rounding mode (0 nearest, 1 floor, 2 ceil, 3 trunc)."""
        if src.__class__ is Rip:
            raise ValueError("roundss/roundsd: an immediate follows, so no rip-relative operand")
        self._emit(0x66, 0, b"\x0f\x3a\x0a" if size == 32 else b"\x0f\x3a\x0b", dst, src)
        self.buf.append(mode | 8)  # 8: suppress the precision exception
