"""The DWARF sections of a module's JIT object.

If the module carries DWARF (a C, Rust or Zig program built with `-g`, or WAT assembled
with `wasm-tools parse -g`), it is translated into native terms (`translate`). Functions
it does not describe get Wasm-level info (`wasmlevel`): their parameters and locals, and
lines that are Wasm module offsets, in a compile unit named after the module.
"""

from __future__ import annotations

from .codemap import CodeMap, value_type_name
from .dwarfout import FORM_REFERENCE, DebugInfoWriter, Die
from .translate import ModuleFacts, Translation
from .wasmdwarf import read_wasm_dwarf
from .wasmlevel import wasm_unit

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Callable


def module_facts(module, compiled) -> ModuleFacts:
    global_types = [value_type_name(i.desc.valtype) for i in module.imports_of("global")]
    global_types += [value_type_name(g.type.valtype) for g in module.globals]
    layout = compiled.vm_layout
    return ModuleFacts(global_types, layout.global_ if layout is not None else None, module.local_names)


def module_debug_sections(module, compiled, code_address: int, source_path: str,
                          translate_dwarf: bool = True,
                          warn: Callable[[str], None] | None = None) -> dict[str, bytes]:
    """Section name -> contents, for the module's code placed at `code_address`; the
    module's own DWARF is used if it has some and `translate_dwarf` says so. DWARF that
    cannot be read or translated is ignored (`warn` is told why, in one line): debug info
    must never stop a program from running."""
    code_start = module.code_section_start or 0
    code = CodeMap(module, compiled, code_address, code_start)
    facts = module_facts(module, compiled)
    if translate_dwarf:
        try:
            wasm = read_wasm_dwarf(module)
            if wasm is not None:
                return _sections(code, facts, source_path, Translation(wasm, code, facts, DebugInfoWriter()))
        except Exception as error:  # malformed DWARF can fail anywhere in pyelftools or here
            if warn is not None:
                warn(f"ignoring the module's DWARF: {type(error).__name__}: {' '.join(str(error).split())}")
    return _sections(code, facts, source_path, None)


def _sections(code: CodeMap, facts: ModuleFacts, source_path: str, translation: Translation | None) -> dict:
    """The translated units (if any), then a Wasm-level unit for the functions they leave."""
    writer = translation.writer if translation is not None else DebugInfoWriter()
    roots: list[Die] = []
    described: set[int] = set()
    if translation is not None:
        roots = translation.run()
        described = translation.described
        _drop_dangling_references(roots)
    rest = [f for f in code.functions if f.index not in described]
    if rest:
        roots.append(wasm_unit(writer, rest, source_path, facts.local_names, code.code_start))
    for root in roots:
        writer.add_unit(root)
    return writer.sections()


def _drop_dangling_references(roots: list[Die]) -> None:
    """References to DIEs the translation left out (never filled in) are removed."""
    stack = list(roots)
    while stack:
        die = stack.pop()
        if any(form == FORM_REFERENCE and value.tag == 0 for _, form, value in die.attributes):
            die.attributes = [a for a in die.attributes if not (a[1] == FORM_REFERENCE and a[2].tag == 0)]
        stack += die.children

