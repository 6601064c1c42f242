"""The opcode table: which FunctionCompiler method compiles each one-byte opcode."""

from __future__ import annotations

from .x86 import AE, BE, GE, LE, NE, A, B, E, G
from .x86 import L as LT


# Opcodes whose compilation keeps locals cached in registers valid (valuestack.py): they
# take registers only through alloc and claim, or (loop, else, end: the joins) drop the
# cache themselves where they must. Every other one drops the cache first.
KEEPS_CACHED_LOCALS = frozenset([0x01, 0x02, 0x03, 0x04, 0x05, 0x0B, 0x0C, 0x0D, 0x1A, 0x1B, 0x1C,
                                 *range(0x20, 0x25), *range(0x28, 0x40), *range(0x41, 0xC5)])


def dropping_cached_locals(handler):
    def compile_instruction(self):
        if self.cached:
            self.clear_cache()
        handler(self)
    return compile_instruction


def build_handlers(F) -> list:
    """The method of FunctionCompiler class `F` for each opcode byte."""
    h = [F.op_unsupported] * 256
    h[0x00] = F.op_unreachable
    h[0x01] = F.op_nop
    h[0x02] = F.op_block
    h[0x03] = F.op_loop
    h[0x04] = F.op_if
    h[0x05] = F.op_else
    h[0x0B] = F.op_end
    h[0x0C] = F.op_br
    h[0x0D] = F.op_br_if
    h[0x0E] = F.op_br_table
    h[0x0F] = F.op_return
    h[0x10] = F.op_call
    h[0x11] = F.op_call_indirect
    h[0x12] = F.op_return_call
    h[0x13] = F.op_return_call_indirect
    h[0x14] = F.op_call_ref
    h[0x15] = F.op_return_call_ref
    h[0x1A] = F.op_drop
    h[0x1B] = F.op_select
    h[0x1C] = F.op_select_t
    h[0x20] = F.op_local_get
    h[0x21] = F.op_local_set
    h[0x22] = F.op_local_tee
    h[0x23] = F.op_global_get
    h[0x24] = F.op_global_set
    h[0x25] = F.op_table_get
    h[0x26] = F.op_table_set
    loads = {0x28: ("i32", 32, False), 0x29: ("i64", 64, False), 0x2A: ("f32", 32, False),
             0x2B: ("f64", 64, False), 0x2C: ("i32", 8, True), 0x2D: ("i32", 8, False),
             0x2E: ("i32", 16, True), 0x2F: ("i32", 16, False), 0x30: ("i64", 8, True),
             0x31: ("i64", 8, False), 0x32: ("i64", 16, True), 0x33: ("i64", 16, False),
             0x34: ("i64", 32, True), 0x35: ("i64", 32, False)}
    for op, (ty, size, signed) in loads.items():
        h[op] = lambda self, ty=ty, size=size, signed=signed: self.load_op(ty, size, signed)
    stores = {0x36: ("i32", 32), 0x37: ("i64", 64), 0x38: ("f32", 32), 0x39: ("f64", 64),
              0x3A: ("i32", 8), 0x3B: ("i32", 16), 0x3C: ("i64", 8), 0x3D: ("i64", 16),
              0x3E: ("i64", 32)}
    for op, (ty, size) in stores.items():
        h[op] = lambda self, ty=ty, size=size: self.store_op(ty, size)
    h[0x3F] = F.op_memory_size
    h[0x40] = F.op_memory_grow
    h[0x41] = F.op_i32_const
    h[0x42] = F.op_i64_const
    h[0x43] = F.op_f32_const
    h[0x44] = F.op_f64_const
    int_cc = [E, NE, LT, B, G, A, LE, BE, GE, AE]
    for base, ty in ((0x45, "i32"), (0x50, "i64")):
        h[base] = lambda self, ty=ty: self.int_eqz(ty)
        for k, cc in enumerate(int_cc):
            h[base + 1 + k] = lambda self, cc=cc, ty=ty: self.int_compare(cc, ty)
    for base, ty in ((0x5B, "f32"), (0x61, "f64")):
        for k, op in enumerate(("eq", "ne", "lt", "gt", "le", "ge")):
            h[base + k] = lambda self, op=op, ty=ty: self.float_compare(op, ty)
    for base, ty in ((0x67, "i32"), (0x79, "i64")):
        h[base] = lambda self, ty=ty: self.int_bitcount("lzcnt", ty)
        h[base + 1] = lambda self, ty=ty: self.int_bitcount("tzcnt", ty)
        h[base + 2] = lambda self, ty=ty: self.int_bitcount("popcnt", ty)
        h[base + 3] = lambda self, ty=ty: self.int_binop("add", ty)
        h[base + 4] = lambda self, ty=ty: self.int_binop("sub", ty)
        h[base + 5] = lambda self, ty=ty: self.int_mul(ty)
        h[base + 6] = lambda self, ty=ty: self.int_divrem(ty, True, False)
        h[base + 7] = lambda self, ty=ty: self.int_divrem(ty, False, False)
        h[base + 8] = lambda self, ty=ty: self.int_divrem(ty, True, True)
        h[base + 9] = lambda self, ty=ty: self.int_divrem(ty, False, True)
        h[base + 10] = lambda self, ty=ty: self.int_binop("and", ty)
        h[base + 11] = lambda self, ty=ty: self.int_binop("or", ty)
        h[base + 12] = lambda self, ty=ty: self.int_binop("xor", ty)
        h[base + 13] = lambda self, ty=ty: self.int_shift("shl", ty)
        h[base + 14] = lambda self, ty=ty: self.int_shift("sar", ty)
        h[base + 15] = lambda self, ty=ty: self.int_shift("shr", ty)
        h[base + 16] = lambda self, ty=ty: self.int_shift("rol", ty)
        h[base + 17] = lambda self, ty=ty: self.int_shift("ror", ty)
    for base, ty in ((0x8B, "f32"), (0x99, "f64")):
        for k, op in enumerate(("abs", "neg", "ceil", "floor", "trunc", "nearest", "sqrt")):
            h[base + k] = lambda self, op=op, ty=ty: self.float_unop(op, ty)
        for k, op in enumerate(("add", "sub", "mul", "div")):
            h[base + 7 + k] = lambda self, op=op, ty=ty: self.float_binop(op, ty)
        h[base + 11] = lambda self, ty=ty: self.float_minmax(True, ty)
        h[base + 12] = lambda self, ty=ty: self.float_minmax(False, ty)
        h[base + 13] = lambda self, ty=ty: self.float_copysign(ty)
    h[0xA7] = lambda self: self.in_place("i32", "mov", 32)
    for op, (ity, fty, signed) in {0xA8: ("i32", "f32", True), 0xA9: ("i32", "f32", False),
                                   0xAA: ("i32", "f64", True), 0xAB: ("i32", "f64", False),
                                   0xAE: ("i64", "f32", True), 0xAF: ("i64", "f32", False),
                                   0xB0: ("i64", "f64", True), 0xB1: ("i64", "f64", False)}.items():
        h[op] = lambda self, ity=ity, fty=fty, signed=signed: self.trunc(ity, fty, signed, False)
    h[0xAC] = lambda self: self.in_place("i64", "movsx", 64, 32)
    h[0xAD] = F.op_i64_extend_i32_u
    for op, (fty, ity, signed) in {0xB2: ("f32", "i32", True), 0xB3: ("f32", "i32", False),
                                   0xB4: ("f32", "i64", True), 0xB5: ("f32", "i64", False),
                                   0xB7: ("f64", "i32", True), 0xB8: ("f64", "i32", False),
                                   0xB9: ("f64", "i64", True), 0xBA: ("f64", "i64", False)}.items():
        h[op] = lambda self, fty=fty, ity=ity, signed=signed: self.convert(fty, ity, signed)
    h[0xB6] = lambda self: self.in_place("f32", "cvtf2f", 64)
    h[0xBB] = lambda self: self.in_place("f64", "cvtf2f", 32)
    h[0xBC] = lambda self: self.reinterpret("i32")
    h[0xBD] = lambda self: self.reinterpret("i64")
    h[0xBE] = lambda self: self.reinterpret("f32")
    h[0xBF] = lambda self: self.reinterpret("f64")
    for op, (ty, bits) in {0xC0: ("i32", 8), 0xC1: ("i32", 16), 0xC2: ("i64", 8),
                           0xC3: ("i64", 16), 0xC4: ("i64", 32)}.items():
        h[op] = lambda self, ty=ty, bits=bits: self.in_place(ty, "movsx", 64 if ty == "i64" else 32, bits)
    h[0xD0] = F.op_ref_null
    h[0xD1] = F.op_ref_is_null
    h[0xD2] = F.op_ref_func
    h[0xD4] = F.op_ref_as_non_null
    h[0xD5] = F.op_br_on_null
    h[0xD6] = F.op_br_on_non_null
    h[0xE0] = F.op_cont_new
    h[0xE1] = F.op_cont_bind
    h[0xE2] = F.op_suspend
    h[0xE3] = F.op_resume
    h[0xE4] = F.op_resume_throw
    h[0xE5] = F.op_resume_throw_ref
    h[0xE6] = F.op_switch
    h[0x08] = F.op_throw
    h[0x0A] = F.op_throw_ref
    h[0x1F] = F.op_try_table
    h[0xFC] = F.op_prefix_fc
    return [handler if handler is None or op in KEEPS_CACHED_LOCALS else dropping_cached_locals(handler)
            for op, handler in enumerate(h)]

