"""A generator of stack-switching programs (wasm-smith does not emit them).

Each program is a set of functions of three kinds, all returning an i32 accumulator:
tasks `(param i32)`, bound tasks `(param i32 i32)` (started through `cont.bind`) and
threads `(param i32 (ref null $csw))` (started by a resume that handles `switch`, and
switching among themselves). Statements, picked at random, nest:

* arithmetic on i32, i64 and f64 locals, and calls, with values live across the call;
* calls out of the module, from any stack: a host function (spectest) and functions of
  the harness's `host` module that keep state, trap or throw its tag;
* `suspend` on one of three tags (one passes an i64 and an f64 out and gets an f64 and
  an i32 back), with values of each type live across the suspension;
* driving a child: `cont.new` (or `cont.new` + `cont.bind` to one or no parameters), then
  a loop of `resume` with a random handler set (two tags, `switch`) that logs each
  suspension and resumes the continuation it got, up to a limit, after which it either
  drops the child or cancels it with `resume_throw`;
* `switch` to a fresh thread or back to the one that switched here;
* `throw` (with an i32, or an i64 and an f64), and `try_table` with `catch`,
  `catch_ref` + `throw_ref`, `catch_all`, so exceptions cross continuations in both
  directions;
* traps at random depths, guarded by the data: `unreachable`, division by zero, memory
  out of bounds, resuming a consumed or a null continuation.

Function i only calls or starts functions j > i, and every loop is bounded, so every
program terminates; nothing depends on addresses or timing, so every run is
deterministic. Every event is logged into memory and folded into a global, so that the
order of execution shows in the state the harness compares. Exports `run0`..: the first
functions, which begin by driving a child.
"""

from __future__ import annotations

import random

from . import tools
from .observe import Recipe

PRELUDE = """(module
  (type $ft (func (param i32) (result i32)))
  (type $ct (cont $ft))
  (type $ft2 (func (param i32 i32) (result i32)))
  (type $ct2 (cont $ft2))
  (type $f0 (func (result i32)))
  (type $c0 (cont $f0))
  (rec (type $fsw (func (param i32 (ref null $csw)) (result i32)))
       (type $csw (cont $fsw)))
  (type $fm (func (param f64 i32) (result i32)))
  (type $cm (cont $fm))
  (import "spectest" "print_i32" (func $print (param i32)))
  (import "host" "mix" (func $mix (param i32 i64) (result i64)))
  (import "host" "check" (func $check (param i32) (result i32)))
  (import "host" "raise" (func $raise (param i32)))
  (import "host" "tag" (tag $raised (param i32)))
  (tag $y1 (param i32) (result i32))
  (tag $y2 (param i32) (result i32))
  (tag $ym (param i64 f64) (result f64 i32))
  (tag $sw (result i32))
  (tag $e1 (param i32))
  (tag $e2 (param i32))
  (tag $em (param i64 f64))
  (memory (export "memory") 1 1)
  (global $pos (export "pos") (mut i32) (i32.const 0))
  (global $acc (export "acc") (mut i64) (i64.const 0))
  (func $log (param $v i32)
    (i32.store (i32.and (global.get $pos) (i32.const 0xfffc)) (local.get $v))
    (global.set $pos (i32.add (global.get $pos) (i32.const 4)))
    (global.set $acc (i64.add (i64.mul (global.get $acc) (i64.const 31))
                              (i64.extend_i32_u (local.get $v)))))"""

TYPE_OF = {"task": "$ft", "bound": "$ft2", "thread": "$fsw"}
PARAMS = {"task": "(param $x i32)", "bound": "(param $x i32) (param $b i32)",
          "thread": "(param $x i32) (param $t (ref null $csw))"}
LOCALS = ("(local $y i64) (local $z f64) (local $v i32) (local $n i32) (local $k (ref null $ct)) "
          "(local $ex exnref) (local $w i64) (local $q f64) (local $km (ref null $cm))")


class ProgramGenerator:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.labels = 0
        count = rng.randrange(4, 11)
        self.entries = rng.randrange(1, 4)
        self.kinds = ["task"] * self.entries + [rng.choice(("task", "task", "bound", "thread"))
                                                for _ in range(count - self.entries)]

    def label(self, stem: str) -> str:
        self.labels += 1
        return f"${stem}{self.labels}"

    def const(self) -> int:
        return self.rng.choice((1, 2, 3, 5, 7, 11, 13, 100, 0x7FFF, 0x10001))

    def condition(self, masks=(1, 3, 7, 15)) -> str:
        """True for a fraction of the values $x takes: data decides, deterministically."""
        mask = self.rng.choice(masks)
        return f"(i32.eq (i32.and (local.get $x) (i32.const {mask})) (i32.const {self.rng.randrange(mask + 1)}))"

    def later(self, i: int, kinds=("task", "bound", "thread")) -> int | None:
        choices = [j for j in range(i + 1, len(self.kinds)) if self.kinds[j] in kinds]
        return self.rng.choice(choices) if choices else None

    # ---------------------------------------------------------------- statements

    def statements(self, i: int, depth: int, count: int) -> list[str]:
        out = []
        for _ in range(count):
            out += self.statement(i, depth)
        return out

    def statement(self, i: int, depth: int) -> list[str]:
        """A random statement; the weights keep most runs going long enough to switch
        many times, while traps and uncaught exceptions still end a good share."""
        makers = {self.arith: 8, self.log: 2, self.host_call: 2, self.call: 4, self.suspend: 6,
                  self.throw: 2, self.trap: 2, self.drive: 6, self.switch: 4, self.resume_again: 1,
                  self.try_block: 5 if depth < 2 else 0}
        if i < self.entries:  # nothing handles what an entry suspends, or what it calls
            makers[self.suspend] = makers[self.switch] = makers[self.call] = 0
        maker = self.rng.choices(list(makers), weights=list(makers.values()))[0]
        return maker(i, depth)

    def arith(self, i, depth):
        c = self.const()
        return [self.rng.choice((
            f"(local.set $x (i32.{self.rng.choice(('add', 'sub', 'mul', 'xor', 'rotl'))} (local.get $x) (i32.const {c})))",
            f"(local.set $y (i64.add (i64.mul (local.get $y) (i64.const {c})) (i64.extend_i32_s (local.get $x))))",
            "(local.set $z (f64.add (f64.mul (local.get $z) (f64.const 0.5)) (f64.convert_i32_s (local.get $x))))",
            "(local.set $x (i32.add (local.get $x) (i32.wrap_i64 (local.get $y))))",
            "(local.set $x (i32.xor (local.get $x) (i32.trunc_sat_f64_s (local.get $z))))",
        ))]

    def log(self, i, depth):
        return ["(call $log (local.get $x))"]

    def host_call(self, i, depth):
        """Calls out of the module, from whatever stack runs: a host function, and functions
        of another instance that keep state, trap, or throw an imported tag."""
        return [self.rng.choice((
            "(call $print (local.get $x))",
            "(local.set $y (call $mix (local.get $x) (local.get $y)))",
            f"(if {self.condition((3, 7))} (then (local.set $x (call $check (local.get $x)))))",
            f"(if {self.condition((3, 7))} (then (call $raise (local.get $x))))",
        ))]

    def call(self, i, depth):
        j = self.later(i)
        if j is None:
            return self.arith(i, depth)
        args = {"task": "(local.get $x)", "bound": f"(local.get $x) (i32.const {self.const()})",
                "thread": "(local.get $x) (ref.null $csw)"}[self.kinds[j]]
        return [f"(local.set $x (i32.add (i32.mul (local.get $x) (i32.const {self.const()})) (call $f{j} {args})))"]

    def suspend(self, i, depth):
        if self.rng.random() < 0.25:  # two values out, two back, of other types
            return ["(suspend $ym (i64.extend_i32_s (local.get $x)) (local.get $z))",
                    "(local.set $v)",
                    "(local.set $z (f64.add (local.get $z)))",
                    "(local.set $x (i32.add (local.get $x) (local.get $v)))",
                    "(call $log (local.get $x))"]
        tag = self.rng.choice(("$y1", "$y2"))
        c = self.const()
        return [self.rng.choice((
            f"(local.set $x (i32.add (i32.mul (local.get $x) (i32.const {c})) (suspend {tag} (local.get $x))))",
            f"(local.set $y (i64.add (local.get $y) (i64.extend_i32_u (suspend {tag} (i32.add (local.get $x) (i32.const {c}))))))",
            f"(local.set $z (f64.add (local.get $z) (f64.convert_i32_u (suspend {tag} (local.get $x)))))",
        )), "(call $log (local.get $x))"]

    def throw(self, i, depth):
        if self.rng.random() < 0.25:
            return [f"(if {self.condition((3, 7, 15))} (then (throw $em (local.get $y) (local.get $z))))"]
        tag = self.rng.choice(("$e1", "$e2"))
        return [f"(if {self.condition((3, 7, 15))} (then (throw {tag} (i32.add (local.get $x) (i32.const {self.const()})))))"]

    def trap(self, i, depth):
        trap = self.rng.choice((
            "unreachable",
            "(local.set $x (i32.div_s (i32.const 1000) (i32.and (local.get $x) (i32.const 1))))",
            "(local.set $x (i32.load (i32.add (i32.const 65532) (i32.and (local.get $x) (i32.const 4)))))",
            "(local.set $x (resume $ct (local.get $x) (ref.null $ct)))",
        ))
        return [f"(if {self.condition((7, 15))} (then {trap}))"]

    def resume_again(self, i, depth):
        """Resume what $k holds: null, consumed (a trap), or a child dropped while suspended."""
        return [f"(if {self.condition((7, 15))} (then (local.set $x (resume $ct (local.get $x) (local.get $k)))))"]

    def switch(self, i, depth):
        """Switch to a fresh thread, or to the one $t holds (the thread that switched
        here, or one consumed since, or null: mostly checked first); the thread that
        switches back hands over its own."""
        j = self.later(i, ("thread",))
        fresh = f"(cont.new $csw (ref.func $f{j}))" if j is not None else None
        roll = self.rng.random()
        if fresh and roll < 0.5:
            target, guard = fresh, self.condition()
        elif roll < 0.95:
            target = "(local.get $t)"
            guard = f"(i32.and {self.condition()} (i32.eqz (ref.is_null (local.get $t))))"
        else:
            target, guard = "(local.get $t)", self.condition((7, 15))
        return [f"(if {guard} (then",
                f"  (switch $csw $sw (local.get $x) {target})",
                "  (local.set $t)",
                "  (local.set $v)",
                "  (local.set $x (i32.add (local.get $x) (local.get $v)))",
                "  (call $log (local.get $x))))"]

    def try_block(self, i, depth):
        after = self.label("after")
        body = self.statements(i, depth + 1, self.rng.randrange(1, 4))
        clauses = self.rng.sample(["catch", "catch_ref", "catch_all", "catch_many", "catch_host"],
                                  self.rng.randrange(1, 3))
        blocks, handlers = [], []
        for clause in clauses:
            label = self.label("caught")
            tag = self.rng.choice(("$e1", "$e2"))
            if clause == "catch":
                blocks.append((f"(block {label} (result i32)", f"(catch {tag} {label})"))
                handlers.append(["(local.set $v)", "(call $log (local.get $v))",
                                 f"(local.set $x (i32.add (local.get $x) (i32.mul (local.get $v) (i32.const {self.const()}))))"])
            elif clause == "catch_ref":
                blocks.append((f"(block {label} (result i32 exnref)", f"(catch_ref {tag} {label})"))
                handlers.append(["(local.set $ex)", "(local.set $v)", "(call $log (local.get $v))",
                                 f"(if {self.condition()} (then (throw_ref (local.get $ex))))"])
            elif clause == "catch_host":
                blocks.append((f"(block {label} (result i32)", f"(catch $raised {label})"))
                handlers.append(["(local.set $v)",
                                 "(local.set $x (i32.xor (local.get $x) (local.get $v)))",
                                 "(call $log (local.get $x))"])
            elif clause == "catch_many":
                blocks.append((f"(block {label} (result i64 f64)", f"(catch $em {label})"))
                handlers.append(["(local.set $q)", "(local.set $w)",
                                 "(local.set $x (i32.add (local.get $x) (i32.wrap_i64 (local.get $w))))",
                                 "(local.set $z (f64.sub (local.get $z) (local.get $q)))",
                                 "(call $log (local.get $x))"])
            else:
                blocks.append((f"(block {label}", f"(catch_all {label})"))
                handlers.append([f"(local.set $x (i32.add (local.get $x) (i32.const {self.const()})))",
                                 "(call $log (local.get $x))"])
        out = [f"(block {after}"]
        out += [open_ for open_, _ in blocks]
        out.append("(try_table " + " ".join(clause for _, clause in blocks))
        out += ["  " + line for line in body]
        out.append(")")
        out.append(f"(br {after})")
        for handler in reversed(handlers):
            out.append(")")
            out += handler
            out.append(f"(br {after})")
        out.append(")")
        return out

    def drive(self, i, depth):
        """Start a child and resume it until it returns, or give up on it."""
        j = self.later(i)
        if j is None:
            return self.suspend(i, depth)
        done, again = self.label("done"), self.label("again")
        tags = [t for t in ("$y1", "$y2") if self.rng.random() < 0.9]
        labels = {tag: self.label("on") for tag in tags}
        handlers = " ".join(f"(on {tag} {label})" for tag, label in labels.items())
        if self.rng.random() < 0.9:
            handlers += " (on $sw switch)"
        # The innermost handler, for $ym, resumes at once (its continuation has another
        # type) with the outer handlers, which its code is inside of.
        many = self.label("on") if self.rng.random() < 0.8 else None
        inner_handlers = handlers
        if many:
            handlers += f" (on $ym {many})"
        kind, func = self.kinds[j], f"(ref.func $f{j})"
        start = {
            "task": self.rng.choice((
                f"(resume $ct {handlers} (local.get $x) (cont.new $ct {func}))",
                f"(resume $ct {handlers} (local.get $x) (local.tee $k (cont.new $ct {func})))")),
            "bound": self.rng.choice((
                f"(resume $ct {handlers} (local.get $x) (cont.bind $ct2 $ct (i32.const {self.const()}) (cont.new $ct2 {func})))",
                f"(resume $c0 {handlers} (cont.bind $ct2 $c0 (i32.const {self.const()}) (local.get $x) (cont.new $ct2 {func})))")),
            "thread": f"(resume $csw {handlers} (local.get $x) (ref.null $csw) (cont.new $csw {func}))",
        }[kind]
        resume = self.rng.choice((
            f"(resume $ct {handlers} (local.get $x) (local.get $k))",
            f"(resume $c0 {handlers} (cont.bind $ct $c0 (local.get $x) (local.get $k)))"))
        cancel = ("(local.get $x)" if self.rng.random() < 0.6 else
                  f"(resume_throw $ct {self.rng.choice(('$e1', '$e2'))} {handlers} (local.get $x) (local.get $k))")
        limit = self.rng.randrange(1, 5)
        # A value of each type may be live across the whole drive, in the parent's frame.
        into, close = self.rng.choice((
            (f"(local.set $x (i32.xor (i32.mul (local.get $x) (i32.const {self.const()}))", ")))"),
            ("(local.set $y (i64.add (local.get $y) (i64.extend_i32_s", "))))"),
            ("(local.set $z (f64.sub (local.get $z) (f64.convert_i32_s", "))))")))
        out = [into,
               f"  (block {done} (result i32)",
               "    (local.set $n (i32.const 0))",
               f"    (loop {again}"]
        out += [f"      (block {label} (result i32 (ref $ct))" for label in labels.values()]
        if many:
            out.append(f"      (block {many} (result i64 f64 (ref $cm))")
        out += [f"      (if (i32.eqz (local.get $n)) (then (br {done} {start})))",
                f"      (if (i32.ge_u (local.get $n) (i32.const {limit})) (then (br {done} {cancel})))",
                f"      (br {done} {resume})"]
        if many:
            out += ["      )",
                    "      (local.set $km) (local.set $q) (local.set $w)",
                    "      (call $log (i32.add (i32.wrap_i64 (local.get $w)) (i32.const 3000)))",
                    "      (local.set $n (i32.add (local.get $n) (i32.const 1)))",
                    f"      (br {done} (resume $cm {inner_handlers} (f64.mul (local.get $q) (f64.const 0.5)) "
                    "(local.get $x) (local.get $km)))"]
        for tag in reversed(list(labels)):
            out += ["      )",
                    "      (local.set $k)", "      (local.set $v)",
                    f"      (call $log (i32.add (local.get $v) (i32.const {1000 if tag == '$y1' else 2000})))",
                    "      (local.set $x (i32.add (local.get $x) (local.get $v)))",
                    "      (local.set $n (i32.add (local.get $n) (i32.const 1)))",
                    f"      (br {again})"]
        out += ["    )", "    unreachable" + close]
        return out

    # ---------------------------------------------------------------- the module

    def function(self, i: int) -> list[str]:
        kind = self.kinds[i]
        locals_ = LOCALS + ("" if kind == "thread" else " (local $t (ref null $csw))")
        body = ["(local.set $x (i32.add (local.get $x) (local.get $b)))"] if kind == "bound" else []
        body += self.drive(i, 0) if i < self.entries else []
        body += self.statements(i, 0, self.rng.randrange(2, 8))
        export = f' (export "run{i}")' if i < self.entries else ""
        return ([f"  (func $f{i}{export} (type {TYPE_OF[kind]}) {PARAMS[kind]} (result i32) {locals_}"]
                + ["    " + line for line in body]
                + ["    (i32.add (local.get $x) (i32.wrap_i64 (local.get $y))))"])

    def module(self) -> str:
        lines = [PRELUDE]
        for i in range(len(self.kinds)):
            lines += self.function(i)
        lines.append(f"  (elem declare func {' '.join(f'$f{i}' for i in range(len(self.kinds)))})")
        lines.append(")")
        return "\n".join(lines) + "\n"


def switching_text(seed: int, index: int) -> str:
    return ProgramGenerator(random.Random(f"switching/{seed}/{index}")).module()


def switching_module(seed: int, index: int) -> tuple[bytes, Recipe]:
    """Module `index` of the switching campaign, checked valid: an invalid one is a bug of
    this generator, and raises."""
    text = switching_text(seed, index)
    proc = tools.run_wasm_tools(["parse", "-"], text.encode())
    if proc.returncode != 0 or not tools.is_valid(proc.stdout):
        raise ValueError(f"generated an invalid module (switching {seed}/{index}): "
                         + proc.stderr.decode(errors="replace").strip())
    return proc.stdout, Recipe(args_seed=random.Random(f"args/{seed}/{index}").getrandbits(32))
