"""Turn stackstitch's observations into a `.wast` script that Wasmtime checks.

The Wasmtime CLI runs one export per process and cannot show memory, but `wasmtime wast`
runs a whole script in one process and stops at the first assertion that fails, saying
what it got instead. So stackstitch runs first, in process (`observe`), and its results
become assertions: `assert_return` for values, `assert_trap` with the Wasmtime text of
the trap's kind, `assert_exception`, `assert_exhaustion`. A *driver* module, linked to the
module under test by `register`, refills smith's fuel global before each call and
checksums the exported globals and memories after it (`state`), so that one assertion
per call compares the whole state. With `detail`, each global and memory is also checked
on its own, which the saved script of a mismatch uses to say which one differs.

Every line of the script is tagged (`Line`) so a failure at line N can be traced back to
the call, or the state check, it came from.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .host import host_module
from .trap_kinds import EXHAUSTION, wasmtime_text

CRC_POLYNOMIAL = 0xEDB88320
SCRATCH = 1024  # driver memory: the CRC table below, an 8-byte buffer at this offset
PATTERN_REFS = {"func": ("(ref.null func)", "(ref.func)"),
                "extern": ("(ref.null extern)", "(ref.extern)"),
                "nofunc": ("(ref.null func)", None), "noextern": ("(ref.null extern)", None)}


@dataclass
class Line:
    """What one line of the script checks: `what` is "host", "module", "driver", "state",
    "call" or "refuel"; `call` indexes the calls (None before the first)."""

    what: str
    call: int | None = None
    expected: dict | None = None  # the stackstitch outcome or state the line asserts


@dataclass
class Script:
    text: str
    lines: dict[int, Line] = field(default_factory=dict)  # 1-based line number -> Line


def wast_string(data: bytes) -> str:
    return '"' + "".join(chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\{b:02x}"
                         for b in data) + '"'


def name(text: str) -> str:
    return wast_string(text.encode())


def float_text(bits: int, width: int) -> str:
    """A float constant with exactly these bits (NaN payloads included)."""
    exponent_bits, mantissa_bits = (8, 23) if width == 32 else (11, 52)
    sign = "-" if bits >> (width - 1) else ""
    exponent = (bits >> mantissa_bits) & ((1 << exponent_bits) - 1)
    mantissa = bits & ((1 << mantissa_bits) - 1)
    if exponent == (1 << exponent_bits) - 1:
        return f"{sign}nan:{mantissa:#x}" if mantissa else f"{sign}inf"
    value = (struct.unpack("<f", struct.pack("<I", bits))[0] if width == 32
             else struct.unpack("<d", struct.pack("<Q", bits))[0])
    return value.hex()


def const(valtype: str, raw: int) -> str:
    """An argument (references are null)."""
    if valtype in ("i32", "i64"):
        return f"({valtype}.const {raw:#x})"
    if valtype in ("f32", "f64"):
        return f"({valtype}.const {float_text(raw, int(valtype[1:]))})"
    return f"(ref.null {ref_heap(valtype)})"


def ref_heap(valtype: str) -> str:
    return valtype.removeprefix("(ref ").removeprefix("null ").removesuffix(")")


def result_pattern(valtype: str, raw: int) -> str | None:
    """An expected result, or None for a non-null reference no pattern can name."""
    if not valtype.startswith("(ref"):
        return const(valtype, raw)
    null, non_null = PATTERN_REFS.get(ref_heap(valtype), (None, None))
    return null if raw == 0 else non_null


def scriptable(valtype: str) -> bool:
    """Can a script pass a value of this type, and match one? Only numbers, and function
    and extern references: `wasmtime wast` cannot convert `(ref.null exn)` to a value."""
    return not valtype.startswith("(ref") or ref_heap(valtype) in PATTERN_REFS


def needs_wrapper(func: dict) -> bool:
    """Calls with other reference types go through a driver function that passes null for
    such a parameter and turns such a result into `ref.is_null`."""
    return not all(map(scriptable, func["params"] + func["results"]))


# ---------------------------------------------------------------- the driver module

def driver_module(module: dict, fuel: int) -> str:
    """The driver's text: imports of the exported memories, globals, fuel and wrapped
    functions; `refuel`, `state`, `memK` (detail) and `callK` (wrapped results)."""
    memories, globals_ = module["memories"], module["globals"]
    wrapped = [(k, f) for k, f in enumerate(module["funcs"]) if needs_wrapper(f)]
    out = ["(module $d"]
    for k, m in enumerate(memories):
        maximum = f" {m['max']}" if m["max"] is not None else ""
        out.append(f"  (import {name(m['module'])} {name(m['name'])} (memory $m{k} {m['index']} {m['min']}{maximum}))")
    for k, g in enumerate(globals_):
        gtype = f"(mut {g['type']})" if g["mutable"] else g["type"]
        out.append(f"  (import {name(g['module'])} {name(g['name'])} (global $g{k} {gtype}))")
    if module["fuel"]:
        out.append(f"  (import \"m\" {name(module['fuel'])} (global $fuel (mut i32)))")
    for k, f in wrapped:
        out.append(f"  (import \"m\" {name(f['name'])} (func $f{k}{signature(f['params'], f['results'])}))")
    out.append("  (memory $scratch 1)")
    out.append(CRC_TABLE_INIT)
    loop = crc_loop("$scratch", "i32", f"(i32.const {SCRATCH})", f"(i32.const {SCRATCH + 8})")
    out.append(f"  (func $crc8 (param $c i32) (result i32){loop}\n    (local.get $c))")
    for k, m in enumerate(memories):
        index = m["index"]
        loop = crc_loop(f"$m{k}", index, f"({index}.const 0)",
                        f"({index}.mul (memory.size $m{k}) ({index}.const 65536))")
        out.append(f"  (func $crc_m{k} (param $c i32) (result i32){loop}\n    (local.get $c))")
        out.append(f"  (func (export \"mem{k}\") (result i64)\n"
                   f"    (i64.or (i64.shl (i64.extend_i32_u (i32.xor (call $crc_m{k} (i32.const -1)) (i32.const -1))) (i64.const 32))\n"
                   f"            {pages_i64(k, m)}))")
    if module["fuel"]:
        out.append(f"  (func (export \"refuel\") (global.set $fuel (i32.const {fuel})))")
    body = ["(local $c i32)", "(local.set $c (i32.const -1))"]
    for k, g in enumerate(globals_):
        body.append(f"(i64.store $scratch (i32.const {SCRATCH}) {global_as_i64(k, g['type'])})")
        body.append("(local.set $c (call $crc8 (local.get $c)))")
    for k, m in enumerate(memories):
        body.append(f"(i64.store $scratch (i32.const {SCRATCH}) {pages_i64(k, m)})")
        body.append("(local.set $c (call $crc8 (local.get $c)))")
        body.append(f"(local.set $c (call $crc_m{k} (local.get $c)))")
    body.append("(i64.extend_i32_u (i32.xor (local.get $c) (i32.const -1)))")
    out.append("  (func (export \"state\") (result i64)\n    " + "\n    ".join(body) + ")")
    for k, g in enumerate(globals_):
        if g["type"].startswith("(ref"):
            out.append(f"  (func (export \"null{k}\") (result i32) (ref.is_null (global.get $g{k})))")
    for k, f in wrapped:
        out.append(wrapper(k, f))
    out.append(")")
    return "\n".join(out)


def signature(params: list[str], results: list[str]) -> str:
    return (f" (param {' '.join(params)})" if params else "") + \
           (f" (result {' '.join(results)})" if results else "")


def pages_i64(k: int, memory: dict) -> str:
    size = f"(memory.size $m{k})"
    return size if memory["index"] == "i64" else f"(i64.extend_i32_u {size})"


def global_as_i64(k: int, valtype: str) -> str:
    get = f"(global.get $g{k})"
    return {"i32": f"(i64.extend_i32_u {get})", "i64": get,
            "f32": f"(i64.extend_i32_u (i32.reinterpret_f32 {get}))",
            "f64": f"(i64.reinterpret_f64 {get})"}.get(valtype, f"(i64.extend_i32_u (ref.is_null {get}))")


def crc_loop(memory: str, index: str, start: str, end: str) -> str:
    """Fold the bytes [start, end) of `memory` into the running CRC register $c."""
    return f"""
    (local $i {index}) (local $end {index})
    (local.set $i {start})
    (local.set $end {end})
    (block $done
      (loop $next
        (br_if $done ({index}.ge_u (local.get $i) (local.get $end)))
        (local.set $c (i32.xor
          (i32.load $scratch (i32.shl (i32.and (i32.xor (local.get $c) (i32.load8_u {memory} (local.get $i))) (i32.const 255)) (i32.const 2)))
          (i32.shr_u (local.get $c) (i32.const 8))))
        (local.set $i ({index}.add (local.get $i) ({index}.const 1)))
        (br $next)))"""


CRC_TABLE_INIT = f"""  (func $crc_table (local $n i32) (local $c i32) (local $k i32)
    (loop $entry
      (local.set $c (local.get $n))
      (local.set $k (i32.const 8))
      (loop $bit
        (local.set $c (i32.xor (i32.shr_u (local.get $c) (i32.const 1))
                               (i32.and (i32.const {CRC_POLYNOMIAL:#x}) (i32.sub (i32.const 0) (i32.and (local.get $c) (i32.const 1))))))
        (local.set $k (i32.sub (local.get $k) (i32.const 1)))
        (br_if $bit (local.get $k)))
      (i32.store $scratch (i32.shl (local.get $n) (i32.const 2)) (local.get $c))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $entry (i32.lt_u (local.get $n) (i32.const 256)))))
  (start $crc_table)"""


def wrapper(k: int, func: dict) -> str:
    params, results = func["params"], func["results"]
    outer_params = [t for t in params if scriptable(t)]
    converted = [t if scriptable(t) else "i32" for t in results]
    locals_ = " ".join(f"(local $r{i} {t})" for i, t in enumerate(results))
    args, outer = [], 0
    for t in params:
        if scriptable(t):
            args.append(f"(local.get {outer})")
            outer += 1
        else:
            args.append(f"(ref.null {ref_heap(t)})")
    body = [f"(call $f{k} {' '.join(args)})"]
    body += [f"(local.set $r{i})" for i in reversed(range(len(results)))]
    body += [f"(local.get $r{i})" if scriptable(t) else f"(ref.is_null (local.get $r{i}))"
             for i, t in enumerate(results)]
    return (f"  (func (export \"call{k}\"){signature(outer_params, converted)} {locals_}\n    "
            + "\n    ".join(body) + ")")


# ---------------------------------------------------------------- the script

def action(module: dict, export: str, args: list[int]) -> str:
    """The invocation of `export`, through its wrapper if it has one."""
    k, func = next((k, f) for k, f in enumerate(module["funcs"]) if f["name"] == export)
    args_text = "".join(" " + const(t, a) for t, a in zip(func["params"], args) if scriptable(t))
    if needs_wrapper(func):
        return f"(invoke $d \"call{k}\"{args_text})"
    return f"(invoke $m {name(export)}{args_text})"


def expected_results(func: dict, values: list[int]) -> str:
    return "".join(" " + result_pattern(t, v) if scriptable(t) else f" (i32.const {int(v == 0)})"
                   for t, v in zip(func["results"], values))


def assertion(act: str, outcome: dict, results: str = "") -> str | None:
    """The assertion that `act` ends as `outcome` did in stackstitch (None for an error,
    which no assertion can express)."""
    kind = outcome["kind"]
    if kind == "return":
        return f"(assert_return {act}{results})"
    if kind == "exception":
        return f"(assert_exception {act})"
    if kind == "trap" and outcome["trap"] == EXHAUSTION:
        return f"(assert_exhaustion {act} \"{wasmtime_text(EXHAUSTION)}\")"
    if kind == "trap":
        return f"(assert_trap {act} \"{wasmtime_text(outcome['trap'])}\")"
    return None


def probe(act: str) -> str:
    """An assertion that shows how `act` ends in Wasmtime, for a call whose stackstitch
    outcome no assertion expresses: a bare action would hide a trap (`wasmtime wast`
    ignores how one ends), and this one fails with a message saying what happened,
    unless the call throws."""
    return f"(assert_exception {act})"


def render(wasm: bytes, events: list[dict], fuel: int, detail: bool = False) -> Script:
    """The script for a run; it ends at the first event no assertion can express."""
    script = Script("")
    out: list[str] = []

    def add(text: str, line: Line):
        script.lines[len(out) + 1] = line
        out.append(text)

    for text in (f"(module $host binary {wast_string(host_module())})", '(register "host" $host)'):
        add(text, Line("host"))
    module_text = f"(module $m binary {wast_string(wasm)})"
    module = next((e for e in events if e["event"] == "module"), None)
    instantiated = next((e for e in events if e["event"] == "instantiated"), None)
    if module is None or instantiated is None:  # rejected, or it crashed or hung compiling
        add(module_text, Line("module"))
        return finish(script, out)
    outcome = instantiated["outcome"]
    if outcome["kind"] == "trap":
        add(f"(assert_trap {module_text} \"{wasmtime_text(outcome['trap'])}\")", Line("module", expected=outcome))
        return finish(script, out)
    add(module_text, Line("module", expected=outcome))
    if outcome["kind"] != "return":
        return finish(script, out)
    add('(register "m" $m)', Line("module"))
    for text in driver_module(module, fuel).split("\n"):
        add(text, Line("driver"))
    add_state_checks(add, module, instantiated["state"], None, detail)

    funcs = {f["name"]: f for f in module["funcs"]}
    index, pending = -1, None
    for event in events:
        if event["event"] == "calling":
            index += 1
            call = event["call"]
            pending = action(module, call["export"], call["args"])
            if module["fuel"]:
                add('(invoke $d "refuel")', Line("refuel", index))
        elif event["event"] == "returned":
            outcome = event["outcome"]
            results = (expected_results(funcs[call["export"]], outcome["values"])
                       if outcome["kind"] == "return" else "")
            text = assertion(pending, outcome, results)
            if text is None:
                add(probe(pending), Line("call", index, outcome))
                return finish(script, out)
            add(text, Line("call", index, outcome))
            add_state_checks(add, module, event["state"], index, detail)
            pending = None
    if pending is not None:  # stackstitch crashed or hung in this call: what does Wasmtime do?
        add(probe(pending), Line("call", index, {"kind": "unfinished"}))
    return finish(script, out)


def add_state_checks(add, module: dict, state: dict, index: int | None, detail: bool) -> None:
    """The combined check, after (with `detail`) one per global and memory, so that the
    first failure names what differs."""
    if detail:
        for k, (g, value) in enumerate(zip(module["globals"], state["globals"])):
            if g["type"].startswith("(ref"):
                add(f'(assert_return (invoke $d "null{k}") (i32.const {value}))', Line("state", index, state))
            else:
                add(f"(assert_return (get ${g['module']} {name(g['name'])}) {const(g['type'], value)})",
                    Line("state", index, state))
        for k, (pages, crc) in enumerate(state["memories"]):
            add(f'(assert_return (invoke $d "mem{k}") (i64.const {(crc << 32) | pages:#x}))',
                Line("state", index, state))
    add(f'(assert_return (invoke $d "state") (i64.const {state["hash"]:#x}))', Line("state", index, state))


def finish(script: Script, out: list[str]) -> Script:
    script.text = "\n".join(out) + "\n"
    return script
