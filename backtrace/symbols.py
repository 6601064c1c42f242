"""Symbolizer: native pcs, function references and tag records to Wasm names and offsets,
and to source positions where the module carries DWARF.

Offsets follow Wasmtime's convention so reports can be compared frame by frame: the
trapping instruction in the innermost frame, the call/resume/switch instruction in outer
frames. Every pc the walker has is a return address (the trap stub is called from the
trap site too), so both cases come down to looking up pc - 1 in the address map.

Source positions come from the module's own DWARF (`unwind.sourcepositions`), read on
first use: pyelftools is imported only for a trap in a module that has `.debug_info`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from stackstitch.engine.frontend.instructions import BYTE, BodyReader


@dataclass(frozen=True)
class Location:
    func_index: int
    func_name: str
    wasm_offset: int
    # unwind.sourcepositions.SourcePosition, innermost first: the functions inlined at the
    # offset, then the function's own position; empty without DWARF
    positions: tuple = ()


class Symbolizer:
    """Lookups against one store's code map and instances, cached: a deep recursion
    repeats a handful of return addresses many thousand times."""

    def __init__(self, store):
        self.store = store
        self._locations: dict[int, Location | None] = {}
        self._native_offsets: dict[int, list[int]] = {}  # id(CompiledFunction) -> addr_map keys
        self._modules: dict[int, object] = {}  # code region address -> Module
        self._sources: dict[int, object] = {}  # code region address -> SourcePositions or None
        self._tag_names: dict[int, str] | None = None

    def locate(self, pc: int) -> Location | None:
        """The Wasm instruction before return address `pc`, or None outside Wasm code."""
        try:
            return self._locations[pc]
        except KeyError:
            pass
        location = None
        found = self.store.code_at(pc - 1)
        if found is not None:
            function, code_base = found
            offsets = self._native_offsets.get(id(function))
            if offsets is None:
                offsets = self._native_offsets[id(function)] = [n for n, _ in function.addr_map]
            k = bisect.bisect_right(offsets, pc - 1 - code_base) - 1
            wasm_offset = function.addr_map[max(k, 0)][1]
            location = Location(function.index, self.function_name(function.index, code_base),
                                wasm_offset, self.source_positions(code_base, wasm_offset))
        self._locations[pc] = location
        return location

    def module(self, code_base: int):
        """The module whose code region starts at `code_base` (all instances of a module
        share its code), so no frame memory is read for names."""
        module = self._modules.get(code_base)
        if module is None:
            self._modules = {i.code_region.address: i.module for i in self.store.instances.values()}
            module = self._modules.get(code_base)
        return module

    def function_name(self, func_index: int, code_base: int) -> str:
        module = self.module(code_base)
        return module.func_name(func_index) if module is not None else f"wasm-function[{func_index}]"

    def source_positions(self, code_base: int, wasm_offset: int) -> tuple:
        """Where the instruction at `wasm_offset` is in the module's source, innermost
        first; empty if the module has no DWARF for it (or DWARF that cannot be read)."""
        if code_base not in self._sources:
            module = self.module(code_base)
            sources = None
            if module is not None and ".debug_info" in module.custom_sections:
                from stackstitch.unwind.sourcepositions import SourcePositions  # pyelftools: ~40 ms
                from stackstitch.unwind.wasmdwarf import PARSE_ERRORS, read_wasm_dwarf
                try:
                    wasm = read_wasm_dwarf(module)
                except PARSE_ERRORS:
                    wasm = None
                sources = SourcePositions(wasm) if wasm is not None else None
            self._sources[code_base] = sources
        sources = self._sources[code_base]
        if sources is None:
            return ()
        return tuple(sources.at(wasm_offset - sources.wasm.code_start))

    def func_ref_name(self, func_ref: int) -> str:
        """The name of the function a funcref record (a continuation's CR_FUNC) points at."""
        func = self.store.funcs_by_ref.get(func_ref)
        return func.name if func is not None else f"<unknown function 0x{func_ref:x}>"

    def tag_name(self, tag_address: int) -> str:
        """The tag's name (`Module.tag_name`) in the first instance that has it."""
        if self._tag_names is None:
            names: dict[int, str] = {}
            for instance in self.store.instances.values():
                for i, tag in enumerate(instance.tags):
                    names.setdefault(tag.address, instance.module.tag_name(i))
            self._tag_names = names
        return self._tag_names.get(tag_address, f"<unknown tag 0x{tag_address:x}>")

    def suspended_tag(self, vmctx: int, wasm_offset: int) -> str | None:
        """The tag named by the `suspend` or `switch` instruction at `wasm_offset`."""
        instance = self.store.instances.get(vmctx)
        if instance is None:
            return None
        code = instance.module.data
        if wasm_offset >= len(code) or code[wasm_offset] not in (BYTE["suspend"], BYTE["switch"]):
            return None
        _, op, immediates = BodyReader(code, wasm_offset).instruction()
        index = immediates[0] if op.name == "suspend" else immediates[1]  # switch: type, tag
        if index >= len(instance.tags):
            return None
        return self.tag_name(instance.tags[index].address)
