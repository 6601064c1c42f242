"""The runtime: stores, instances, memories, tables, globals, and calls into native code.

Native state lives in ctypes buffers owned by Python objects (kept alive by the Store),
laid out as `layout` describes, so generated code and out-of-process readers see the
same bytes.
"""

from __future__ import annotations

import ctypes
import struct
from array import array

from .. import layout as L
from ..compiler.common import (B_CONT_ATTACH, B_CONT_NEW, B_TABLE_RESERVE, B_THROW, B_THROW_INTO,
                               B_THROW_REF, simple_type)
from ..compiler.stubs import build_stubs
from ..frontend.module import Module
from ..frontend.types import (ContType, FuncType, GlobalType, Limits, MemoryType, RefType, SubType,
                              TableType)
from .codemem import PROT_NONE, READ_WRITE, CodeRegion, protect, reserve
from .memories import Memory, MemoryLimitError, Table
from .placement import PlacedCode, vmctx_layout
from .continuations import DEFAULT_CONT_STACK_SIZE, ContinuationPool
from .debugroot import publish as publish_debug_root
from .errors import Exhaustion, HostExit, LinkError, Trap, WasmException, host_failure
from .exceptions import Unwind, Unwinder

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from ..codecache import CodeCache

MASK64 = (1 << 64) - 1
DEFAULT_STACK_SIZE = 8 << 20
HOST_HEADROOM = 512 << 10  # stack kept free below Wasm frames for host calls (CPython)
MAIN_STACK_GUARD = 64 << 10

# What the host trampoline calls (see stubs.py): CPython's own C API, not a ctypes callback,
# whose libffi closure would leave a writable and executable page in the process.
_PY_CALL = ctypes.cast(ctypes.pythonapi.PyObject_CallNoArgs, ctypes.c_void_p).value
_PY_DECREF = ctypes.cast(ctypes.pythonapi.Py_DecRef, ctypes.c_void_p).value


def _mask(ty: str) -> int:
    return 0xFFFFFFFF if ty in ("i32", "f32") else MASK64


# ---- external values ----------------------------------------------------------------------

class Func:
    """A function: defined in an instance, or a host function. `ref` is the address of its
    record (layout.FR_*) in `records`, an array that may hold other functions' records too
    (an instance's are one array) and lives as long as the function."""

    def __init__(self, store: "Store", records: ctypes.Array, ref: int, functype: FuncType,
                 type_id: int, name: str):
        self.store = store
        self.records = records
        self.ref = ref
        self.type = functype
        self.type_id = type_id
        self.name = name

    @property
    def record(self) -> ctypes.Array:
        """The words of its record (a view, valid while the function lives)."""
        return (ctypes.c_uint64 * (L.FUNCREF_SIZE // 8)).from_address(self.ref)

    def __call__(self, *raw_args: int) -> list[int]:
        return self.store.call(self, list(raw_args))


class Global:
    def __init__(self, gtype: GlobalType, raw: int):
        self.type = gtype
        self.cell = ctypes.c_uint64(raw & MASK64)

    def get(self) -> int:
        return self.cell.value & _mask(simple_type(self.type.valtype))

    def set(self, raw: int):
        self.cell.value = raw & MASK64


class Tag:
    """A tag; its identity in native code is the address of its record."""

    def __init__(self, ttype: FuncType, type_id: int):
        self.type = ttype
        self.type_id = type_id
        self.record = (ctypes.c_uint64 * 2)(type_id, 0)
        self.address = ctypes.addressof(self.record)


def read_words(address: int, count: int) -> tuple[int, ...]:
    """Words of this process's memory (as `stackwalk.StoreStacks` reads them: the walker
    loads only when a trap or a throw needs it)."""
    return tuple((ctypes.c_uint64 * count).from_address(address))


def read_word(address: int) -> int:
    return ctypes.c_uint64.from_address(address).value


# ---- the store ------------------------------------------------------------------------------

class Store:
    """Owns code, native state and the Wasm main stack; everything of one run."""

    def __init__(self, stack_size: int = DEFAULT_STACK_SIZE, switching: str = "native",
                 code_observers: list | None = None, cont_stack_size: int = DEFAULT_CONT_STACK_SIZE,
                 trap_observers: list | None = None, trace_events: int = 0,
                 code_cache: CodeCache | None = None):
        """`trace_events`: the size of the ring tracing switches (0: no tracing code);
        `code_cache`: where compiled code is kept between runs (engine/codecache.py)."""
        self.switching = switching
        # Called as observer(module, compiled, region) for each module compiled: debugger
        # registration and perf maps hook in here (see add_code_observer).
        self.code_observers: list = []
        # Called as observer(store, error) when a trap or an uncaught exception is about to
        # reach the embedder, while its stacks are intact: trap reports hook in here.
        self.trap_observers: list = list(trap_observers or ())
        self.stubs = build_stubs(CodeRegion, tracing=trace_events > 0)
        self.runtime = (ctypes.c_uint64 * (L.RUNTIME_BLOCK_SIZE // 8))()
        self.runtime_address = ctypes.addressof(self.runtime)
        self.runtime_words = memoryview(self.runtime).cast("B").cast("Q")  # faster to index
        if stack_size < HOST_HEADROOM + (64 << 10):
            raise ValueError(f"stack size must be at least {(HOST_HEADROOM >> 10) + 64} KiB")
        self.stack_size = stack_size
        # Below the Wasm main stack, an inaccessible guard: host code that runs off the end
        # of its headroom faults instead of writing over a neighbouring mapping.
        self.stack_lo = reserve(MAIN_STACK_GUARD + stack_size, PROT_NONE) + MAIN_STACK_GUARD
        protect(self.stack_lo, stack_size, READ_WRITE)
        r = self.runtime
        r[L.RT_STACK_LO // 8] = self.stack_lo
        r[L.RT_STACK_HI // 8] = self.stack_lo + stack_size
        r[L.RT_STACK_SPAN // 8] = stack_size
        r[L.RT_STACK_LIMIT // 8] = r[L.RT_MAIN_LIMIT // 8] = self.stack_lo + HOST_HEADROOM
        r[L.RT_START_STUB // 8] = self.stubs.start_stub
        r[L.RT_SEARCH_STUB // 8] = self.stubs.search_stub
        r[L.RT_MERGE_STUB // 8] = self.stubs.merge_stub
        r[L.RT_LIBCALL_SWITCH // 8] = self.stubs.libcall_switch
        r[L.RT_SWITCH_STUBS // 8:L.RT_SWITCH_STUBS // 8 + len(self.stubs.switch_stubs)] = self.stubs.switch_stubs
        r[L.RT_PY_CALL // 8] = _PY_CALL
        r[L.RT_PY_DECREF // 8] = _PY_DECREF
        self.continuations = ContinuationPool(self.runtime, cont_stack_size, self.stubs.start_stub)
        self.trace_ring = None
        if trace_events:
            from .tracing import TraceRing  # only a tracing store loads it
            self.trace_ring = TraceRing(self.runtime, trace_events, self.stubs.read_tsc)
        for observer in code_observers or ():
            self.add_code_observer(observer)
        self.debug_record = None  # see publish_debug_root
        self.type_registry: dict = {}
        self.funcs_by_ref: dict[int, Func] = {}
        self._extern_objects: dict[int, object] = {}
        self._extern_ids: dict = {}
        self._pending_error: BaseException | None = None
        self.code = PlacedCode(self.code_observers, switching == "libcall", trace_events > 0,
                               code_cache, announce=self._announce_code)
        self.instances: dict[int, Instance] = {}  # by vmctx address
        self.unwinder = Unwinder(self)

    # -- types --

    def canonical_type_ids(self, module: Module) -> list[int]:
        """Canonical ids for a module's types: equal iff the types are iso-recursively equal."""
        ids = [0] * len(module.types)
        for group in module.rec_groups or [_single_group(i, t) for i, t in enumerate(module.types)]:
            start, n = group.start, len(group.types)

            def canon(x):
                if isinstance(x, RefType) and isinstance(x.heap, int):
                    h = x.heap
                    return ("ref", x.nullable, ("rec", h - start) if start <= h < start + n else ids[h])
                if isinstance(x, ContType):
                    h = x.func_type
                    return ("cont", ("rec", h - start) if start <= h < start + n else ids[h])
                if isinstance(x, SubType):
                    sups = tuple(("rec", s - start) if start <= s < start + n else ids[s]
                                 for s in x.supertypes)
                    return ("sub", x.final, sups, canon(x.composite))
                if hasattr(x, "_fields"):  # another type (types.py): its kind and fields
                    return (type(x).__name__,) + tuple(canon(field) for field in x)
                if isinstance(x, (tuple, list)):
                    return tuple(canon(e) for e in x)
                return x

            key = tuple(canon(t) for t in group.types)
            for k in range(n):
                ids[start + k] = self.type_registry.setdefault((key, k), len(self.type_registry) + 1)
        return ids

    def functype_id(self, ft: FuncType) -> int:
        key = (("sub", True, (), ("FuncType", tuple(ft.params), tuple(ft.results))),)
        return self.type_registry.setdefault((key, 0), len(self.type_registry) + 1)

    # -- references --

    def extern_ref(self, obj) -> int:
        key = (type(obj), obj)
        raw = self._extern_ids.get(key)
        if raw is None:
            raw = len(self._extern_ids) + 1
            self._extern_ids[key] = raw
            self._extern_objects[raw] = obj
        return raw

    def extern_value(self, raw: int):
        return self._extern_objects.get(raw)

    # -- construction --

    def new_memory(self, mtype: MemoryType) -> Memory:
        try:
            return Memory(mtype)
        except MemoryLimitError as e:
            raise LinkError(str(e)) from None

    def new_table(self, ttype: TableType, init_raw: int = 0) -> Table:
        return Table(ttype, init_raw)

    def new_global(self, gtype: GlobalType, raw: int) -> Global:
        return Global(gtype, raw)

    @staticmethod
    def func_records(codes: list[int], vmctx: int, type_ids: list[int],
                     indices: list[int]) -> ctypes.Array:
        """Function records (layout.FR_*) one after another, of functions of one vmctx
        whose code addresses, canonical type ids and indices are listed in order; filled a
        column at a time, as an instance can have thousands."""
        width = L.FUNCREF_SIZE // 8
        words = array("Q", bytes(8 * width * len(codes)))
        for at, column in ((L.FR_CODE, codes), (L.FR_VMCTX, [vmctx] * len(codes)),
                           (L.FR_TYPE_ID, type_ids), (L.FR_FUNC_INDEX, indices)):
            words[at // 8::width] = array("Q", column)
        return (ctypes.c_uint64 * max(len(words), 1)).from_buffer_copy(words.tobytes() or bytes(8))

    def host_function(self, functype: FuncType, pyfunc, name: str = "host", frame: bool = False,
                      fast_path: int | None = None) -> Func:
        """Expose a Python callable as a Wasm function (raw values in and out).

        With `frame`, pyfunc gets the host trampoline's frame address first: [frame] is the
        calling Wasm frame's rbp and [frame+8] the return address into it. `fast_path`:
        native code Wasm calls instead, which goes on to the host trampoline for what it
        does not do itself; its block (`func.host_block`) has the HB_FAST_* fields."""
        nparams, nresults = len(functype.params), len(functype.results)
        if max(nparams, nresults) > L.HOST_WORDS:
            raise ValueError(f"host function {name}: more than {L.HOST_WORDS} parameters or results")
        # i32 and f32 arguments are the low half of their words.
        arguments = struct.Struct("<" + "".join("I4x" if _mask(simple_type(t)) == 0xFFFFFFFF else "Q"
                                                for t in functype.params))
        runtime, words = self.runtime, self.runtime_words
        first_word = L.RT_HOST_WORDS // 8
        store = self

        def call_from_wasm():
            """What the host trampoline calls: returns None, or sets RT_HOST_STATUS."""
            try:
                args = arguments.unpack_from(runtime, L.RT_HOST_WORDS)
                if frame:
                    result = pyfunc(words[L.RT_HOST_ARGS // 8] - 16, *args)
                else:
                    result = pyfunc(*args)
                if nresults == 1 and isinstance(result, int):
                    words[first_word] = result & MASK64
                    return
                if nresults and (not isinstance(result, (list, tuple)) or len(result) != nresults):
                    raise Trap(f"host function {name} returned {result!r}, expected {nresults} results")
                for i in range(nresults):
                    words[first_word + i] = result[i] & MASK64
                return
            except Unwind as jump:
                words[L.RT_UNWIND_SP // 8], words[L.RT_UNWIND_FP // 8], words[L.RT_UNWIND_PC // 8] = \
                    jump.sp, jump.fp, jump.pc
                words[L.RT_HOST_STATUS // 8] = L.HOST_UNWIND
                return
            except BaseException as exc:  # KeyboardInterrupt too: call() re-raises it
                store._pending_error = host_failure(exc, name)
            words[L.RT_HOST_STATUS // 8] = L.HOST_TRAP

        size = L.HOST_BLOCK_SIZE if fast_path is None else L.FAST_HOST_BLOCK_SIZE
        block = (ctypes.c_uint64 * (size // 8))()
        block[L.VM_RUNTIME // 8] = self.runtime_address
        block[L.VM_TRAP_STUB // 8] = self.stubs.trap_stub
        block[L.VM_HOST_CALLABLE // 8] = id(call_from_wasm)
        block[L.HB_NPARAMS // 8] = nparams
        block[L.HB_NRESULTS // 8] = nresults
        type_id = self.functype_id(functype)
        code = self.stubs.host_trampoline if fast_path is None else fast_path
        records = self.func_records([code], ctypes.addressof(block), [type_id], [0])
        func = Func(self, records, ctypes.addressof(records), functype, type_id, name)
        func.host_block = block
        func.host_callable = call_from_wasm  # the block holds no reference of its own
        self.funcs_by_ref[func.ref] = func
        return func

    # -- instantiation --

    def instantiate(self, module: Module, imports: dict, name: str | None = None) -> "Instance":
        return Instance(self, module, imports, name)

    @property
    def code_options(self) -> str:
        """The options this store compiles with that change the code (a cache key part)."""
        return self.code.code_options

    def compile(self, module: Module) -> tuple:
        """Compile (or find in the cache) and place a module's code without instantiating
        it: (CompiledModule, CodeRegion). `stackstitch compile` fills the cache this way."""
        return self.compiled(module, self.canonical_type_ids(module), vmctx_layout(module))

    def compiled(self, module: Module, type_ids: list[int], vm: L.VmctxLayout) -> tuple:
        return self.code.compiled(module, type_ids, vm)

    def _announce_code(self, module: Module, compiled, region: CodeRegion):
        """New code goes into the debug root before debuggers hear of it, so that a
        debugger that stops there finds its event sites."""
        if self.debug_record is not None:
            self.debug_record.add_module(module, compiled, region)

    def publish_debug_root(self, root_pointer: ctypes.c_uint64):
        """Describe this store in the process's debug root, for out-of-process readers (the
        gdb plugin; DEBUG_ROOT.md); `root_pointer` is where readers find the root."""
        self.debug_record = publish_debug_root(self, root_pointer)
        self.continuations.on_new_slab = self.debug_record.slabs_changed
        for instance in self.instances.values():
            self.debug_record.add_instance(instance)

    def add_code_observer(self, observer):
        """Tell `observer` about all code from now on: the stubs at once (its optional
        `stubs_placed(stubs)`), then each module as it is compiled.

        With a code cache, an observer may keep what it derives from a module there, to
        skip the work next time: it names its payload (`cache_payload_name`, lower-case
        letters, digits and dashes), and the store asks it for the payload after calling
        it (`save_payload(module, compiled, region) -> bytes | None`) and, when one is
        cached, offers it instead of calling it (`load_payload(module, compiled, region,
        payload) -> bool`; False: call me as usual). The payload is stored under the code's
        key and checked like the code; placing code at another address, other settings
        of the observer and its own version are the observer's to handle."""
        self.code_observers.append(observer)
        if hasattr(observer, "stubs_placed"):
            observer.stubs_placed(self.stubs)

    def close(self):
        """The store's code is going away: observers that registered it (debuggers, perf
        files) let go of it. The store must not run code afterwards."""
        for observer in self.code_observers:
            if hasattr(observer, "close"):
                observer.close()
        self.code_observers.clear()

    def code_at(self, address: int):
        """(CompiledFunction, its module's code base) for a pc in compiled code, else None."""
        return self.code.code_at(address)

    # -- calling --

    def call(self, func: Func, raw_args: list[int]) -> list[int]:
        ft = func.type
        if len(raw_args) != len(ft.params):
            raise TypeError(f"{func.name} expects {len(ft.params)} arguments, got {len(raw_args)}")
        n = max(len(ft.params), len(ft.results), L.MIN_CALL_AREA)
        words = (ctypes.c_uint64 * n)()
        for i, v in enumerate(raw_args):
            words[i] = v & MASK64
        rec = func.record
        try:
            status = self.stubs.entry(rec[L.FR_VMCTX // 8], rec[L.FR_CODE // 8], ctypes.addressof(words),
                                      self.runtime_address, n)
        except BaseException as exc:
            # A host function raised before it could report (a KeyboardInterrupt or a
            # RecursionError on its way in or out): its call trapped with the exception
            # pending, and ctypes raised it here.
            self._pending_error = host_failure(exc)
            self._raise_trap()
        if status:
            self._raise_trap()
        return [words[i] & _mask(simple_type(t)) for i, t in enumerate(ft.results)]

    def _raise_trap(self):
        code, memory, access_size = L.split_trap_word(self.runtime[L.RT_TRAP_CODE // 8])
        if code == L.TRAP_HOST:
            error, self._pending_error = self._pending_error, None
        else:
            message = L.TRAP_MESSAGES.get(code, f"trap {code}")
            detail = None
            if code == L.TRAP_UNINITIALIZED_ELEMENT:  # as the reference interpreter says it
                message += f" {self.runtime[L.RT_TRAP_DETAIL // 8]}"
            elif code == L.TRAP_MEMORY_OOB and access_size:
                detail = self._memory_fault(memory, access_size)
            error = Exhaustion(message) if code == L.TRAP_STACK_EXHAUSTED else Trap(message, detail)
        if isinstance(error, (Trap, WasmException)):
            for observer in self.trap_observers:  # before the stacks are recycled or reused
                observer(self, error)
        self.continuations.recycle_chain(self.runtime[L.RT_TRAP_STACK // 8])
        raise error

    def _memory_fault(self, memory: int, access_size: int) -> str | None:
        """`memory fault at wasm address A in linear memory of size S`, for the access that
        just trapped: its end is in RT_TRAP_DETAIL, its instance in the trapping frame."""
        address = (self.runtime[L.RT_TRAP_DETAIL // 8] - access_size) & MASK64
        fp = self.runtime[L.RT_TRAP_FP // 8]
        from .stackwalk import StoreStacks
        chunk = StoreStacks(self).chunk_of(fp)
        instance = self.instances.get(read_word(fp - 8)) if chunk is not None and chunk.holds(fp - 8) else None
        if instance is None or memory >= len(instance.memories):
            return None
        size = instance.memories[memory].size_bytes
        return f"memory fault at wasm address 0x{address:x} in linear memory of size 0x{size:x}"


def _single_group(i: int, t: SubType):
    from ..frontend.types import RecGroup
    return RecGroup(i, [t])


# ---- instances ------------------------------------------------------------------------------

def _limits_match(actual: Limits, expected: Limits) -> bool:
    if actual.minimum < expected.minimum:
        return False
    if expected.maximum is not None:
        return actual.maximum is not None and actual.maximum <= expected.maximum
    return True


def _ref_subtype(actual, expected) -> bool:
    """Reference subtyping for the abstract function heap (enough for immutable imports)."""
    if not (isinstance(actual, RefType) and isinstance(expected, RefType)):
        return False
    if actual.nullable and not expected.nullable:
        return False
    return actual.heap == expected.heap or (expected.heap == "func" and isinstance(actual.heap, int))


class Instance:
    def __init__(self, store: Store, module: Module, imports: dict, name: str | None = None):
        self.store = store
        self.module = module
        self.name = name or module.name
        self.type_ids = store.canonical_type_ids(module)
        self.funcs: list[Func] = []
        self.memories: list[Memory] = []
        self.tables: list[Table] = []
        self.globals: list[Global] = []
        self.tags: list[Tag] = []
        self._link(imports)

        self.vm_layout = vmctx_layout(module)
        self.vmctx = (ctypes.c_uint64 * (self.vm_layout.size // 8))()
        self.vmctx_address = ctypes.addressof(self.vmctx)
        store.instances[self.vmctx_address] = self
        vm = self.vmctx
        vm[L.VM_RUNTIME // 8] = store.runtime_address
        vm[L.VM_TRAP_STUB // 8] = store.stubs.trap_stub
        vm[L.VM_GROW_STUB // 8] = store.stubs.memory_grow
        vm[L.VM_COPY_STUB // 8] = store.stubs.memory_copy
        vm[L.VM_FILL_STUB // 8] = store.stubs.memory_fill

        for mt in module.memories:
            self.memories.append(store.new_memory(mt))
        for i, mem in enumerate(self.memories):
            mem.attach(vm, self.vm_layout.memory_base(i), self.vm_layout.memory_size(i))
            vm[self.vm_layout.memory_record(i) // 8] = mem.record_address

        self.compiled, self.code_region = store.compiled(module, self.type_ids, self.vm_layout)
        self._add_functions()
        for i, f in enumerate(self.funcs):
            vm[self.vm_layout.func(i) // 8] = f.ref

        for g in module.globals:
            self.globals.append(store.new_global(g.type, self.eval_const(g.init)))
        for i, g in enumerate(self.globals):
            vm[self.vm_layout.global_(i) // 8] = ctypes.addressof(g.cell)
        for t in module.tables:
            init = self.eval_const(t.init) if t.init else 0
            self.tables.append(store.new_table(t.type, init))
        for i, t in enumerate(self.tables):
            vm[self.vm_layout.table(i) // 8] = ctypes.addressof(t.record)
        for tag in module.tags:
            ft = module.types[tag.type_index].composite
            self.tags.append(Tag(ft, self.type_ids[tag.type_index]))
        for i, tag in enumerate(self.tags):
            vm[self.vm_layout.tag(i) // 8] = tag.address
        self.builtins = self._make_builtins()
        for i, f in enumerate(self.builtins):
            vm[self.vm_layout.builtin(i) // 8] = f.ref

        if store.debug_record is not None:
            store.debug_record.add_instance(self)
        self.exports = {e.name: self._extern(e.kind, e.index) for e in module.exports}
        self._initialize_segments([[self.eval_const(item) for item in e.items] for e in module.elements],
                                  [d.data for d in module.datas])
        if module.start is not None:
            self.funcs[module.start]()

    def _add_functions(self):
        """The module's own functions, after the imported ones; their records in one array."""
        store, module = self.store, self.module
        base, first = self.code_region.address, module.num_imported_funcs
        type_indices = module.funcs
        records = store.func_records([base + f.start for f in self.compiled.functions],
                                     self.vmctx_address, [self.type_ids[t] for t in type_indices],
                                     list(range(first, first + len(type_indices))))
        address = ctypes.addressof(records)
        for k, t in enumerate(type_indices):
            func = Func(store, records, address + k * L.FUNCREF_SIZE, module.types[t].composite,
                        self.type_ids[t], module.func_name(first + k))
            func.instance = self
            self.funcs.append(func)
            store.funcs_by_ref[func.ref] = func

    # -- linking --

    def _link(self, imports: dict):
        store = self.store
        module = self.module
        for imp in module.imports:
            ext = imports.get((imp.module, imp.name))
            if ext is None:
                raise LinkError(f"unknown import: {imp.module}::{imp.name}")
            ok = False
            if imp.kind == "func" and isinstance(ext, Func):
                ok = ext.type_id == self.type_ids[imp.desc]
                if ok:
                    self.funcs.append(ext)
            elif imp.kind == "memory" and isinstance(ext, Memory):
                ok = (ext.type.limits.is64 == imp.desc.limits.is64
                      and _limits_match(Limits(ext.pages, ext.type.limits.maximum), imp.desc.limits))
                if ok:
                    self.memories.append(ext)
            elif imp.kind == "table" and isinstance(ext, Table):
                ok = (ext.type.limits.is64 == imp.desc.limits.is64
                      and _limits_match(Limits(ext.size, ext.type.limits.maximum), imp.desc.limits)
                      and self._same_valtype(ext.type.element, imp.desc.element))
                if ok:
                    self.tables.append(ext)
            elif imp.kind == "global" and isinstance(ext, Global):
                actual, expected = ext.type.valtype, imp.desc.valtype
                ok = ext.type.mutable == imp.desc.mutable and (
                    self._same_valtype(actual, expected)
                    or (not imp.desc.mutable and _ref_subtype(actual, expected)))
                if ok:
                    self.globals.append(ext)
            elif imp.kind == "tag" and isinstance(ext, Tag):
                ok = ext.type_id == self.type_ids[imp.desc.type_index]
                if ok:
                    self.tags.append(ext)
            if not ok:
                raise LinkError(f"incompatible import type for {imp.module}::{imp.name}")
        del store

    def _same_valtype(self, actual, expected) -> bool:
        if isinstance(actual, RefType) and isinstance(expected, RefType):
            return actual.nullable == expected.nullable and str(actual.heap) == str(expected.heap)
        return actual == expected

    def _extern(self, kind: str, index: int):
        return {"func": self.funcs, "memory": self.memories, "table": self.tables,
                "global": self.globals, "tag": self.tags}[kind][index]

    def invoke(self, name: str, raw_args: list[int]) -> list[int]:
        func = self.exports.get(name)
        if not isinstance(func, Func):
            raise LinkError(f"no exported function named {name!r}")
        return func(*raw_args)

    # -- constant expressions and segments --

    def eval_const(self, expr) -> int:
        stack: list[int] = []
        for op, imm in expr:
            if op == "i32.const":
                stack.append(imm & 0xFFFFFFFF)
            elif op in ("i64.const", "f32.const", "f64.const"):
                stack.append(imm & MASK64)
            elif op == "ref.null":
                stack.append(0)
            elif op == "ref.func":
                stack.append(self.funcs[imm].ref)
            elif op == "global.get":
                stack.append(self.globals[imm].cell.value)
            else:
                b, a = stack.pop(), stack.pop()
                width = 0xFFFFFFFF if op.startswith("i32") else MASK64
                kind = op.split(".")[1]
                value = a + b if kind == "add" else a - b if kind == "sub" else a * b
                stack.append(value & width)
        return stack[-1]

    def _initialize_segments(self, elem_segments: list[list[int]], data_segments: list[bytes]):
        """Copy the active segments into their tables and memories, then give generated code
        the passive ones (table.init, memory.init read them natively; the others count as
        dropped). Natively, a segment is (address, length) in the vmctx; dropping it sets
        the length to 0."""
        module = self.module
        for i, seg in enumerate(module.elements):
            if seg.mode == "active":
                items = elem_segments[i]
                table = self.tables[seg.table]
                dst = self.eval_const(seg.offset)
                if dst + len(items) > table.size:
                    raise Trap("out of bounds table access")
                for k, item in enumerate(items):
                    table.elems[dst + k] = item
        for i, seg in enumerate(module.datas):
            if seg.mode == "active":
                self.memories[seg.memory].write(self.eval_const(seg.offset), seg.data)
        vm, layout = self.vmctx, self.vm_layout
        self.passive_segments = []  # the native copies, alive as long as the instance
        for i, seg in enumerate(module.elements):
            if seg.mode == "passive":
                items = (ctypes.c_uint64 * len(elem_segments[i]))(*elem_segments[i])
                self.passive_segments.append(items)
                vm[layout.elem_segment(i) // 8] = ctypes.addressof(items)
                vm[layout.elem_segment(i) // 8 + 1] = len(items)
        for i, seg in enumerate(module.datas):
            if seg.mode == "passive":
                data = ctypes.create_string_buffer(data_segments[i], len(data_segments[i]))
                self.passive_segments.append(data)
                vm[layout.data_segment(i) // 8] = ctypes.addressof(data)
                vm[layout.data_segment(i) // 8 + 1] = len(data_segments[i])

    # -- builtins: runtime routines generated code calls like imports --

    def _make_builtins(self) -> list[Func]:
        """Runtime routines; arguments arrive as zero-extended 64-bit words."""
        module = self.module

        def table_reserve(table, size):
            """table.grow when the table's elements have no room left: 1 once they have."""
            return int(self.tables[table].reserve(size))

        def cont_new(ct, func_ref):
            if not func_ref:
                raise Trap("null function reference")
            ft = module.types[module.types[ct].composite.func_type].composite
            return self.store.continuations.new(func_ref, ft)

        def cont_attach(record):
            return self.store.continuations.attach(record)

        unwinder = self.store.unwinder
        rt = self.store.runtime
        stubs = self.store.stubs

        def transfer(n: int) -> list[int]:
            return [rt[L.RT_TRANSFER // 8 + j] for j in range(n)]

        def throw(frame, tag):
            t = self.tags[tag]
            exn = unwinder.new_exception(t, transfer(len(t.type.params)))
            unwinder.throw(exn, read_word(frame + 8), read_word(frame), rt[L.RT_CURRENT // 8])

        def exception_at(exnref: int):
            if not exnref:
                raise Trap("null exception reference")
            return unwinder.objects[exnref]

        def throw_ref(frame, exnref):
            unwinder.throw(exception_at(exnref), read_word(frame + 8), read_word(frame), rt[L.RT_CURRENT // 8])

        def throw_into(frame, tag, record):
            """resume_throw: the exception starts at the continuation's suspension point."""
            if tag == MASK64:  # resume_throw_ref
                exn = exception_at(rt[L.RT_TRANSFER // 8])
            else:
                t = self.tags[tag]
                exn = unwinder.new_exception(t, transfer(len(t.type.params)))
            top = read_word(record + L.CR_TOP)
            if read_word(top + L.CR_STATE) == L.CONT_FRESH:  # abandoned at its base frame
                unwinder.throw(exn, stubs.start_return_address, L.base_frame(record), record)
            pc, fp = L.saved_context(read_words, top, stubs.fiber_return)
            unwinder.throw(exn, pc, fp, top)

        routines = {
            B_TABLE_RESERVE: (table_reserve, 2, 1),
            B_CONT_NEW: (cont_new, 2, 1), B_CONT_ATTACH: (cont_attach, 1, 1),
            B_THROW: (throw, 1, 0), B_THROW_REF: (throw_ref, 1, 0), B_THROW_INTO: (throw_into, 2, 0),
        }
        unwinding = (throw, throw_ref, throw_into)
        return [self.store.host_function(FuncType(("i64",) * p, ("i64",) * r), fn, fn.__name__,
                                         frame=fn in unwinding)
                for _, (fn, p, r) in sorted(routines.items())]


__all__ = ["Store", "Instance", "Func", "Memory", "Table", "Global", "Tag", "Trap", "Exhaustion",
           "LinkError", "WasmException", "HostExit"]
