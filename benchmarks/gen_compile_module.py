"""Generate a large, realistic WAT module for the compile-throughput benchmark.

The module is generated (seeded, so every run measures the same input) rather than
committed as a binary. Its functions mix the shapes real compiled code has: counted loops
over linear memory, integer expression trees, branches and br_table dispatch, f64 loops
with conversions, and calls to earlier functions. Usage:

    python benchmarks/gen_compile_module.py OUT.wat [--functions N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import sys

I32_BINOPS = ["add", "sub", "mul", "and", "or", "xor", "shl", "shr_u", "shr_s", "rotl"]
I32_CMPS = ["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "ge_u"]
F64_BINOPS = ["add", "sub", "mul", "min", "max"]

# Every function has one of these signatures, so calls can target any earlier function.
SIGNATURES = {
    "ii": "(param $a i32) (param $b i32) (result i32)",
    "ff": "(param $a f64) (param $b f64) (result f64)",
}


class Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.funcs: list[tuple[str, str]] = []  # (name, signature key)

    def const(self) -> str:
        return f"(i32.const {self.rng.randint(-5000, 5000)})"

    def address(self, expr: str) -> str:
        """Keep a computed address inside the one-page memory, 4-byte aligned."""
        return f"(i32.and {expr} (i32.const 0x7ffc))"

    def i32_expr(self, depth: int, leaves: list[str]) -> str:
        """A random integer expression tree over the given leaves."""
        r = self.rng.random()
        if depth == 0 or r < 0.15:
            return self.rng.choice(leaves + [self.const()])
        if r < 0.25:
            offset = self.rng.randrange(0, 0x8000, 4)
            return f"(i32.load offset={offset} {self.address(self.i32_expr(depth - 1, leaves))})"
        if r < 0.35:
            cmp = self.rng.choice(I32_CMPS)
            return (f"(select {self.i32_expr(depth - 1, leaves)} {self.i32_expr(depth - 1, leaves)}"
                    f" (i32.{cmp} {self.rng.choice(leaves)} {self.const()}))")
        if r < 0.42:
            divisor = f"(i32.or {self.i32_expr(depth - 1, leaves)} (i32.const 1))"
            return f"(i32.rem_u {self.i32_expr(depth - 1, leaves)} {divisor})"
        op = self.rng.choice(I32_BINOPS)
        return f"(i32.{op} {self.i32_expr(depth - 1, leaves)} {self.i32_expr(depth - 1, leaves)})"

    def callee(self, key: str) -> str | None:
        candidates = [name for name, k in self.funcs[-60:] if k == key]
        return self.rng.choice(candidates) if candidates else None

    # -- function shapes ------------------------------------------------------------------

    def memory_loop(self) -> str:
        """A counted loop reading, mixing and writing back an array in memory."""
        leaves = ["(local.get $a)", "(local.get $b)", "(local.get $i)", "(local.get $acc)"]
        stride = self.rng.choice([4, 8, 12, 16])
        body = self.i32_expr(3, leaves + ["(local.get $v)"])
        return f"""
    (local $i i32) (local $acc i32) (local $v i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.and (local.get $b) (i32.const 255))))
        (local.set $v (i32.load {self.address(f"(i32.add (local.get $a) (i32.mul (local.get $i) (i32.const {stride})))")}))
        (local.set $acc (i32.add (local.get $acc) {body}))
        (i32.store offset={self.rng.randrange(0, 0x4000, 4)} {self.address("(local.get $v)")} (local.get $acc))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $acc)"""

    def branchy(self) -> str:
        """Expression trees under if/else and a br_table dispatch."""
        leaves = ["(local.get $a)", "(local.get $b)", "(local.get $t)"]
        cases = self.rng.randint(3, 6)
        labels = [f"$c{k}" for k in range(cases)]
        text = f"""
    (local $t i32)
    (local.set $t {self.i32_expr(3, ["(local.get $a)", "(local.get $b)"])})
    (if (i32.{self.rng.choice(I32_CMPS)} (local.get $t) {self.const()})
      (then (local.set $t {self.i32_expr(3, leaves)}))
      (else (local.set $t {self.i32_expr(3, leaves)})))"""
        inner = f"(br_table {' '.join(labels)} (i32.and (local.get $t) (i32.const {cases - 1})))"
        for label in labels:
            inner = (f"(block {label} {inner})\n"
                     f"    (local.set $t {self.i32_expr(2, leaves)}) (br $out)")
        return text + f"\n    (block $out {inner})\n    (local.get $t)"

    def caller(self) -> str:
        """Combines the results of calls to earlier functions."""
        leaves = ["(local.get $a)", "(local.get $b)", "(local.get $r)"]
        text = "\n    (local $r i32)"
        for _ in range(self.rng.randint(2, 4)):
            target = self.callee("ii")
            call = (f"(call ${target} {self.i32_expr(2, leaves)} {self.i32_expr(1, leaves)})"
                    if target else self.i32_expr(2, leaves))
            text += f"\n    (local.set $r (i32.xor (local.get $r) {call}))"
        return text + f"\n    {self.i32_expr(2, leaves)}"

    def float_loop(self) -> str:
        """Horner evaluation of a random polynomial in a loop, with conversions."""
        coefficients = [round(self.rng.uniform(-3, 3), 3) for _ in range(self.rng.randint(4, 8))]
        horner = "(local.get $a)"
        for c in coefficients:
            op = self.rng.choice(F64_BINOPS)
            horner = f"(f64.{op} (f64.mul {horner} (local.get $x)) (f64.const {c}))"
        target = self.callee("ff")
        tail = f"(call ${target} (local.get $s) (local.get $b))" if target else "(local.get $s)"
        return f"""
    (local $x f64) (local $s f64) (local $i i32)
    (local.set $x (f64.div (local.get $b) (f64.const 1024)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (i32.const {self.rng.randint(8, 64)})))
        (local.set $s (f64.add (local.get $s) {horner}))
        (local.set $x (f64.add (local.get $x)
                               (f64.convert_i32_s (i32.trunc_sat_f64_s (local.get $s)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    {tail}"""

    def function(self, index: int) -> str:
        shape = self.rng.choices([self.memory_loop, self.branchy, self.caller, self.float_loop],
                                 weights=[3, 3, 3, 2])[0]
        key = "ff" if shape == self.float_loop else "ii"
        body = shape()
        name = f"f{index}"
        self.funcs.append((name, key))
        return f"  (func ${name} {SIGNATURES[key]}{body})"

    def module(self, count: int) -> str:
        funcs = [self.function(i) for i in range(count)]
        last_ii = next(name for name, key in reversed(self.funcs) if key == "ii")
        return "\n".join(["(module", "  (memory (export \"memory\") 1)", *funcs,
                          f"  (export \"run\" (func ${last_ii}))", ")", ""])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="where to write the .wat file")
    parser.add_argument("--functions", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.functions < 1:
        parser.error("--functions must be at least 1")
    text = Generator(args.seed).module(args.functions)
    try:
        with open(args.out, "w") as f:
            f.write(text)
    except OSError as e:
        print(f"gen_compile_module: cannot write {args.out}: {e.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
