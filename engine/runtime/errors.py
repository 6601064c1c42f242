"""How a run can fail, as the embedder sees it: traps, link errors, exits and uncaught Wasm
exceptions (engine/DESIGN.md, "Errors")."""

from __future__ import annotations


class Trap(Exception):
    """A Wasm trap. `message` uses the spec's wording; `detail` says more where the engine
    knows more (the faulting address of an out-of-bounds access, as Wasmtime reports it)."""

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.frames: list = []


class Exhaustion(Trap):
    pass


class LinkError(Exception):
    pass


class HostExit(Exception):
    """Raised by a host function to unwind all Wasm frames to the embedder, unchanged
    (WASI's proc_exit)."""


class WasmException(Exception):
    """An exception thrown by Wasm code that nothing caught."""

    def __init__(self, tag, payload: list[int]):
        super().__init__(f"uncaught exception with tag {tag}")
        self.tag = tag
        self.payload = payload


def host_failure(exc: BaseException, name: str | None = None) -> BaseException:
    """What a host function's exception becomes for the embedder: Wasm-level errors, exits
    and interrupts as they are, any other error a trap naming the function."""
    if isinstance(exc, (Trap, WasmException, HostExit)) or not isinstance(exc, Exception):
        return exc
    trap = Trap(f"host function {name + ' ' if name else ''}failed: {exc}")
    trap.__cause__ = exc
    return trap
