"""The DWARF of JIT objects, read back with pyelftools and checked by llvm-dwarfdump: the
module's own DWARF translated (C built with zig, WAT with wasm-tools' line DWARF),
Wasm-level info for modules without DWARF, and the rules that keep a location from
showing a wrong value (a reused Wasm local, a partly optimized-out value)."""

from __future__ import annotations

import io
import re
import subprocess

import pytest
from elftools.dwarf.dwarf_expr import DWARFExprParser
from elftools.dwarf.locationlists import BaseAddressEntry
from elftools.dwarf.structs import DWARFStructs
from elftools.elf.elffile import ELFFile

from conftest import require_wasm_tools_for_module
from stackstitch.engine.frontend.loader import load_bytes, load_module
from stackstitch.engine.runtime.store import Store
from stackstitch.engine.host.wasi import Wasi
from stackstitch.unwind import locations
from stackstitch.unwind.dwarf import REGISTER_NUMBERS, register_location
from stackstitch.unwind.debuginfo import module_debug_sections
from stackstitch.unwind.elf import jit_object, module_symbols
from stackstitch.unwind.wasmcode import scan_function

require_wasm_tools_for_module()


def compiled(module):
    """(module, compiled, region) of a module instantiated in a fresh store."""
    captured = []
    store = Store(code_observers=[lambda *placed: captured.append(placed)])
    imports = Wasi(["prog"], {}).imports(store) if module.imports else {}
    store.instantiate(module, imports)
    return captured[0]


def jit_elf(module, source_path: str = "module.wasm") -> ELFFile:
    module, code, region = compiled(module)
    debug = module_debug_sections(module, code, region.address, source_path)
    return ELFFile(io.BytesIO(jit_object(region.address, region.size, module_symbols(module, code), debug,
                                         source_path)))


def subprograms(dwarf) -> dict:
    out = {}
    for unit in dwarf.iter_CUs():
        for die in unit.iter_DIEs():
            if die.tag == "DW_TAG_subprogram" and {"DW_AT_low_pc", "DW_AT_name"} <= die.attributes.keys():
                out[die.attributes["DW_AT_name"].value.decode()] = die
    return out


def function_lines(dwarf) -> dict[str, set[int]]:
    """Function name -> the lines its native code rows have."""
    ranges = {name: (die.attributes["DW_AT_low_pc"].value,
                     die.attributes["DW_AT_low_pc"].value + die.attributes["DW_AT_high_pc"].value)
              for name, die in subprograms(dwarf).items()}
    lines: dict[str, set[int]] = {name: set() for name in ranges}
    for unit in dwarf.iter_CUs():
        for entry in dwarf.line_program_for_CU(unit).get_entries():
            state = entry.state
            if state is None or state.end_sequence:
                continue
            for name, (lo, hi) in ranges.items():
                if lo <= state.address < hi:
                    lines[name].add(state.line)
    return lines


@pytest.fixture(scope="module")
def c_objects(c_programs) -> dict[str, bytes]:
    """The JIT objects of list.c at -O0 and -O2, its DWARF translated."""
    objects = {}
    for level, path in c_programs.items():
        module, code, region = compiled(load_module(path))
        debug = module_debug_sections(module, code, region.address, str(path))
        objects[level] = jit_object(region.address, region.size, module_symbols(module, code), debug)
    return objects


@pytest.mark.parametrize("level", ["O0", "O2"])
def test_object_of_a_c_program_passes_llvm_dwarfdump_verify(require_tool, c_objects, tmp_path, level):
    dwarfdump = require_tool("llvm-dwarfdump")
    path = tmp_path / "object.o"
    path.write_bytes(c_objects[level])
    result = subprocess.run([dwarfdump, "--verify", str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "No errors." in result.stdout, result.stdout[-3000:] + result.stderr


def test_c_pointers_are_native_pointers_to_relocated_types(c_objects):
    """node* -> an 8-byte pointer to a copy of struct node that adds the memory base;
    node.next -> a 32-bit bit-field; int* -> a pointer to a subrange of int."""
    dwarf = ELFFile(io.BytesIO(c_objects["O0"])).get_dwarf_info()
    leaf = subprograms(dwarf)["leaf"]
    n = next(d for d in leaf.iter_children() if d.attributes.get("DW_AT_name") and
             d.attributes["DW_AT_name"].value == b"n")
    pointer = n.get_DIE_from_attribute("DW_AT_type")
    assert pointer.tag == "DW_TAG_pointer_type" and "DW_AT_byte_size" not in pointer.attributes
    node = pointer.get_DIE_from_attribute("DW_AT_type")
    assert node.tag == "DW_TAG_structure_type" and node.attributes["DW_AT_name"].value == b"node"
    relocation = node.attributes["DW_AT_data_location"].value
    ops = [op.op_name for op in DWARFExprParser(node.cu.structs).parse_expr(relocation)]
    assert "DW_OP_push_object_address" in ops and ops[-1] == "DW_OP_plus", ops
    members = {m.attributes["DW_AT_name"].value: m.attributes for m in node.iter_children()}
    assert members[b"next"]["DW_AT_bit_size"].value == 32
    assert members[b"next"]["DW_AT_data_bit_offset"].value == 32
    assert members[b"v"]["DW_AT_data_member_location"].value == 0
    mid = subprograms(dwarf)["mid"]
    third = next(d for d in mid.iter_children() if d.attributes.get("DW_AT_name") and
                 d.attributes["DW_AT_name"].value == b"third")
    target = third.get_DIE_from_attribute("DW_AT_type").get_DIE_from_attribute("DW_AT_type")
    assert target.tag == "DW_TAG_subrange_type" and target.attributes["DW_AT_name"].value == b"int"
    assert target.attributes["DW_AT_lower_bound"].value == -2**31 and "DW_AT_data_location" in target.attributes


def test_wat_lines_are_the_text_lines_whatever_the_function_count(tmp_path):
    """wasm-tools' addresses count from after the code section's function count, which is
    two bytes long from 128 functions on."""
    text = "(module\n" + "".join(f"  (func $f{k} (result i32)\n    (i32.add (i32.const {k}) (i32.const 1)))\n"
                                 for k in range(130)) + ")\n"
    path = tmp_path / "many.wat"
    path.write_text(text)
    lines = function_lines(jit_elf(load_module(path), str(path)).get_dwarf_info())
    assert len(lines) == 130
    for k in range(130):  # each function's instructions are on the line after its header
        assert lines[f"f{k}"] == {3 + 2 * k}, (k, lines[f"f{k}"])


def test_a_module_without_dwarf_gets_wasm_level_variables_and_offset_lines():
    module = load_bytes(b"""(module
      (func $sum (param $a i32) (param i64) (result f64)
        (local $acc f64) (local i32)
        (f64.convert_i32_s (local.get $a)))
      (func (export "main") (result f64) (call $sum (i32.const 1) (i64.const 2))))""")
    dwarf = jit_elf(module).get_dwarf_info()
    sum_ = subprograms(dwarf)["sum"]
    parameters = [(d.attributes["DW_AT_name"].value, d.get_DIE_from_attribute("DW_AT_type").attributes["DW_AT_name"].value)
                  for d in sum_.iter_children() if d.tag == "DW_TAG_formal_parameter"]
    assert parameters == [(b"a", b"int32_t"), (b"local1", b"int64_t")]
    block = next(d for d in sum_.iter_children() if d.tag == "DW_TAG_lexical_block")
    assert block.attributes["DW_AT_low_pc"].value > sum_.attributes["DW_AT_low_pc"].value  # after the prologue
    assert [d.attributes["DW_AT_name"].value for d in block.iter_children()] == [b"acc", b"local3"]
    body = module.code[0]
    assert function_lines(dwarf)["sum"] <= set(range(body.code_start, body.code_end))


WRITES_WAT = """(module (func (param i32) (result i32) (local i32)
  (local.set 1 (local.get 0))
  (drop (i32.add (local.get 1) (i32.const 1)))
  (loop $l (local.set 0 (i32.const 9)) (br_if $l (i32.eqz (local.get 0))))
  (local.get 1)))"""


def test_a_local_is_trusted_until_it_is_overwritten():
    module = load_bytes(WRITES_WAT.encode())
    body, code_start = module.code[0], module.code_section_start
    writes = scan_function(module.data, body.code_start, body.code_end, code_start)
    first = body.code_start - code_start
    end = body.code_end - code_start
    set_1 = writes.writes[1][0]
    (loop_start, loop_end), = writes.loops
    set_0 = writes.writes[0][0]
    assert first <= set_1 < loop_start < set_0 < loop_end < end
    assert writes.trusted({1}, set_1 + 2, end) == (set_1 + 2, end)  # never written again
    assert writes.trusted({0}, first, end) == (first, loop_start)  # written in a loop: not in it
    assert writes.trusted({0}, loop_end, end) == (loop_end, end)
    assert writes.trusted({0, 1}, set_1 + 2, end) == (set_1 + 2, loop_start)


def test_unknown_instructions_make_a_function_untrusted():
    module = load_bytes(b"(module (func (result i32) (i32.const 1)))")
    body = module.code[0]
    data = bytearray(module.data)
    data[body.code_start] = 0xFD  # a SIMD prefix where i32.const was
    assert scan_function(bytes(data), body.code_start, body.code_end, 0) is None


WASM32 = DWARFStructs(little_endian=True, dwarf_format=32, address_size=4)


def _ops(*codes: int):
    return DWARFExprParser(WASM32).parse_expr(list(codes))


FRAME = locations.Frame(["i32", "i32", "i32"], 2, lambda index: 64 + 8 * index, ["i32"])


@pytest.mark.parametrize("expression,reason", [
    ((0xED, 2, 0, 0x9F), "operand stack"),  # DW_OP_WASM_location 2 0: no fixed native home
    ((0x93, 4, 0x30, 0x9F, 0x93, 4), "optimized out"),  # first piece empty (lldb shows zeros)
    ((0x30, 0x9F, 0x93, 4), "cover"),  # 4 bytes of an 8-byte value
    ((0x90, 3), "a native register"),  # DW_OP_regx: means nothing in Wasm
])
def test_locations_that_cannot_be_exact_are_left_out(expression, reason):
    with pytest.raises(locations.Unsupported):
        locations.translate(_ops(*expression), FRAME, size=8)


def test_frame_base_relative_location_reads_the_shadow_stack():
    """DW_OP_fbreg 12 with the frame base in local 2: memory base + [slot of local 2] + 12."""
    frame = locations.Frame(["i32", "i32", "i32"], 2, None, [], frame_base=_ops(0xED, 0, 2, 0x9F))
    native = locations.translate(_ops(0x91, 12), frame)
    assert native.uses_frame_base and native.needs_body and native.locals == {2}
    names = [op.op_name for op in DWARFExprParser(WASM32).parse_expr(list(native.code))]
    assert names[:5] == ["DW_OP_call_frame_cfa", "DW_OP_constu", "DW_OP_minus", "DW_OP_deref_size",
                         "DW_OP_plus_uconst"], names
    assert names[-1] == "DW_OP_plus" and names.count("DW_OP_deref") == 2, names  # vmctx, then base
    pointer = locations.translate(_ops(0xED, 0, 0, 0x9F), frame, wasm_pointer=True)
    assert re.fullmatch(rb"\x9c\x94\x04\x30\x22\x9f", pointer.code), pointer.code  # zero-extended value



def test_a_local_a_loop_keeps_in_a_register_is_read_there():
    """Where local 2 lives in r12 and local 3 in xmm14 (their pin ranges): a variable that
    is the local is the register; a computation or a widened pointer reads the register; a
    float register is not computed with (left out)."""
    frame = locations.Frame(["i32", "i32", "i32", "f64"], 2, None, [], frame_base=_ops(0xED, 0, 2, 0x9F))
    pinned = {2: "r12", 3: "xmm14"}
    reg12, breg12, reg31 = 0x5C, 0x7C, 0x6F
    assert locations.translate(_ops(0xED, 0, 2, 0x9F), frame, registers=pinned).code == bytes([reg12])
    assert locations.translate(_ops(0xED, 0, 3), frame, registers=pinned).code == bytes([reg31])
    pointer = locations.translate(_ops(0xED, 0, 2, 0x9F), frame, wasm_pointer=True, registers=pinned)
    assert pointer.code == bytes([breg12, 0, 0x30, 0x22, 0x9F])  # zero-extended value, as from the slot
    minus_one = locations.translate(_ops(0xED, 0, 2, 0x31, 0x1C, 0x9F), frame, registers=pinned)
    assert minus_one.code == bytes([breg12, 0, 0x31, 0x1C, 0x9F]) and minus_one.locals == {2}
    from_base = locations.translate(_ops(0x91, 12), frame, registers=pinned)  # DW_OP_fbreg 12
    assert from_base.code.startswith(bytes([breg12, 0, 0x23, 12]))  # then + the memory base
    with pytest.raises(locations.Unsupported):
        locations.translate(_ops(0xED, 0, 3, 0x31, 0x22, 0x9F), frame, registers=pinned)
    assert locations.translate(_ops(0xED, 0, 2, 0x9F), frame, registers={3: "xmm14"}).code == \
        locations.translate(_ops(0xED, 0, 2, 0x9F), frame).code  # local 2 in its slot there
    assert register_location("xmm15").code == bytes([0x90, 32])  # DW_OP_regx: past DW_OP_reg31


def test_wasm_level_locals_name_their_registers_over_their_pin_ranges():
    module = load_bytes(b"""(module (func $count (export "count") (param $n i32) (result i32)
      (local $i i32) (local $x f64)
      (loop $again
        (local.set $x (f64.add (local.get $x) (f64.const 0.5)))
        (local.set $i (i32.add (local.get $i) (call $count (i32.const 0))))
        (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
      (local.get $i)))""")
    module, code, region = compiled(module)
    debug = module_debug_sections(module, code, region.address, "module.wasm")
    dwarf = ELFFile(io.BytesIO(jit_object(region.address, region.size, module_symbols(module, code), debug,
                                          "module.wasm"))).get_dwarf_info()
    function = code.functions[0]
    assert function.pin_ranges, "the loop keeps $i and $x in registers"
    block = next(d for d in subprograms(dwarf)["count"].iter_children() if d.tag == "DW_TAG_lexical_block")
    lists = dwarf.location_lists()
    for variable in block.iter_children():
        index = {b"i": 1, b"x": 2}[variable.attributes["DW_AT_name"].value]
        entries = absolute(lists.get_location_list_at_offset(variable.attributes["DW_AT_location"].value))
        parser = DWARFExprParser(variable.cu.structs)
        in_registers = [(start - region.address, end - region.address, parser.parse_expr(code)[0].op_name)
                        for start, end, code in entries
                        if parser.parse_expr(code)[0].op_name.startswith("DW_OP_reg")]
        expected = [(start, end, f"DW_OP_reg{REGISTER_NUMBERS[register]}")
                    for start, end, local, register in function.pin_ranges if local == index]
        assert expected and in_registers == expected, (variable.attributes["DW_AT_name"].value, entries)
        assert [e[0] for e in entries[1:]] == [e[1] for e in entries[:-1]]  # no gaps
        assert entries[0][0] == block.attributes["DW_AT_low_pc"].value
        assert entries[-1][1] == region.address + function.end
        slots = {code for _, _, code in entries if not parser.parse_expr(code)[0].op_name.startswith("DW_OP_reg")}
        assert slots == {locations.slot_address(index, 1)}


def absolute(entries: list) -> list[tuple[int, int, bytes]]:
    """A location list's (start, end, expression) entries with absolute addresses: every
    list we write starts with a base address selection entry."""
    assert isinstance(entries[0], BaseAddressEntry), "one relocated field per list"
    base = entries[0].base_address
    return [(base + e.begin_offset, base + e.end_offset, bytes(e.loc_expr)) for e in entries[1:]]


def test_malformed_dwarf_is_ignored_with_one_warning(c_programs):
    """Debug info must never stop a program: the module gets Wasm-level info instead."""
    data = bytearray(c_programs["O0"].read_bytes())
    info = data.index(b".debug_info") + len(".debug_info")
    data[info + 11:info + 4000] = bytes(range(256)) * 15 + bytes(3989 - 15 * 256)  # abbreviation codes that do not exist
    module, code, region = compiled(load_bytes(bytes(data)))
    warnings = []
    debug = module_debug_sections(module, code, region.address, "broken.wasm", warn=warnings.append)
    assert len(warnings) == 1 and warnings[0].startswith("ignoring the module's DWARF: ") and "\n" not in warnings[0]
    elf = ELFFile(io.BytesIO(jit_object(region.address, region.size, module_symbols(module, code), debug)))
    names = set(subprograms(elf.get_dwarf_info()))
    assert {"leaf", "mid", "checkpoint"} <= names
