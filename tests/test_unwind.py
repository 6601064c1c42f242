"""The unwind package: CFI bytes read back by pyelftools and readelf, the evaluator, the JIT
ELF objects, and the GDB JIT interface shim (without a debugger attached)."""

from __future__ import annotations

import ctypes
import io
import re
import struct
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from stackstitch.engine.compiler.frames import AFTER_PUSH_RBP, AT_CALL, RBP_FRAME, SAME_VALUE, CfaRule
from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Store
from stackstitch.engine.compiler.stubs import ENTRY_FRAME
from stackstitch.unwind import dwarf
from stackstitch.unwind import evaluate as evaluate_module
from stackstitch.unwind.cfi import CfiError, FrameDescription, build_eh_frame
from stackstitch.unwind.dwarf import Expression, breg, const, deref, plus, plus_uconst
from stackstitch.unwind.debuginfo import module_debug_sections
from stackstitch.unwind.elf import jit_object, module_symbols, stub_symbols
from stackstitch.unwind.elffile import (ET_REL, SHF_ALLOC, SHF_EXECINSTR, SHT_NOBITS, SHT_PROGBITS,
                                        ElfImage, Section)
from stackstitch.unwind.evaluate import (Row, UnwindError, UnwindTable, caller_registers,
                                         read_eh_frame, rows_from_descriptions)
from stackstitch.unwind.gdbjit import GdbJitRegistrar, jit_interface, register, unregister
from stackstitch.unwind.jitshim import JitCodeEntry

BASE = 0x7F12_3456_0000

# A continuation start stub in the style of OCaml's caml_runstack: the CFA is read from a
# parent link in a record that rbp points at; rbp and rbx are saved relative to it.
PARENT_CFA = breg("rbp", 24) + deref() + plus_uconst(16)
START_STUB = CfaRule(PARENT_CFA, 0, (("rbp", -16), ("rbx", breg("rbp", 8) + deref())))

NESTED_CALLS_WAT = """
(module
  (func $leaf (param i32) (result i32) local.get 0 i32.const 1 i32.add)
  (func $b (param i32) (result i32) local.get 0 call $leaf i32.const 2 i32.mul)
  (func $a (param i32) (result i32) local.get 0 i32.const 3 i32.add call $b)
  (func $main (export "main") (result i32) i32.const 5 call $a)
  (func (result i32) call $main)
  (func (export "anonymous") (result i32) call $main))
"""


def descriptions() -> list[FrameDescription]:
    """A plain function, an entry-like frame saving every callee-saved register, and a
    signal-frame start stub with expression rules, far from address 0."""
    plain = FrameDescription(BASE, BASE + 0x40, [(BASE, AT_CALL), (BASE + 1, AFTER_PUSH_RBP),
                                                 (BASE + 4, RBP_FRAME), (BASE + 0x3F, AT_CALL)])
    entry_rows = [(BASE + 0x40, AT_CALL), (BASE + 0x41, AFTER_PUSH_RBP), (BASE + 0x44, RBP_FRAME)]
    entry_rows += [(BASE + 0x46 + 2 * k, CfaRule("rbp", 16, ENTRY_FRAME.saved[:k + 2])) for k in range(5)]
    entry_rows += [(BASE + 0x400, CfaRule("rsp", 0))]  # beyond 256 bytes: advance_loc2
    entry = FrameDescription(BASE + 0x40, BASE + 0x500, entry_rows)
    start = FrameDescription(BASE + 0x500, BASE + 0x540, [(BASE + 0x500, AT_CALL), (BASE + 0x508, START_STUB),
                                                          (BASE + 0x530, CfaRule("rsp", 8))],
                             signal_frame=True)
    return [plain, entry, start]


def _distinct(table_rows: list[Row]) -> list[Row]:
    """Rows that change something (the writer drops rows equal to the previous one)."""
    out = []
    for row in table_rows:
        if not out or (row.cfa, row.saved) != (out[-1].cfa, out[-1].saved):
            out.append(row)
    return out


def _object_with_eh_frame(descs, tmp_path):
    frames = build_eh_frame(descs)
    image = ElfImage(ET_REL, [Section(".text", SHT_NOBITS, flags=SHF_ALLOC | SHF_EXECINSTR, address=BASE,
                                      size=0x540, align=16),
                              Section(".eh_frame", SHT_PROGBITS, frames.eh_frame, align=8)])
    path = tmp_path / "cfi.o"
    path.write_bytes(image.build())
    return path, frames


# ---- the CFI writer ----------------------------------------------------------------------

def test_pyelftools_reads_back_every_row():
    frames = build_eh_frame(descriptions())
    parsed = read_eh_frame(frames.eh_frame)
    expected = rows_from_descriptions(descriptions())
    assert [(f.start, f.end, f.signal_frame) for f in parsed] == [(f.start, f.end, f.signal_frame) for f in expected]
    for got, want in zip(parsed, expected):
        assert got.rows == _distinct(want.rows)


def _readelf_cell(rule) -> str:
    return f"c{rule:+d}" if isinstance(rule, int) else "exp"


def test_readelf_decodes_the_same_table(tmp_path, require_tool):
    """`readelf --debug-dump=frames-interp` prints one line per row: compare them all."""
    path, _ = _object_with_eh_frame(descriptions(), tmp_path)
    text = subprocess.run([require_tool("readelf"), "--debug-dump=frames-interp", str(path)], check=True,
                          capture_output=True, text=True).stdout
    entries = re.split(r"\n(?=[0-9a-f]{8} [0-9a-f]{16} [0-9a-f]{8} (?:CIE|FDE))", text)
    fdes = [e for e in entries if re.match(r"[0-9a-f]{8} [0-9a-f]{16} [0-9a-f]{8} FDE", e)]
    expected = rows_from_descriptions(descriptions())
    assert len(fdes) == len(expected)
    for block, table in zip(fdes, expected):
        lines = block.strip().splitlines()
        assert f"pc={table.start:016x}..{table.end:016x}" in lines[0]
        columns = lines[1].split()[2:]  # after LOC and CFA
        got = [line.split() for line in lines[2:] if re.match(r"[0-9a-f]{16} ", line)]
        rows = _distinct(table.rows)
        assert len(got) == len(rows)
        for cells, row in zip(got, rows):
            assert int(cells[0], 16) == row.address
            assert cells[1] == ("exp" if isinstance(row.cfa, Expression) else f"{row.cfa[0]}+{row.cfa[1]}")
            for column, cell in zip(columns, cells[2:]):
                name = "rip" if column == "ra" else column
                assert cell == (_readelf_cell(row.saved[name]) if name in row.saved else "u"), (column, row)


def test_readelf_shows_the_raw_instructions(tmp_path, require_tool):
    path, _ = _object_with_eh_frame(descriptions(), tmp_path)
    text = subprocess.run([require_tool("readelf"), "--debug-dump=frames", str(path)], check=True,
                          capture_output=True, text=True).stdout
    assert 'Augmentation:          "zRS"' in text and 'Augmentation:          "zR"' in text
    assert "DW_CFA_def_cfa_expression (DW_OP_breg6 (rbp): 24; DW_OP_deref; DW_OP_plus_uconst: 16)" in text
    assert "DW_CFA_expression: r3 (rbx) (DW_OP_breg6 (rbp): 8; DW_OP_deref)" in text
    assert "DW_CFA_advance_loc2" in text
    assert "ZERO terminator" in text


def test_eh_frame_hdr_is_a_sorted_absolute_table():
    descs = descriptions()[::-1]
    frames = build_eh_frame(descs, eh_frame_address=0x1000)
    version, ptr_enc, count_enc, table_enc = frames.eh_frame_hdr[:4]
    assert (version, ptr_enc, count_enc, table_enc) == (1, 0x04, 0x03, 0x04)
    eh_frame_ptr, count = struct.unpack_from("<QI", frames.eh_frame_hdr, 4)
    assert (eh_frame_ptr, count) == (0x1000, 3)
    table = [struct.unpack_from("<QQ", frames.eh_frame_hdr, 16 + 16 * k) for k in range(count)]
    assert [start for start, _ in table] == sorted(d.start for d in descs)
    for start, fde in table:
        at = fde - 0x1000
        assert struct.unpack_from("<Q", frames.eh_frame, at + 8)[0] == start  # initial_location


@pytest.mark.parametrize("rows, message", [
    ([(BASE + 0x10, AT_CALL), (BASE + 0x8, RBP_FRAME)], "before the previous row"),
    ([(BASE + 0x10, RBP_FRAME), (BASE + 0x8, AT_CALL)], "before the previous row"),
    ([(BASE + 0x40, AT_CALL)], "outside"),
    ([(BASE, CfaRule("rsp", 16, (("rbp", -12),)))], "not a multiple of 8"),
    ([(BASE, CfaRule("eax", 16))], "unknown CFA register"),
])
def test_rows_that_cannot_be_written_are_refused(rows, message):
    with pytest.raises(CfiError, match=message):
        build_eh_frame([FrameDescription(BASE, BASE + 0x40, rows)])


# ---- expressions and the evaluator --------------------------------------------------------

def _memory(words: dict[int, int]):
    def read(address: int, size: int) -> bytes:
        return words[address].to_bytes(8, "little")
    return read


def test_expressions_evaluate():
    regs = {"rbp": 0x1000, "rsp": 0x2000}
    read = _memory({0x1018: 0x5000})
    assert dwarf.evaluate(PARENT_CFA, regs, read) == 0x5010
    assert dwarf.evaluate(const(3) + const(40) + plus(), regs, read) == 43
    assert dwarf.evaluate(const(1000) + breg("rsp", -8) + plus(), regs, read) == 0x2000 - 8 + 1000
    assert dwarf.evaluate(Expression(b""), regs, read, push=[7]) == 7
    with pytest.raises(dwarf.ExpressionError, match="unsupported"):
        dwarf.evaluate(Expression(b"\x96"), regs, read)


def test_leb128_round_trips():
    for value in (0, 1, 63, 64, 127, 128, 1 << 40):
        assert dwarf.read_leb128(dwarf.uleb128(value), 0)[0] == value
    for value in (0, -1, 63, -64, -65, 64, -(1 << 40)):
        assert dwarf.read_leb128(dwarf.sleb128(value), 0, signed=True)[0] == value


def test_caller_registers_of_a_wasm_frame():
    row = rows_from_descriptions(descriptions())[0].rows[2]  # RBP_FRAME
    regs = {"rip": BASE + 8, "rsp": 0x7000, "rbp": 0x7040, "rbx": 11}
    caller = caller_registers(row, regs, _memory({0x7040: 0x7100, 0x7048: 0xABC}))
    assert caller == {"rip": 0xABC, "rsp": 0x7050, "rbp": 0x7100, "rbx": 11}


def test_caller_registers_through_the_start_stub_expressions():
    table = UnwindTable(read_eh_frame(build_eh_frame(descriptions()).eh_frame))
    regs = {"rip": BASE + 0x510, "rsp": 0x9000, "rbp": 0x9100}
    parent_sp = 0x3000
    memory = {0x9118: parent_sp, parent_sp: 0x3333, parent_sp + 8: 0x4444, 0x9108: 0x6000, 0x6000: 77}
    caller = table.caller_registers(regs, _memory(memory))
    assert caller == {"rip": 0x4444, "rsp": parent_sp + 16, "rbp": 0x3333, "rbx": 77}


def test_walk_stops_outside_known_code_and_does_not_adjust_after_a_signal_frame():
    table = UnwindTable(rows_from_descriptions(descriptions()))
    # Frame 0 in the start stub; its caller's pc is the first byte of the plain function,
    # which only an exact (unadjusted) lookup finds, and the plain function's caller is host code.
    memory = {0x9118: 0x3000, 0x3000: 0x3100, 0x3008: BASE, 0x9108: 0x6000, 0x6000: 1,
              0x3010: 0x1234}
    frames = list(table.walk({"rip": BASE + 0x510, "rsp": 0x9000, "rbp": 0x9100}, _memory(memory)))
    assert [f["rip"] for f in frames] == [BASE + 0x510, BASE, 0x1234]
    assert frames[2]["rsp"] == 0x3018


def test_registers_a_callee_keeps_reach_its_caller_through_the_bytes():
    """DW_CFA_same_value: a register the ABI lets a callee change that the callee's rules
    say it kept (as the bulk-memory stubs say of r8-r10) has the callee's value in the
    caller; one without a rule does not reach the caller."""
    kept = CfaRule("rsp", 8, (("r8", SAME_VALUE), ("xmm3", SAME_VALUE)))
    frames = build_eh_frame([FrameDescription(BASE, BASE + 0x10, [(BASE, kept)])])
    assert bytes([0x08, 8]) in frames.eh_frame and bytes([0x08, 17 + 3]) in frames.eh_frame
    table = UnwindTable(read_eh_frame(frames.eh_frame))
    regs = {"rip": BASE + 4, "rsp": 0x7000, "r8": 5, "r9": 6, "xmm3": 7}
    caller = table.caller_registers(regs, _memory({0x7000: 0xABC}))
    assert caller == {"rip": 0xABC, "rsp": 0x7008, "r8": 5, "xmm3": 7}
    assert evaluate_module.SAME_VALUE == SAME_VALUE  # the engine's rows go in as they are
    rows = rows_from_descriptions([FrameDescription(BASE, BASE + 0x10, [(BASE, kept)])])
    assert UnwindTable(rows).caller_registers(regs, _memory({0x7000: 0xABC})) == caller


def test_missing_register_is_an_unwind_error():
    row = Row(BASE, ("rbp", 16), {"rip": -8})
    with pytest.raises(UnwindError, match="rbp"):
        caller_registers(row, {"rip": BASE, "rsp": 0}, _memory({}))


# ---- JIT objects ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compiled_module():
    captured = []
    store = Store(code_observers=[lambda module, compiled, region: captured.append((module, compiled, region))])
    instance = store.instantiate(load_bytes(NESTED_CALLS_WAT.encode(), "calls.wat"), {})
    assert instance.invoke("main", []) == [18]
    return store, *captured[0]


def test_module_object_has_symbols_unwind_and_line_info(compiled_module, tmp_path):
    store, module, compiled, region = compiled_module
    debug = module_debug_sections(module, compiled, region.address, "/src/calls.wasm")
    image = jit_object(region.address, region.size, module_symbols(module, compiled), debug, "/src/calls.wasm")
    elf = ELFFile(io.BytesIO(image))
    text = elf.get_section_by_name(".text")
    assert (text["sh_type"], text["sh_addr"], text["sh_size"]) == ("SHT_NOBITS", region.address, region.size)
    symbols = {s.name: s for s in elf.get_section_by_name(".symtab").iter_symbols() if s["st_info"]["type"] == "STT_FUNC"}
    assert set(symbols) == {"leaf", "b", "a", "main", "wasm-function[4]", "anonymous"}
    for f in compiled.functions:
        symbol = symbols[module.func_name(f.index)]
        assert (symbol["st_value"], symbol["st_size"]) == (f.start, f.end - f.start)

    tables = read_eh_frame(elf.get_section_by_name(".eh_frame").data())
    expected = rows_from_descriptions([FrameDescription(region.address + f.start, region.address + f.end,
                                                        [(region.address + a, r) for a, r in f.cfi_rows])
                                       for f in compiled.functions])
    assert [t.rows for t in tables] == [_distinct(t.rows) for t in expected]

    dwarf_info = elf.get_dwarf_info()
    unit = next(dwarf_info.iter_CUs())
    assert unit.get_top_DIE().attributes["DW_AT_name"].value == b"/src/calls.wasm"
    entries = [e.state for e in dwarf_info.line_program_for_CU(unit).get_entries() if e.state]
    mapped = {e.address: e.line for e in entries if not e.end_sequence}
    for f in compiled.functions:
        body = module.code[f.index - module.num_imported_funcs]
        for native, offset in f.addr_map:
            if native in mapped:
                assert mapped[native] == offset
        assert all(body.code_start <= mapped[a] <= body.code_end
                   for a in mapped if region.address + f.start <= a < region.address + f.end)
        assert region.address + f.start in mapped


def test_readelf_accepts_the_module_object(compiled_module, tmp_path, require_tool):
    store, module, compiled, region = compiled_module
    path = tmp_path / "calls.o"
    debug = module_debug_sections(module, compiled, region.address, "calls.wasm")
    path.write_bytes(jit_object(region.address, region.size, module_symbols(module, compiled), debug, "calls.wasm"))
    result = subprocess.run([require_tool("readelf"), "-W", "-a", "--debug-dump=decodedline", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "Warning" not in result.stderr, result.stderr
    assert re.search(r"FUNC +GLOBAL +DEFAULT +1 leaf", result.stdout)
    assert "calls.wasm" in result.stdout


def test_stub_object_names_the_stubs(compiled_module):
    store = compiled_module[0]
    elf = ELFFile(io.BytesIO(jit_object(store.stubs.region.address, store.stubs.region.size,
                                        stub_symbols(store.stubs))))
    names = {s.name for s in elf.get_section_by_name(".symtab").iter_symbols()}
    assert {"stackstitch_entry", "stackstitch_trap", "stackstitch_host_call"} <= names
    assert elf.get_section_by_name(".debug_line") is None
    described = [s for s in store.stubs.symbols if s.cfi_rows]
    assert len(read_eh_frame(elf.get_section_by_name(".eh_frame").data())) == len(described)


# ---- the GDB JIT interface ---------------------------------------------------------------

def _entries() -> list[int]:
    """Addresses of the registered entries, following `next` from the descriptor."""
    out, at = [], jit_interface().descriptor.first_entry
    while at:
        entry = JitCodeEntry.from_address(at)
        assert entry.prev == (out[-1] if out else 0)
        out.append(at)
        at = entry.next
    return out


def test_shim_exports_a_version_1_descriptor():
    jit = jit_interface()
    assert jit.descriptor.version == 1
    assert jit.path.is_file()
    elf = ELFFile(io.BytesIO(jit.path.read_bytes()))
    assert elf["e_type"] == "ET_DYN"
    names = {s.name for s in elf.get_section_by_name(".dynsym").iter_symbols()}
    assert {"__jit_debug_register_code", "__jit_debug_descriptor"} <= names
    jit.notify()  # just returns


def test_register_and_unregister_keep_the_list_linked():
    before = _entries()
    first, second, third = (register(bytes([k]) * 64) for k in range(3))
    assert _entries()[:3] == [ctypes.addressof(r.entry) for r in (third, second, first)]
    unregister(second)
    assert _entries()[:2] == [ctypes.addressof(third.entry), ctypes.addressof(first.entry)]
    unregister(third)
    unregister(first)
    unregister(first)  # twice is harmless
    assert _entries() == before
    assert jit_interface().descriptor.action_flag == 0


def test_registrar_registers_stubs_once_and_one_object_per_module():
    entries_before = jit_interface().descriptor.first_entry
    registrar = GdbJitRegistrar()
    store = Store()
    store.add_code_observer(registrar)
    registrar.stubs_placed(store.stubs)  # a second time changes nothing
    module = load_bytes(NESTED_CALLS_WAT.encode(), "calls.wat")
    store.instantiate(module, {})
    store.instantiate(module, {})  # compiled once per store
    assert len(registrar.registrations) == 2
    elf = ELFFile(io.BytesIO(registrar.registrations[1].image.raw))
    assert next(elf.get_dwarf_info().iter_CUs()).get_top_DIE().attributes["DW_AT_name"].value == b"wasm-module.wasm"
    store.close()  # the store's code goes away: every object is unregistered
    assert registrar.registrations == []
    assert jit_interface().descriptor.first_entry == entries_before
