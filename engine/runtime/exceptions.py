"""Throwing Wasm exceptions: exception objects and the unwinder.

try_table costs nothing at run time; its code range and clauses are recorded by the
compiler. A throw walks the frame-pointer chain from the throwing frame. Each frame is
found in the store's code map; the innermost try region covering its pc with a matching
clause gets the exception. The chain crosses continuation boundaries through the base
frames that every resume rewrites, so an exception leaving a continuation abandons it
(its stack is recycled) and continues in the resumer, as the proposal specifies. Reaching
an entry trampoline means nothing caught it: the embedder gets a WasmException.
"""

from __future__ import annotations

import ctypes

from .. import layout as L
from .errors import WasmException


class ExceptionObject:
    """An exnref's target: the tag and the payload words, kept in native memory."""

    def __init__(self, tag, payload: list[int]):
        self.tag = tag
        self.payload = payload
        self.record = (ctypes.c_uint64 * (2 + len(payload)))(tag.address, len(payload), *payload)
        self.address = ctypes.addressof(self.record)


class Unwind(Exception):
    """Raised inside a host callback: continue at (sp, fp, pc) instead of returning."""

    def __init__(self, sp: int, fp: int, pc: int):
        super().__init__("unwind")
        self.sp, self.fp, self.pc = sp, fp, pc


class Unwinder:
    def __init__(self, store):
        self.store = store
        self.objects: dict[int, ExceptionObject] = {}  # exnref values stay valid for the run

    def new_exception(self, tag, payload: list[int]) -> ExceptionObject:
        exn = ExceptionObject(tag, payload)
        self.objects[exn.address] = exn
        return exn

    def throw(self, exn: ExceptionObject, pc: int, fp: int, record: int):
        """Find the handler for `exn` from the frame (pc, fp) running on stack `record`
        (pc may be the start stub's return address with fp the base frame: a continuation
        that is abandoned before it ran).

        Raises Unwind to continue there, or WasmException when nothing catches it."""
        from .stackwalk import Boundary, StackWalk, StoreStacks  # loaded by the first throw
        store = self.store
        stacks = StoreStacks(store)
        rt = store.runtime
        for item in StackWalk(stacks, pc, fp):
            if isinstance(item, Boundary):  # the exception leaves this continuation: it is over
                record = stacks.read_word(item.record + L.CR_PARENT)
                store.continuations.release(item.record)
                continue
            function, code_base = item.code
            offset = item.pc - 1 - code_base
            instance = store.instances.get(stacks.read_word(item.fp - 8))
            for region in function.tries:
                if not region.start <= offset < region.end:
                    continue
                for i, (kind, tag) in enumerate(region.clauses):
                    if kind in (0, 1) and instance.tags[tag].address != exn.tag.address:
                        continue
                    values = list(exn.payload) if kind in (0, 1) else []
                    if kind in (1, 3):
                        values.append(exn.address)
                    for j, v in enumerate(values):
                        rt[L.RT_TRANSFER // 8 + j] = v
                    rt[L.RT_TRANSFER_KIND // 8] = i + 1
                    rt[L.RT_CURRENT // 8] = record
                    rt[L.RT_STACK_LIMIT // 8] = stacks.read_word(record + L.CR_LIMIT)
                    raise Unwind(item.fp - 8 - function.frame_size, item.fp, code_base + region.landing)
        raise WasmException(exn.tag, list(exn.payload))
