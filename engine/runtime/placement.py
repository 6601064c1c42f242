"""A store's compiled modules: compiled (or taken from the code cache), placed in
executable memory, shown to the code observers, and found again by pc."""

from __future__ import annotations

import bisect

from .. import layout as L
from ..compiler.common import NUM_BUILTINS
from ..compiler.compiled import CompiledModule, code_options
from ..frontend.module import Module
from .codemem import CodeRegion

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from ..codecache import CacheEntry, CodeCache


class PlacedCode:
    """Each module is compiled once per store; `observers` is the store's list of code
    observers (see `Store.add_code_observer`), and `announce(module, compiled, region)` is
    told of placed code before them."""

    def __init__(self, observers: list, libcall: bool, tracing: bool, cache: CodeCache | None,
                 announce):
        self.observers = observers
        self.libcall = libcall
        self.tracing = tracing
        self.cache = cache
        self.announce = announce
        self.code_options = code_options(libcall, tracing)
        self._modules: dict[int, tuple] = {}
        self._bases: list[int] = []  # sorted addresses of the placed code regions
        # per region, in that order: (region, its functions by start, their starts in it)
        self._placed: list[tuple[CodeRegion, list, list[int]]] = []

    def compiled(self, module: Module, type_ids: list[int], vm: L.VmctxLayout) -> tuple:
        """(CompiledModule, CodeRegion) of `module`, whose types have the store's canonical
        `type_ids` and whose instances use the layout `vm`."""
        entry = self._modules.get(id(module))
        if entry is None:
            cached = self.cache.entry(module.data, self.code_options) if self.cache else None
            compiled = cached.compiled() if cached is not None else None
            if compiled is None:
                from ..compiler.codegen import ModuleCompiler  # not needed when the cache has the code
                compiled = ModuleCompiler(module, type_ids, vm, libcall=self.libcall,
                                          tracing=self.tracing).compile()
                if cached is not None:
                    cached.store(compiled)
            compiled = compiled.placed_for(type_ids, vm)
            region = CodeRegion(compiled.code)
            self._add_lookup(compiled, region)
            self.announce(module, compiled, region)
            for observer in self.observers:
                _notify(observer, module, compiled, region, cached)
            entry = (module, compiled, region)  # the module too: it keeps id(module) unique
            self._modules[id(module)] = entry
        _, compiled, region = entry
        return compiled, region

    def _add_lookup(self, compiled: CompiledModule, region: CodeRegion) -> None:
        """Make `code_at` find the functions of code placed in `region`: one entry per
        region, whose functions are already in code order unless made otherwise."""
        functions = compiled.functions
        starts = [f.start for f in functions]
        if starts != sorted(starts):
            functions = sorted(functions, key=lambda f: f.start)
            starts = [f.start for f in functions]
        k = bisect.bisect(self._bases, region.address)
        self._bases.insert(k, region.address)
        self._placed.insert(k, (region, functions, starts))

    def code_at(self, address: int):
        """(CompiledFunction, its module's code base) for a pc in compiled code, else None."""
        k = bisect.bisect(self._bases, address) - 1
        if k >= 0:
            region, functions, starts = self._placed[k]
            offset = address - region.address
            j = bisect.bisect(starts, offset) - 1
            if j >= 0 and offset < functions[j].end:
                return functions[j], region.address
        return None


def _notify(observer, module: Module, compiled: CompiledModule, region: CodeRegion,
            cached: CacheEntry | None) -> None:
    """Show a module's code to an observer, through its cached payload when it has one."""
    name = getattr(observer, "cache_payload_name", None)
    if cached is None or name is None:
        observer(module, compiled, region)
        return
    payload = cached.payload(name)
    if payload is not None and observer.load_payload(module, compiled, region, payload):
        return
    observer(module, compiled, region)
    payload = observer.save_payload(module, compiled, region)
    if payload is not None:
        cached.store_payload(name, payload)


def vmctx_layout(module: Module) -> L.VmctxLayout:
    """Where an instance of `module` keeps its functions, globals, tables, builtins,
    memories, tags and segments (the vmctx generated code reads)."""
    return L.VmctxLayout(module.num_imported_funcs + len(module.funcs),
                         len(module.imports_of("global")) + len(module.globals),
                         len(module.imports_of("table")) + len(module.tables), NUM_BUILTINS,
                         len(module.imports_of("memory")) + len(module.memories),
                         len(module.imports_of("tag")) + len(module.tags),
                         len(module.datas), len(module.elements))
