"""The one instruction reader (`engine/instructions.py`) against `wasm-tools dump`, on every
function body of every valid module in the conformance scripts: each instruction must start
at the offset wasm-tools gives, have its name, and carry the same index, constant and memarg
immediates; the scan's shortcut over plain instructions must land on the next one. A reader that mis-sizes an immediate shifts every later offset, so this catches
drift between the table and the binary format wherever it happens."""

from __future__ import annotations

import json
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from stackstitch.engine.frontend import wasmtools
from stackstitch.engine.frontend.binary import decode_module
from stackstitch.engine.frontend.instructions import (BYTE, F32, F64, INDEX, MEMARG, OPCODES, S32, S64,
                                             BodyReader, MemArg, instructions)
from conftest import SPEC_TESTS, require_wasm_tools_for_module

require_wasm_tools_for_module()

DUMP_LINE = re.compile(r"^\s*0x([0-9a-f]+) \| [0-9a-f ]+\| (\S+)(.*)$")
PLAIN_INT = re.compile(r"(\w+):(-?\d+)(?=\s|$)")
IEEE = re.compile(r"value:Ieee(?:32|64)\((\d+)\)")
MEMARG_TEXT = re.compile(r"offset: (\d+), memory: (\d+)")

# wasmparser's operator names where they are not the text name with `.` spelled `_`.
DUMP_NAMES = {"select": {"select", "typed_select", "typed_select_multi"}}


@pytest.fixture(scope="module")
def conformance_modules(tmp_path_factory) -> list:
    """Every module a conformance script declares valid, as a .wasm path."""
    out = tmp_path_factory.mktemp("spec-modules")
    scripts = sorted(path for folder in ("core", "stack-switching", "examples")
                     for path in (SPEC_TESTS / folder).glob("*.wast"))
    assert scripts, f"no conformance scripts in {SPEC_TESTS}"

    def split(script):
        folder = out / f"{script.parent.name}-{script.stem}"
        listing = json.loads(wasmtools.json_from_wast(script, folder).read_text())
        return [folder / c["filename"] for c in listing["commands"]
                if c["type"] == "module" and c.get("filename", "").endswith(".wasm")]

    with ThreadPoolExecutor(4) as pool:
        return [path for paths in pool.map(split, scripts) for path in paths]


def dumped_instructions(path) -> dict[int, tuple[str, str]]:
    """{offset: (operator name, rest of the line)} for every line of `wasm-tools dump`."""
    text = subprocess.run([wasmtools.executable(), "dump", str(path)], capture_output=True,
                          text=True, check=True, timeout=60).stdout
    found = {}
    for line in text.splitlines():
        match = DUMP_LINE.match(line)
        if match:
            found[int(match.group(1), 16)] = (match.group(2), match.group(3))
    return found


def mismatches(path) -> list[str]:
    data = path.read_bytes()
    module = decode_module(data)
    dumped = dumped_instructions(path)
    problems = []
    for body in module.code:
        problems += plain_skip_mismatches(path.name, data, body)
        for offset, op, immediates in instructions(data, body.code_start, body.code_end):
            where = f"{path.name} @0x{offset:x} {op.name}"
            if offset not in dumped:
                problems.append(f"{where}: wasm-tools has no instruction here")
                break  # every later offset is off too
            name, rest = dumped[offset]
            if name not in DUMP_NAMES.get(op.name, {op.name.replace(".", "_")}):
                problems.append(f"{where}: wasm-tools reads {name}")
                break
            problem = immediate_mismatch(op, immediates, rest)
            if problem:
                problems.append(f"{where}: {problem}")
    return problems


def plain_skip_mismatches(name: str, data: bytes, body) -> list[str]:
    """The loop scan's shortcut (`skip_plain`) must land where the full reader does."""
    offsets = [offset for offset, _, _ in instructions(data, body.code_start, body.code_end)]
    reader = BodyReader(data, body.code_start)
    return [f"{name} @0x{here:x}: skip_plain goes to 0x{skipped:x}, not 0x{after:x}"
            for here, after in zip(offsets, offsets[1:] + [body.code_end])
            if (skipped := reader.skip_plain(here)) is not None and skipped != after]


def immediate_mismatch(op, immediates, dumped: str) -> str | None:
    ours = [v for kind, v in zip(op.immediates, immediates) if kind in (INDEX, S32, S64)]
    theirs = [int(v) for _, v in PLAIN_INT.findall(dumped)]
    if theirs[:len(ours)] != ours or len(theirs) > len(ours):
        return f"integer immediates {ours}, wasm-tools {theirs}"
    for kind, value in zip(op.immediates, immediates):
        if kind in (F32, F64) and [value] != [int(v) for v in IEEE.findall(dumped)]:
            return f"float bits {value}, wasm-tools {dumped}"
        if kind == MEMARG:
            memarg = MEMARG_TEXT.search(dumped)
            if (value.offset, value.memory) != (int(memarg.group(1)), int(memarg.group(2))):
                return f"{value}, wasm-tools {dumped}"
    return None


def test_reader_agrees_with_wasm_tools_on_every_conformance_module(conformance_modules):
    assert len(conformance_modules) > 1000
    with ThreadPoolExecutor(4) as pool:
        problems = [p for found in pool.map(mismatches, conformance_modules) for p in found]
    assert not problems, "\n".join(problems[:20])


def test_block_type_bytes():
    """0x40 is the empty block type, other one-byte negatives are value types, and
    anything else is a non-negative s33 type index (more than one byte from 64 up)."""
    assert BodyReader(b"\x40", 0).blocktype() is None
    assert BodyReader(b"\x7f", 0).blocktype() == "i32"
    assert BodyReader(b"\x3f", 0).blocktype() == 63
    assert BodyReader(b"\xc0\x00", 0).blocktype() == 64
    assert BodyReader(b"\x80\x80\x01", 0).blocktype() == 1 << 14


def test_memarg_with_a_memory_index():
    reader = BodyReader(bytes([BYTE["i32.load"], 0x42, 0x01, 0x0b]), 0)
    _, op, immediates = reader.instruction()
    assert (op.name, immediates, reader.pos) == ("i32.load", (MemArg(2, 1, 11),), 4)


def test_the_table_names_each_opcode_once():
    names = [op.name for op in OPCODES if op is not None]
    assert len(names) - len(set(names)) == 1  # `select` and typed `select` share a name
    assert (BYTE["resume_throw_ref"], BYTE["switch"]) == (0xE5, 0xE6)
