"""Every encoding form of `engine/x86.py` against capstone's decoder.

Cases are generated from operand tables (all 16 GPRs, all 16 xmm registers, memory operands
over every base with displacement and index*scale variants, immediates at the imm8, imm32
and imm64 boundaries). For each emitted instruction capstone must decode exactly one
instruction spanning every byte, with the expected mnemonic and operands.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Callable, NamedTuple

import pytest
from conftest import unavailable

from stackstitch.engine.compiler.x86 import (AE, B, E, GE, L, NE, RBP, RSP, R12, R13, Assembler, Label, Mem,
                                             Rip, negate)

try:
    import capstone
except ImportError:
    unavailable("capstone is not installed (the test extra)")

DISASM = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)

GPRS = range(16)
XMMS = range(16)
_NAMES64 = ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi"]
_LEGACY = ["ax", "cx", "dx", "bx", "sp", "bp", "si", "di"]
_BYTE_LOW = ["al", "cl", "dl", "bl", "spl", "bpl", "sil", "dil"]
CONDITIONS = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"]
PTR = {8: "byte", 16: "word", 32: "dword", 64: "qword", 128: "xmmword"}

# Displacements at and across the disp8 boundary, disp32 extremes, and zero (which rbp/r13
# bases cannot encode without a disp8).
DISPS = [0, 1, 9, 10, 127, 128, -1, -9, -10, -128, -129, 2**31 - 1, -2**31]
SCALES = [1, 2, 4, 8]


def gpr(reg: int, size: int = 64) -> str:
    """capstone's name for a general-purpose register at an operand size."""
    if reg >= 8:
        return f"r{reg}" + {8: "b", 16: "w", 32: "d", 64: ""}[size]
    if size == 64:
        return _NAMES64[reg]
    if size == 32:
        return "e" + _LEGACY[reg]
    return _LEGACY[reg] if size == 16 else _BYTE_LOW[reg]


def xmm(reg: int) -> str:
    return f"xmm{reg}"


def number(value: int) -> str:
    """capstone prints small magnitudes in decimal, the rest in hex."""
    return str(value) if value <= 9 else hex(value)


def mem_text(m: Mem, size: int | None) -> str:
    """The operand string capstone gives a memory operand (`size` None: no `ptr`, as in lea)."""
    text = gpr(m.base)
    if m.index is not None:
        text += " + " + gpr(m.index) + (f"*{m.scale}" if m.scale != 1 else "")
    if m.disp:
        text += (" - " if m.disp < 0 else " + ") + number(abs(m.disp))
    return (f"{PTR[size]} ptr " if size else "") + f"[{text}]"


def memory_operands() -> list[Mem]:
    """Every base with every displacement, and every (base, index) pair with rotating scale
    and displacement. rsp is never an index: its SIB code means "no index"."""
    mems = [Mem(base, disp) for base in GPRS for disp in DISPS]
    rotation = itertools.cycle(itertools.product(SCALES, DISPS))
    for base in GPRS:
        for index in GPRS:
            if index != RSP:
                scale, disp = next(rotation)
                mems.append(Mem(base, disp, index, scale))
    return mems


MEMS = memory_operands()


def with_regs(mems: list[Mem], regs=GPRS):
    """Pair each memory operand with a register, rotating so every register meets many bases."""
    return [(regs[(7 * k + 3) % len(regs)], m) for k, m in enumerate(mems)]


def reg_pairs():
    return list(itertools.product(GPRS, GPRS))


class Imm(NamedTuple):
    """An immediate operand, compared by value modulo 2**width rather than by spelling:
    capstone prints the same bits as `-1` or `0xffffffffffffffff` depending on the form."""

    value: int
    width: int


class Case(NamedTuple):
    emit: Callable[[Assembler], object]
    mnemonic: str
    operands: tuple
    desc: str


def decode_problem(case: Case) -> str | None:
    """None if the case encodes as expected, else a one-line description of the mismatch."""
    asm = Assembler()
    case.emit(asm)
    code = bytes(asm.buf)
    decoded = list(DISASM.disasm(code, 0))
    where = f"{case.desc}: {code.hex()}"
    if len(decoded) != 1 or decoded[0].size != len(code):
        listing = "; ".join(f"{i.mnemonic} {i.op_str}" for i in decoded)
        return f"{where} decodes as {len(decoded)} instruction(s) [{listing}]"
    insn = decoded[0]
    actual = [op.strip() for op in insn.op_str.split(",")] if insn.op_str else []
    if insn.mnemonic != case.mnemonic or len(actual) != len(case.operands):
        return f"{where} is `{insn.mnemonic} {insn.op_str}`, expected `{case.mnemonic}` {case.operands}"
    for got, want in zip(actual, case.operands):
        if isinstance(want, Imm):
            try:
                value = int(got, 0)
            except ValueError:
                return f"{where}: operand {got!r} is not an immediate"
            mask = (1 << want.width) - 1
            if value & mask != want.value & mask:
                return f"{where}: immediate {got} != {want.value:#x}"
        elif got != want:
            return f"{where} is `{insn.mnemonic} {insn.op_str}`, expected operand {want!r}"
    return None


def check(cases: list[Case]):
    assert cases
    problems = [p for p in map(decode_problem, cases) if p]
    assert not problems, f"{len(problems)} of {len(cases)} cases wrong:\n" + "\n".join(problems[:15])


def sign_extend(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


# ---- moves ---------------------------------------------------------------------------------

def test_mov_register_and_memory():
    cases = []
    for size in (32, 64):
        for d, s in reg_pairs():
            cases.append(Case(lambda a, d=d, s=s, size=size: a.mov(size, d, s), "mov",
                              (gpr(d, size), gpr(s, size)), f"mov{size} r{d}, r{s}"))
        for r, m in with_regs(MEMS):
            cases.append(Case(lambda a, r=r, m=m, size=size: a.mov(size, r, m), "mov",
                              (gpr(r, size), mem_text(m, size)), f"load{size} r{r}"))
    for size in (8, 16, 32, 64):
        for r, m in with_regs(MEMS):
            cases.append(Case(lambda a, r=r, m=m, size=size: a.mov(size, m, r), "mov",
                              (mem_text(m, size), gpr(r, size)), f"store{size} r{r}"))
    check(cases)


IMM_BOUNDARIES = [0, 1, 9, 127, 128, 2**31 - 1, 2**31, 2**32 - 1, 2**32, -1, -128, -129,
                  -2**31, -2**31 - 1, 2**63, 2**63 - 1, 2**64 - 1]


def expected_mov_imm(size: int, reg: int, imm: int, flags_free: bool) -> tuple[str, tuple]:
    """The shortest exact form: xor for zero (unless flags must survive), a zero-extending
    32-bit mov, a sign-extended imm32 mov, else movabs."""
    value = imm & ((1 << size) - 1)
    if value == 0 and flags_free:
        return "xor", (gpr(reg, 32), gpr(reg, 32))
    if value < 2**32:
        return "mov", (gpr(reg, 32), Imm(value, 32))
    if flags_free and -2**31 <= sign_extend(value, 64) < 0:
        return "mov", (gpr(reg), Imm(value, 64))
    return "movabs", (gpr(reg), Imm(value, 64))


def test_mov_imm_boundaries():
    cases = []
    for size, reg, imm in itertools.product((32, 64), GPRS, IMM_BOUNDARIES):
        mnemonic, ops = expected_mov_imm(size, reg, imm, flags_free=True)
        cases.append(Case(lambda a, size=size, reg=reg, imm=imm: a.mov_imm(size, reg, imm),
                          mnemonic, ops, f"mov_imm{size} r{reg}, {imm:#x}"))
    check(cases)


def test_mov_imm_noflags_never_uses_xor():
    cases = []
    for reg, imm in itertools.product(GPRS, IMM_BOUNDARIES):
        mnemonic, ops = expected_mov_imm(64, reg, imm, flags_free=False)
        cases.append(Case(lambda a, reg=reg, imm=imm: a.mov_imm_noflags(reg, imm),
                          mnemonic, ops, f"mov_imm_noflags r{reg}, {imm:#x}"))
    check(cases)


STORE_IMMS = {8: [0, 127, 128, 255, -1, -128], 16: [0, 0x7FFF, 0x8000, 0xFFFF, -1],
              32: [0, 1, 2**31 - 1, 2**31, 2**32 - 1, -1, -2**31],
              64: [0, 1, 2**31 - 1, -1, -2**31]}


def test_store_imm():
    cases = []
    for size, imms in STORE_IMMS.items():
        for (k, m), imm in zip(enumerate(MEMS), itertools.cycle(imms)):
            value = sign_extend(imm, 32) if size == 64 else imm
            cases.append(Case(lambda a, m=m, imm=imm, size=size: a.store_imm(size, m, imm), "mov",
                              (mem_text(m, size), Imm(value, size)), f"store_imm{size} #{k} {imm:#x}"))
    check(cases)


def test_movzx_movsx_including_rex_byte_registers():
    cases = []
    for name, method in (("movzx", Assembler.movzx), ("movsx", Assembler.movsx)):
        for size, src_size in itertools.product((32, 64), (8, 16)):
            for d, s in reg_pairs():
                cases.append(Case(lambda a, d=d, s=s, f=method, sz=size, ss=src_size: f(a, sz, ss, d, s),
                                  name, (gpr(d, size), gpr(s, src_size)), f"{name}{size}<-{src_size} r{d}, r{s}"))
            for r, m in with_regs(MEMS):
                cases.append(Case(lambda a, r=r, m=m, f=method, sz=size, ss=src_size: f(a, sz, ss, r, m),
                                  name, (gpr(r, size), mem_text(m, src_size)), f"{name}{size}<-{src_size} mem"))
    for d, s in reg_pairs():
        cases.append(Case(lambda a, d=d, s=s: a.movsx(64, 32, d, s), "movsxd",
                          (gpr(d), gpr(s, 32)), f"movsxd r{d}, r{s}"))
    for r, m in with_regs(MEMS):
        cases.append(Case(lambda a, r=r, m=m: a.movsx(64, 32, r, m), "movsxd",
                          (gpr(r), mem_text(m, 32)), f"movsxd r{r}, mem"))
    check(cases)


def test_lea_push_pop():
    cases = [Case(lambda a, r=r, m=m, size=size: a.lea(r, m, size), "lea", (gpr(r, size), mem_text(m, None)),
                  f"lea{size} r{r}")
             for r, m in with_regs(MEMS) for size in (32, 64)]
    for r in GPRS:
        cases.append(Case(lambda a, r=r: a.push(r), "push", (gpr(r),), f"push r{r}"))
        cases.append(Case(lambda a, r=r: a.pop(r), "pop", (gpr(r),), f"pop r{r}"))
    check(cases)


# ---- integer arithmetic --------------------------------------------------------------------

ALU_OPS = ["add", "or", "adc", "sbb", "and", "sub", "xor", "cmp"]
ALU_IMMS = [0, 1, 127, -128, 128, -129, 2**31 - 1, -2**31, 0x12345678]


def test_alu_register_and_memory_forms():
    cases = []
    for op, size in itertools.product(ALU_OPS, (32, 64)):
        for d, s in reg_pairs():
            cases.append(Case(lambda a, op=op, size=size, d=d, s=s: a.alu(op, size, d, s), op,
                              (gpr(d, size), gpr(s, size)), f"{op}{size} r{d}, r{s}"))
        for r, m in with_regs(MEMS):
            cases.append(Case(lambda a, op=op, size=size, r=r, m=m: a.alu(op, size, r, m), op,
                              (gpr(r, size), mem_text(m, size)), f"{op}{size} r{r}, mem"))
            cases.append(Case(lambda a, op=op, size=size, r=r, m=m: a.alu(op, size, m, r), op,
                              (mem_text(m, size), gpr(r, size)), f"{op}{size} mem, r{r}"))
    check(cases)


def test_alu_imm8_and_imm32_boundaries():
    cases = []
    for op, size in itertools.product(ALU_OPS, (32, 64)):
        for r, imm in itertools.product(GPRS, ALU_IMMS):
            cases.append(Case(lambda a, op=op, size=size, r=r, imm=imm: a.alu_imm(op, size, r, imm), op,
                              (gpr(r, size), Imm(imm, size)), f"{op}{size} r{r}, {imm}"))
        for m, imm in zip(MEMS[::5], itertools.cycle(ALU_IMMS)):
            cases.append(Case(lambda a, op=op, size=size, m=m, imm=imm: a.alu_imm(op, size, m, imm), op,
                              (mem_text(m, size), Imm(imm, size)), f"{op}{size} mem, {imm}"))
    check(cases)


def test_test():
    cases = []
    for size in (32, 64):
        for x, y in reg_pairs():
            cases.append(Case(lambda a, size=size, x=x, y=y: a.test(size, x, y), "test",
                              (gpr(x, size), gpr(y, size)), f"test{size} r{x}, r{y}"))
        for r, m in with_regs(MEMS):
            cases.append(Case(lambda a, size=size, r=r, m=m: a.test(size, m, r), "test",
                              (mem_text(m, size), gpr(r, size)), f"test{size} mem, r{r}"))
    check(cases)


def test_imul_forms():
    cases = []
    for size in (32, 64):
        for d, s in reg_pairs():
            cases.append(Case(lambda a, size=size, d=d, s=s: a.imul(size, d, s), "imul",
                              (gpr(d, size), gpr(s, size)), f"imul{size} r{d}, r{s}"))
        for r, m in with_regs(MEMS):
            cases.append(Case(lambda a, size=size, r=r, m=m: a.imul(size, r, m), "imul",
                              (gpr(r, size), mem_text(m, size)), f"imul{size} r{r}, mem"))
        for (d, s), imm in zip(reg_pairs(), itertools.cycle(ALU_IMMS)):
            cases.append(Case(lambda a, size=size, d=d, s=s, imm=imm: a.imul_imm(size, d, s, imm), "imul",
                              (gpr(d, size), gpr(s, size), Imm(imm, size)), f"imul{size} r{d}, r{s}, {imm}"))
        for (r, m), imm in zip(with_regs(MEMS), itertools.cycle(ALU_IMMS)):
            cases.append(Case(lambda a, size=size, r=r, m=m, imm=imm: a.imul_imm(size, r, m, imm), "imul",
                              (gpr(r, size), mem_text(m, size), Imm(imm, size)), f"imul{size} r{r}, mem, {imm}"))
    check(cases)


def test_unary_group():
    cases = []
    for op, size in itertools.product(["not", "neg", "mul", "imul1", "div", "idiv"], (32, 64)):
        mnemonic = "imul" if op == "imul1" else op
        for r in GPRS:
            cases.append(Case(lambda a, op=op, size=size, r=r: a.unary(op, size, r), mnemonic,
                              (gpr(r, size),), f"{op}{size} r{r}"))
        for m in MEMS[::2]:
            cases.append(Case(lambda a, op=op, size=size, m=m: a.unary(op, size, m), mnemonic,
                              (mem_text(m, size),), f"{op}{size} mem"))
    check(cases)


def test_shifts():
    cases = []
    for op, size in itertools.product(["rol", "ror", "shl", "shr", "sar"], (32, 64)):
        for r in GPRS:
            cases.append(Case(lambda a, op=op, size=size, r=r: a.shift_cl(op, size, r), op,
                              (gpr(r, size), "cl"), f"{op}{size} r{r}, cl"))
            for imm in (1, 5, 31, 63):
                cases.append(Case(lambda a, op=op, size=size, r=r, imm=imm: a.shift_imm(op, size, r, imm), op,
                                  (gpr(r, size), Imm(imm, 8)), f"{op}{size} r{r}, {imm}"))
        for m in MEMS[::4]:
            cases.append(Case(lambda a, op=op, size=size, m=m: a.shift_cl(op, size, m), op,
                              (mem_text(m, size), "cl"), f"{op}{size} mem, cl"))
            cases.append(Case(lambda a, op=op, size=size, m=m: a.shift_imm(op, size, m, 7), op,
                              (mem_text(m, size), Imm(7, 8)), f"{op}{size} mem, 7"))
    check(cases)


def test_bitcount():
    cases = []
    for op, size in itertools.product(["lzcnt", "tzcnt", "popcnt"], (32, 64)):
        for d, s in reg_pairs():
            cases.append(Case(lambda a, op=op, size=size, d=d, s=s: a.bitcount(op, size, d, s), op,
                              (gpr(d, size), gpr(s, size)), f"{op}{size} r{d}, r{s}"))
        for r, m in with_regs(MEMS[::3]):
            cases.append(Case(lambda a, op=op, size=size, r=r, m=m: a.bitcount(op, size, r, m), op,
                              (gpr(r, size), mem_text(m, size)), f"{op}{size} r{r}, mem"))
    check(cases)


def test_setcc_all_conditions_and_byte_registers():
    cases = [Case(lambda a, cc=cc, r=r: a.setcc(cc, r), "set" + name, (gpr(r, 8),), f"set{name} r{r}")
             for (cc, name), r in itertools.product(enumerate(CONDITIONS), GPRS)]
    check(cases)


def test_cmov_all_conditions():
    cases = []
    for (cc, name), size in itertools.product(enumerate(CONDITIONS), (32, 64)):
        for d, s in reg_pairs():
            cases.append(Case(lambda a, cc=cc, size=size, d=d, s=s: a.cmov(cc, size, d, s), "cmov" + name,
                              (gpr(d, size), gpr(s, size)), f"cmov{name}{size} r{d}, r{s}"))
        for r, m in with_regs(MEMS[cc::16]):
            cases.append(Case(lambda a, cc=cc, size=size, r=r, m=m: a.cmov(cc, size, r, m), "cmov" + name,
                              (gpr(r, size), mem_text(m, size)), f"cmov{name}{size} r{r}, mem"))
    check(cases)


def test_fixed_encodings():
    table = [(Assembler.cdq, "cdq", ()), (Assembler.cqo, "cqo", ()), (Assembler.ret, "ret", ()),
             (Assembler.repz_ret, "repz ret", ()),
             (Assembler.ud2, "ud2", ()), (Assembler.int3, "int3", ()),
             (Assembler.rdtsc, "rdtsc", ()),
             (Assembler.rep_movsq, "rep movsq", ("qword ptr [rdi]", "qword ptr [rsi]")),
             (Assembler.rep_stosq, "rep stosq", ("qword ptr [rdi]", "rax")),
             (Assembler.rep_movsb, "rep movsb", ("byte ptr [rdi]", "byte ptr [rsi]")),
             (Assembler.rep_stosb, "rep stosb", ("byte ptr [rdi]", "al")),
             (Assembler.syscall, "syscall", ())]
    check([Case(method, mnemonic, ops, mnemonic) for method, mnemonic, ops in table])


# ---- control flow --------------------------------------------------------------------------

def branch_target_problem(emit_branch, mnemonic: str, padding_before: int, padding_after: int,
                          backward: bool, operand: int = 0) -> str | None:
    """Emit a branch (or a rip-relative lea) to a label `padding` bytes away and check the
    decoded target: capstone's operand `operand`, an address or `[rip + disp]`."""
    asm = Assembler()
    label = Label()
    if backward:
        asm.bind(label)
        asm.buf += b"\x90" * padding_before
        at = asm.pos
        emit_branch(asm, label)
        end = asm.pos
    else:
        asm.buf += b"\x90" * padding_before
        at = asm.pos
        emit_branch(asm, label)
        end = asm.pos
        asm.buf += b"\x90" * padding_after
        asm.bind(label)
    code = bytes(asm.buf[at:end])
    decoded = list(DISASM.disasm(code, at))
    desc = f"{mnemonic} {'back' if backward else 'forward'} {padding_before}/{padding_after}: {code.hex()}"
    if len(decoded) != 1 or decoded[0].size != len(code):
        return f"{desc} does not decode as one instruction"
    insn = decoded[0]
    target = re.sub(r"^\w+ ptr ", "", insn.op_str.split(", ")[operand])
    relative = re.fullmatch(r"\[rip(?: ([+-]) (\w+))?\]", target)
    if relative:  # rip is the end of the instruction
        sign, disp = relative.groups()
        target = end + (int(disp, 0) * (1 if sign == "+" else -1) if disp else 0)
    else:
        target = int(target, 0)
    if insn.mnemonic != mnemonic or target != label.pos:
        return f"{desc} is `{insn.mnemonic} {insn.op_str}`, expected `{mnemonic} {label.pos:#x}`"
    return None


def test_jumps_and_calls_reach_their_labels():
    branches = [(lambda a, lab: a.jmp(lab), "jmp"), (lambda a, lab: a.call_label(lab), "call"),
                (lambda a, lab: a.jmp_near(lab), "jmp")]
    branches += [(lambda a, lab, cc=cc: a.jcc(cc, lab), "j" + name) for cc, name in enumerate(CONDITIONS)]
    # Backward distances straddle the rel8 limit; forward branches are always rel32.
    distances = [0, 1, 125, 126, 127, 128, 129, 1000, 70000]
    problems = []
    for emit, mnemonic in branches:
        for d in distances:
            for backward in (True, False):
                problem = branch_target_problem(emit, mnemonic, d, d, backward)
                if problem:
                    problems.append(problem)
    assert not problems, "\n".join(problems[:15])


def test_short_backward_branches_use_rel8():
    for cc in range(16):
        asm = Assembler()
        label = Label()
        asm.bind(label)
        asm.jcc(cc, label)
        asm.jmp(label)
        assert len(asm.buf) == 4


def test_jmp_near_is_rel32_at_any_distance():
    asm = Assembler()
    label = Label()
    asm.bind(label)
    asm.jmp_near(label)
    assert bytes(asm.buf) == b"\xe9\xfb\xff\xff\xff"


def test_rip_relative_lea_reaches_its_label():
    problems = []
    for reg, backward, padding in itertools.product(GPRS, (False, True), (0, 200)):
        problem = branch_target_problem(lambda a, label, reg=reg: a.lea_rip(reg, label), "lea",
                                        padding, padding, backward, operand=1)
        if problem:
            problems.append(f"r{reg}: {problem}")
    assert not problems, "\n".join(problems[:10])


def test_rip_relative_operands_reach_their_label():
    """Float constants are read from a pool after the code: every form that takes one."""
    forms = [(lambda a, x, m: a.movs(64, x, m), "movsd"), (lambda a, x, m: a.movs(32, x, m), "movss"),
             (lambda a, x, m: a.farith("mul", 64, x, m), "mulsd"),
             (lambda a, x, m: a.farith("sub", 32, x, m), "subss"),
             (lambda a, x, m: a.farith("sqrt", 64, x, m), "sqrtsd"),
             (lambda a, x, m: a.ucomis(64, x, m), "ucomisd"),
             (lambda a, x, m: a.ucomis(32, x, m), "ucomiss"),
             (lambda a, x, m: a.movups(x, m), "movups")]
    problems = []
    for (emit, mnemonic), xmm_reg, backward in itertools.product(forms, (0, 7, 8, 15), (False, True)):
        problem = branch_target_problem(
            lambda a, label, emit=emit, x=xmm_reg: emit(a, x, Rip(label)), mnemonic, 40, 300,
            backward, operand=1)
        if problem:
            problems.append(f"xmm{xmm_reg}: {problem}")
    assert not problems, "\n".join(problems[:10])
    with pytest.raises(ValueError):
        Assembler().rounds(64, 0, Rip(Label()), 1)


def test_constant_data_is_aligned():
    a = Assembler()
    a.ret()
    a.align(8)
    a.data64(-2)
    assert bytes(a.buf) == bytes.fromhex("c3cccccccccccccc") + b"\xfe" + b"\xff" * 7


def test_patchable_forms_take_any_32_bit_value():
    cases = []
    for reg, base, value in itertools.product(GPRS, GPRS, (0, 8, -8, -2**31, 2**31 - 1)):
        def emit(a, reg=reg, base=base, value=value):
            a.patch_i32(a.lea_patchable(reg, base), value)
        cases.append(Case(emit, "lea", (gpr(reg), mem_text(Mem(base, value), None)), f"lea r{reg}, r{base}"))
    for op, reg, value in itertools.product(("add", "sub", "cmp"), GPRS, (0, 1, 4096, -1, 2**31 - 1)):
        def emit(a, op=op, reg=reg, value=value):
            a.patch_i32(a.alu_imm_patchable(op, 64, reg), value)
        cases.append(Case(emit, op, (gpr(reg), Imm(value, 64)), f"{op} r{reg}, imm32"))
    for base, value in itertools.product(GPRS, (0, 5, 2**31 - 1)):  # call_indirect's type check
        def emit(a, base=base, value=value):
            a.patch_i32(a.alu_imm_patchable("cmp", 64, Mem(base, 16)), value)
        cases.append(Case(emit, "cmp", (mem_text(Mem(base, 16), 64), Imm(value, 64)), f"cmp [r{base}+16], imm32"))
    check(cases)


def test_push_from_memory():
    check([Case(lambda a, m=m: a.push_mem(m), "push", (mem_text(m, 64),), "push mem") for m in MEMS])


def test_negated_conditions():
    assert [negate(cc) for cc in (E, NE, B, AE, L, GE)] == [NE, E, AE, B, GE, L]


def test_indirect_call_and_jump():
    cases = []
    for method, name in ((Assembler.call_indirect, "call"), (Assembler.jmp_indirect, "jmp")):
        for r in GPRS:
            cases.append(Case(lambda a, f=method, r=r: f(a, r), name, (gpr(r),), f"{name} r{r}"))
        for m in MEMS:
            cases.append(Case(lambda a, f=method, m=m: f(a, m), name, (mem_text(m, 64),), f"{name} mem"))
    check(cases)


# ---- SSE -----------------------------------------------------------------------------------

def xmm_pairs():
    return list(itertools.product(XMMS, XMMS))


def test_movss_movsd_movaps_movups_punpcklqdq():
    cases = []
    for size in (32, 64):
        name = "movss" if size == 32 else "movsd"
        for d, s in xmm_pairs():
            cases.append(Case(lambda a, size=size, d=d, s=s: a.movs(size, d, s), name,
                              (xmm(d), xmm(s)), f"{name} xmm{d}, xmm{s}"))
        for r, m in with_regs(MEMS, XMMS):
            cases.append(Case(lambda a, size=size, r=r, m=m: a.movs(size, r, m), name,
                              (xmm(r), mem_text(m, size)), f"{name} xmm{r}, mem"))
            cases.append(Case(lambda a, size=size, r=r, m=m: a.movs(size, m, r), name,
                              (mem_text(m, size), xmm(r)), f"{name} mem, xmm{r}"))
    for d, s in xmm_pairs():
        cases.append(Case(lambda a, d=d, s=s: a.movaps(d, s), "movaps", (xmm(d), xmm(s)), f"movaps {d}, {s}"))
        cases.append(Case(lambda a, d=d, s=s: a.punpcklqdq(d, s), "punpcklqdq", (xmm(d), xmm(s)),
                          f"punpcklqdq {d}, {s}"))
    for r, m in with_regs(MEMS, XMMS):
        cases.append(Case(lambda a, r=r, m=m: a.movups(r, m), "movups", (xmm(r), mem_text(m, 128)),
                          f"movups xmm{r}, mem"))
        cases.append(Case(lambda a, r=r, m=m: a.movups(m, r), "movups", (mem_text(m, 128), xmm(r)),
                          f"movups mem, xmm{r}"))
    check(cases)


def test_movd_movq_between_gpr_and_xmm():
    cases = []
    for size in (32, 64):
        name = "movd" if size == 32 else "movq"
        for x, r in itertools.product(XMMS, GPRS):
            cases.append(Case(lambda a, size=size, x=x, r=r: a.movq_to_xmm(size, x, r), name,
                              (xmm(x), gpr(r, size)), f"{name} xmm{x}, r{r}"))
            cases.append(Case(lambda a, size=size, x=x, r=r: a.movq_from_xmm(size, r, x), name,
                              (gpr(r, size), xmm(x)), f"{name} r{r}, xmm{x}"))
        for x, m in with_regs(MEMS, XMMS):
            cases.append(Case(lambda a, size=size, x=x, m=m: a.movq_to_xmm(size, x, m), name,
                              (xmm(x), mem_text(m, size)), f"{name} xmm{x}, mem"))
            cases.append(Case(lambda a, size=size, x=x, m=m: a.movq_from_xmm(size, m, x), name,
                              (mem_text(m, size), xmm(x)), f"{name} mem, xmm{x}"))
    check(cases)


def test_scalar_float_arithmetic_and_compare():
    cases = []
    ops = ["add", "mul", "sub", "min", "div", "max", "sqrt"]
    for op, size in itertools.product(ops, (32, 64)):
        name = f"{op}s{'s' if size == 32 else 'd'}"
        for d, s in xmm_pairs():
            cases.append(Case(lambda a, op=op, size=size, d=d, s=s: a.farith(op, size, d, s), name,
                              (xmm(d), xmm(s)), f"{name} {d}, {s}"))
        for x, m in with_regs(MEMS[::3], XMMS):
            cases.append(Case(lambda a, op=op, size=size, x=x, m=m: a.farith(op, size, x, m), name,
                              (xmm(x), mem_text(m, size)), f"{name} xmm{x}, mem"))
    for size in (32, 64):
        name = "ucomiss" if size == 32 else "ucomisd"
        for d, s in xmm_pairs():
            cases.append(Case(lambda a, size=size, d=d, s=s: a.ucomis(size, d, s), name,
                              (xmm(d), xmm(s)), f"{name} {d}, {s}"))
        for x, m in with_regs(MEMS, XMMS):
            cases.append(Case(lambda a, size=size, x=x, m=m: a.ucomis(size, x, m), name,
                              (xmm(x), mem_text(m, size)), f"{name} xmm{x}, mem"))
    check(cases)


def test_packed_logic():
    cases = []
    for op, size in itertools.product(["and", "andn", "or", "xor"], (32, 64)):
        name = f"{op}p{'s' if size == 32 else 'd'}"
        for d, s in xmm_pairs():
            cases.append(Case(lambda a, op=op, size=size, d=d, s=s: a.flogic(op, size, d, s), name,
                              (xmm(d), xmm(s)), f"{name} {d}, {s}"))
        for x, m in with_regs(MEMS[::3], XMMS):
            cases.append(Case(lambda a, op=op, size=size, x=x, m=m: a.flogic(op, size, x, m), name,
                              (xmm(x), mem_text(m, 128)), f"{name} xmm{x}, mem"))
    check(cases)


def test_conversions_and_rounding():
    cases = []
    for fsize, isize in itertools.product((32, 64), (32, 64)):
        f = "ss" if fsize == 32 else "sd"
        to_float, to_int = f"cvtsi2{f}", f"cvtt{f}2si"
        for x, r in itertools.product(XMMS, GPRS):
            cases.append(Case(lambda a, fs=fsize, i=isize, x=x, r=r: a.cvtsi2f(fs, i, x, r), to_float,
                              (xmm(x), gpr(r, isize)), f"{to_float} xmm{x}, r{r}/{isize}"))
            cases.append(Case(lambda a, fs=fsize, i=isize, x=x, r=r: a.cvttf2si(fs, i, r, x), to_int,
                              (gpr(r, isize), xmm(x)), f"{to_int} r{r}/{isize}, xmm{x}"))
        for x, m in with_regs(MEMS[::3], XMMS):
            cases.append(Case(lambda a, fs=fsize, i=isize, x=x, m=m: a.cvtsi2f(fs, i, x, m), to_float,
                              (xmm(x), mem_text(m, isize)), f"{to_float} xmm{x}, mem/{isize}"))
            cases.append(Case(lambda a, fs=fsize, i=isize, r=x, m=m: a.cvttf2si(fs, i, r, m), to_int,
                              (gpr(x, isize), mem_text(m, fsize)), f"{to_int} r{x}/{isize}, mem"))
    for src_size in (32, 64):
        name = "cvtss2sd" if src_size == 32 else "cvtsd2ss"
        for d, s in xmm_pairs():
            cases.append(Case(lambda a, ss=src_size, d=d, s=s: a.cvtf2f(ss, d, s), name,
                              (xmm(d), xmm(s)), f"{name} {d}, {s}"))
        for x, m in with_regs(MEMS[::3], XMMS):
            cases.append(Case(lambda a, ss=src_size, x=x, m=m: a.cvtf2f(ss, x, m), name,
                              (xmm(x), mem_text(m, src_size)), f"{name} xmm{x}, mem"))
    for size, mode in itertools.product((32, 64), range(4)):
        name = "roundss" if size == 32 else "roundsd"
        for d, s in xmm_pairs():
            cases.append(Case(lambda a, size=size, d=d, s=s, mode=mode: a.rounds(size, d, s, mode), name,
                              (xmm(d), xmm(s), Imm(mode | 8, 8)), f"{name} {d}, {s}, {mode}"))
        for x, m in with_regs(MEMS[mode::4], XMMS):
            cases.append(Case(lambda a, size=size, x=x, m=m, mode=mode: a.rounds(size, x, m, mode), name,
                              (xmm(x), mem_text(m, size), Imm(mode | 8, 8)), f"{name} xmm{x}, mem, {mode}"))
    check(cases)


def test_memory_quirk_bases_are_covered():
    """The table must exercise the bases whose encodings are special."""
    bases_with_zero_disp = {m.base for m in MEMS if m.disp == 0 and m.index is None}
    assert {RSP, RBP, R12, R13} <= bases_with_zero_disp
    assert {m.index for m in MEMS if m.index is not None} == set(GPRS) - {RSP}


def test_compiler_and_stubs_emit_only_through_the_encoder():
    """Every instruction goes through a form above, which capstone checks: no byte literals
    and no writes to the code buffer in the compiler and the stubs outside x86.py."""
    compiler = Path(__file__).resolve().parent.parent / "engine" / "compiler"
    emitting = re.compile(r"""\bb["']|bytes\(\(|\.buf\s*(\+=|\.append|\[[^]]*\]\s*=)|\.(raw|_emit|_rel32)\(""")
    found = [f"{path.name}:{n}: {line.strip()}"
             for path in sorted(compiler.glob("*.py")) if path.name != "x86.py"
             for n, line in enumerate(path.read_text().splitlines(), 1) if emitting.search(line)]
    assert not found, "\n".join(found)
