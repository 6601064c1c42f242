"""Numeric instructions for the single-pass compiler: constants, integer and float
arithmetic, comparisons and conversions, with Wasm's exact semantics (IEEE min/max,
NaN propagation, trapping and saturating truncation)."""

from __future__ import annotations

from .. import layout as L
from .common import (CONST, FLOATS, LOCAL, REG, SCRATCH, XSCRATCH, CodegenCore, Entry, f32_bits, f64_bits,
                     is_float, width)
from .x86 import AE, BE, NE, NP, RAX, RCX, RDX, A, B, E, Label, Mem, P, S, negate


class NumericCodegen(CodegenCore):
    """FunctionCompiler's numeric instructions (a mixin: see codegen.FunctionCompiler)."""

    # ---- constants -------------------------------------------------------------------

    def op_i32_const(self):
        self.stack.append((CONST, self.sleb() & 0xFFFFFFFF, "i32"))

    def op_i64_const(self):
        self.push(CONST, self.sleb(), "i64")

    def op_f32_const(self):
        self.push(CONST, self.f32_bits(), "f32")

    def op_f64_const(self):
        self.push(CONST, self.f64_bits(), "f64")

    # ---- integer operations ----------------------------------------------------------

    def binop_dst(self, ty: str):
        """Pop b and a; return (dst register holding a, operand for b, entry b)."""
        stack = self.stack
        b = stack.pop()
        a_entry = stack.pop()
        if a_entry[0] == REG:
            dst = a_entry[1]
        else:
            dst = self.alloc(ty in FLOATS)
            self.load(a_entry, dst)
        return dst, b

    def binop_into_pin(self):
        """binop_dst's pair with dst the pin of the local the result is set to, when b does
        not read that pin (a may: it is loaded first); None otherwise."""
        following = self.code[self.pos]
        if following != 0x21 and following != 0x22:  # most often: no local.set/tee follows
            return None
        b, a_entry = self.stack.pop(), self.stack.pop()
        pin = self.result_pin()
        if pin is None or (self.register_of(b) == pin and a_entry != b):
            self.stack += (a_entry, b)
            return None
        self.load(a_entry, pin)
        self.release(a_entry)
        return pin, b

    @staticmethod
    def imm32(entry: Entry, size: int) -> int | None:
        """A constant entry's value as a sign-extended 32-bit immediate, if it fits."""
        if entry[0] != CONST:
            return None
        value = entry[1]
        if size == 32:
            return value - (1 << 32) if value >= 1 << 31 else value
        return value if -(1 << 31) <= value < (1 << 31) else None

    def int_binop(self, op: str, ty: str):
        size = width(ty)
        if op in ("add", "sub") and self.add_by_lea(op, size, ty):
            return
        dst, b = self.binop_into_pin() or self.binop_dst(ty)
        imm = self.imm32(b, size) if b[0] == CONST else None
        if imm is not None:
            self.asm.alu_imm(op, size, dst, imm)
        else:
            self.asm.alu(op, size, dst, self.operand(b))
            if b[0] == REG:
                self.free_gpr.append(b[1])
        self.stack.append((REG, dst, ty))

    def add_by_lea(self, op: str, size: int, ty: str) -> bool:
        """a + b (or a - constant) into a new register in one lea, when a is a local already
        in a register (pinned or cached): a mov and an add otherwise."""
        b = self.stack[-1]
        a_entry = self.stack[-2]
        base = self.local_register(a_entry[1]) if a_entry[0] == LOCAL else None
        if base is None:
            return False
        imm = self.imm32(b, size)
        if op == "sub":
            if imm is None or imm == -(1 << 31):
                return False
            imm = -imm
        index = None if imm is not None else self.register_of(b)
        if imm is None and index is None:
            return False
        self.stack[-2:] = []
        dst = self.result_pin() or self.alloc(False)
        self.asm.lea(dst, Mem(base, imm or 0, index), size)
        self.release(b)
        self.push_reg(dst, ty)
        return True

    def int_mul(self, ty: str):
        size = width(ty)
        dst, b = self.binop_into_pin() or self.binop_dst(ty)
        imm = self.imm32(b, size)
        if imm is not None:
            self.asm.imul_imm(size, dst, dst, imm)
        else:
            self.asm.imul(size, dst, self.operand(b))
            self.release(b)
        self.push_reg(dst, ty)

    def int_compare(self, cc: int, ty: str):
        """cmp with the left value where it is (a register, a local's pin or cached copy, or
        a frame slot when the right one is an immediate or in a register), copied only if it
        must be."""
        size = width(ty)
        b = self.pop()
        a_entry = self.pop()
        imm = self.imm32(b, size)
        lhs = self.register_of(a_entry)
        if lhs is None and a_entry[0] != CONST and (imm is not None or self.register_of(b) is not None):
            lhs = self.operand(a_entry)  # a frame slot
        temp = None
        if lhs is None:
            lhs = temp = self.alloc(False, avoid=(b[1],) if b[0] == REG else ())
            self.load(a_entry, temp)
        if imm is not None:
            self.asm.alu_imm("cmp", size, lhs, imm)
        elif isinstance(lhs, int):
            self.asm.alu("cmp", size, lhs, self.operand(b))
        else:
            self.asm.alu("cmp", size, lhs, self.register_of(b))
        self.release(b)
        self.release(a_entry)
        if temp is not None:
            self.free(temp, False)
        self.flags_result(cc)

    def flags_result(self, cc: int):
        """Turn the flags into an i32 0/1, or fuse with a following br_if / if."""
        nxt = self.code[self.pos]
        if nxt == 0x0D:  # br_if
            self.fuse_next()
            self.branch_if(negate(cc), self.u32())
            return
        if nxt == 0x04:  # if
            self.fuse_next()
            params, results = self.block_signature()
            # The flags must survive the spills, which only use mov.
            frame = self.enter_block("if", params, results)
            frame.else_label = Label()
            self.asm.jcc(negate(cc), frame.else_label)
            return
        if (nxt == 0x1B or nxt == 0x1C) and not is_float(self.stack[-1][2]):  # select on the flags
            self.fuse_next()
            if nxt == 0x1C:
                self.valtypes()
            self.select_on_flags(cc)
            return
        reg = self.alloc(False)
        self.asm.setcc(cc, reg)
        self.asm.movzx(32, 8, reg, reg)
        self.push_reg(reg, "i32")

    def fuse_next(self):
        """Compile the next instruction as part of this one: it starts here."""
        self.op_offset = self.pos
        self.addr_map.extend((self.asm.pos, self.pos))
        self.pos += 1

    def int_eqz(self, ty: str):
        self.test_entry(self.pop(), width(ty))
        self.flags_result(E)

    def int_bitcount(self, op: str, ty: str):
        entry = self.pop()
        dst = entry[1] if entry[0] == REG else self.alloc(False)
        src = self.operand(entry)
        self.asm.bitcount(op, width(ty), dst, src)
        self.push_reg(dst, ty)

    def int_divrem(self, ty: str, signed: bool, rem: bool):
        size = width(ty)
        a = self.asm
        divisor = self.stack[-1]
        const_divisor = divisor[1] if divisor[0] == CONST else None
        b = self.pop_reg(avoid=(RAX, RDX))
        self.claim(RAX)
        self.claim(RDX)
        self.load(self.pop_with_release(), RAX)
        done = Label()
        if const_divisor is None or const_divisor == 0:
            a.test(size, b, b)
            a.jcc(E, self.trap_label(L.TRAP_DIV_ZERO))
        if signed:
            minus_one = (1 << size) - 1
            if const_divisor is None or const_divisor & minus_one == minus_one:
                normal = Label()
                a.alu_imm("cmp", size, b, -1)
                a.jcc(NE, normal)
                if rem:
                    a.mov_imm(32, RDX, 0)
                    a.jmp(done)
                else:
                    if size == 32:
                        a.alu_imm("cmp", 32, RAX, -(1 << 31))
                    else:
                        a.mov_imm(64, SCRATCH, 1 << 63)
                        a.alu("cmp", 64, RAX, SCRATCH)
                    a.jcc(E, self.trap_label(L.TRAP_INT_OVERFLOW))
                a.bind(normal)
            if size == 32:
                a.cdq()
            else:
                a.cqo()
            a.unary("idiv", size, b)
        else:
            a.mov_imm(32, RDX, 0)
            a.unary("div", size, b)
        a.bind(done)
        self.free(b, False)
        if rem:
            self.free(RAX, False)
            self.push_reg(RDX, ty)
        else:
            self.free(RDX, False)
            self.push_reg(RAX, ty)

    def pop_with_release(self) -> tuple:
        entry = self.pop()
        self.release(entry)
        return entry

    def int_shift(self, op: str, ty: str):
        size = width(ty)
        count = self.stack[-1]
        if count[0] == CONST:
            self.pop()
            dst = self.pop_reg()
            self.asm.shift_imm(op, size, dst, count[1] & (size - 1))
            self.push_reg(dst, ty)
            return
        self.claim(RCX)
        self.load(self.pop_with_release(), RCX)
        dst = self.pop_reg(avoid=(RCX,))
        self.asm.shift_cl(op, size, dst)
        self.free(RCX, False)
        self.push_reg(dst, ty)

    def op_i64_extend_i32_u(self):
        entry = self.pop()
        if entry[0] == CONST:
            self.push(CONST, entry[1] & 0xFFFFFFFF, "i64")
            return
        self.push(*entry)
        reg = self.pop_reg()
        self.push_reg(reg, "i64")  # i32 registers are kept zero-extended

    def in_place(self, to_ty: str, instruction: str, *sizes: int):
        """A conversion within one register: `instruction(*sizes, reg, reg)` on the top
        value (wrap, sign extension, float demotion and promotion)."""
        reg = self.pop_reg()
        getattr(self.asm, instruction)(*sizes, reg, reg)
        self.push_reg(reg, to_ty)

    # ---- float operations ------------------------------------------------------------

    def float_binop(self, op: str, ty: str):
        dst, b = self.binop_into_pin() or self.binop_dst(ty)
        src = self.operand(b)
        self.asm.farith(op, width(ty), dst, src)
        self.release(b)
        self.push_reg(dst, ty)

    def float_minmax(self, is_min: bool, ty: str):
        size = width(ty)
        dst, b = self.binop_dst(ty)
        if b[0] == REG:
            src = b[1]
        else:
            src = XSCRATCH
            self.load(b, src)
        a = self.asm
        nan, equal, done = Label(), Label(), Label()
        a.ucomis(size, dst, src)
        a.jcc(P, nan)
        a.jcc(E, equal)
        a.farith("min" if is_min else "max", size, dst, src)
        a.jmp(done)
        a.bind(equal)  # equal values may be +0 and -0: combine the sign bits
        a.flogic("or" if is_min else "and", size, dst, src)
        a.jmp(done)
        a.bind(nan)
        a.farith("add", size, dst, src)  # yields a quiet NaN
        a.bind(done)
        self.release(b)
        self.push_reg(dst, ty)

    def float_unop(self, op: str, ty: str):
        size = width(ty)
        entry = self.pop()
        dst = entry[1] if entry[0] == REG else self.result_pin() or self.alloc(True)
        a = self.asm
        if op == "sqrt":
            a.farith("sqrt", size, dst, self.operand(entry))
        elif op in ("ceil", "floor", "trunc", "nearest"):
            mode = {"nearest": 0, "floor": 1, "ceil": 2, "trunc": 3}[op]
            if entry[0] == CONST:  # no rip-relative operand before an immediate
                self.load(entry, dst)
                entry = (REG, dst, ty)
            a.rounds(size, dst, self.operand(entry), mode)
        else:  # abs / neg: bitwise on the sign
            self.load(entry, dst)
            sign = 1 << (size - 1)
            mask = sign - 1 if op == "abs" else sign
            a.mov_imm(64, SCRATCH, mask)
            a.movq_to_xmm(64, XSCRATCH, SCRATCH)
            a.flogic("and" if op == "abs" else "xor", size, dst, XSCRATCH)
        self.push_reg(dst, ty)

    def float_copysign(self, ty: str):
        size = width(ty)
        dst, b = self.binop_dst(ty)
        a = self.asm
        tmp = self.alloc(False)
        a.movq_from_xmm(size, tmp, dst)
        if b[0] == CONST:
            a.mov_imm(64, SCRATCH, b[1])
        else:
            sign = self.operand(b)
            if isinstance(sign, int):  # a register: the value's, or the local's pin or copy
                a.movq_from_xmm(size, SCRATCH, sign)
            else:
                a.mov(size, SCRATCH, sign)
        self.release(b)
        # tmp = (tmp & ~sign) | (scratch & sign), using shifts to avoid 64-bit masks
        a.shift_imm("shl", size, tmp, 1)
        a.shift_imm("shr", size, tmp, 1)
        a.shift_imm("shr", size, SCRATCH, size - 1)
        a.shift_imm("shl", size, SCRATCH, size - 1)
        a.alu("or", size, tmp, SCRATCH)
        a.movq_to_xmm(size, dst, tmp)
        self.free(tmp, False)
        self.push_reg(dst, ty)

    def float_compare(self, op: str, ty: str):
        size = width(ty)
        b = self.pop()
        a_entry = self.pop()
        # ucomis wants its first operand in a register: the right one for lt/le.
        first, second = (b, a_entry) if op in ("lt", "le") else (a_entry, b)
        temp = None
        reg = self.register_of(first)
        if reg is None:
            reg = temp = self.alloc(True)
            self.load(first, temp)
        a = self.asm
        a.ucomis(size, reg, self.operand(second))
        self.release(b)
        self.release(a_entry)
        if temp is not None:
            self.free(temp, True)
        if op in ("lt", "le", "gt", "ge"):
            self.flags_result(A if op in ("lt", "gt") else AE)
            return
        result = self.alloc(False)
        a.setcc(E if op == "eq" else NE, result)
        a.setcc(NP if op == "eq" else P, SCRATCH)
        a.alu("and" if op == "eq" else "or", 32, result, SCRATCH)
        a.movzx(32, 8, result, result)
        self.push_reg(result, "i32")

    # ---- conversions -----------------------------------------------------------------

    def float_operand(self, value: float, fsize: int):
        bits = f32_bits(value) if fsize == 32 else f64_bits(value)
        return self.float_constant(bits, "f32" if fsize == 32 else "f64")

    # Valid truncation ranges: (lower bound, lower bound inclusive, upper bound exclusive)
    _TRUNC_RANGES = {
        (32, True, 32): (-2147483648.0, True, 2147483648.0),
        (32, True, 64): (-2147483649.0, False, 2147483648.0),
        (32, False, 32): (-1.0, False, 4294967296.0),
        (32, False, 64): (-1.0, False, 4294967296.0),
        (64, True, 32): (-9223372036854775808.0, True, 9223372036854775808.0),
        (64, True, 64): (-9223372036854775808.0, True, 9223372036854775808.0),
        (64, False, 32): (-1.0, False, 18446744073709551616.0),
        (64, False, 64): (-1.0, False, 18446744073709551616.0),
    }

    def trunc(self, ity: str, fty: str, signed: bool, saturating: bool):
        isize, fsize = width(ity), width(fty)
        src = self.pop_reg()
        a = self.asm
        dst = self.alloc(False)
        lo, lo_inclusive, hi = self._TRUNC_RANGES[(isize, signed, fsize)]
        done = Label()
        if saturating:
            nan_l, low_l, high_l = Label(), Label(), Label()
        else:
            nan_l = self.trap_label(L.TRAP_BAD_CONVERSION)
            low_l = high_l = self.trap_label(L.TRAP_INT_OVERFLOW)
        a.ucomis(fsize, src, src)
        a.jcc(P, nan_l)
        a.ucomis(fsize, src, self.float_operand(lo, fsize))
        a.jcc(B if lo_inclusive else BE, low_l)
        a.ucomis(fsize, src, self.float_operand(hi, fsize))
        a.jcc(AE, high_l)
        if signed or isize == 32:
            a.cvttf2si(fsize, 64, dst, src)
            if isize == 32:
                a.mov(32, dst, dst)
        else:
            # Unsigned 64-bit: values >= 2^63 are shifted down before converting.
            small = Label()
            two_to_63 = self.float_operand(9223372036854775808.0, fsize)
            a.ucomis(fsize, src, two_to_63)
            a.jcc(B, small)
            a.farith("sub", fsize, src, two_to_63)
            a.cvttf2si(fsize, 64, dst, src)
            a.mov_imm(64, SCRATCH, 1 << 63)
            a.alu("xor", 64, dst, SCRATCH)
            a.jmp(done)
            a.bind(small)
            a.cvttf2si(fsize, 64, dst, src)
        if saturating:
            a.jmp(done)
            a.bind(nan_l)
            a.mov_imm(32, dst, 0)
            a.jmp(done)
            a.bind(low_l)
            a.mov_imm(64, dst, (-(1 << (isize - 1)) & ((1 << isize) - 1)) if signed else 0)
            a.jmp(done)
            a.bind(high_l)
            a.mov_imm(64, dst, ((1 << (isize - 1)) - 1) if signed else (1 << isize) - 1)
        a.bind(done)
        self.free(src, True)
        self.push_reg(dst, ity)

    def convert(self, fty: str, ity: str, signed: bool):
        fsize = width(fty)
        src = self.pop_reg()
        a = self.asm
        dst = self.alloc(True)
        a.flogic("xor", 32, dst, dst)
        if ity == "i32":
            if signed:
                a.cvtsi2f(fsize, 32, dst, src)
            else:
                a.cvtsi2f(fsize, 64, dst, src)  # zero-extended in the register
        elif signed:
            a.cvtsi2f(fsize, 64, dst, src)
        else:
            big, done = Label(), Label()
            a.test(64, src, src)
            a.jcc(S, big)
            a.cvtsi2f(fsize, 64, dst, src)
            a.jmp(done)
            a.bind(big)  # halve with round-to-odd, convert, double
            a.mov(64, SCRATCH, src)
            a.shift_imm("shr", 64, SCRATCH, 1)
            a.alu_imm("and", 32, src, 1)
            a.alu("or", 64, SCRATCH, src)
            a.cvtsi2f(fsize, 64, dst, SCRATCH)
            a.farith("add", fsize, dst, dst)
            a.bind(done)
        self.free(src, False)
        self.push_reg(dst, fty)

    def reinterpret(self, to_ty: str):
        kind, val, ty = self.pop()
        if kind == CONST:
            self.push(CONST, val, to_ty)
            return
        # The register holding the bits: the value's own, or the one a loop keeps the local in.
        source = self.register_of((kind, val, ty))
        reg = self.alloc(is_float(to_ty))
        if source is None:  # in memory: reload the same bits through the other register class
            self.load((kind, val, to_ty), reg)
        elif is_float(to_ty):
            self.asm.movq_to_xmm(width(to_ty), reg, source)
        else:
            self.asm.movq_from_xmm(width(to_ty), reg, source)
        if kind == REG:
            self.free(val, is_float(ty))
        self.push_reg(reg, to_ty)

