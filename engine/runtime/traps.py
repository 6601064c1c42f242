"""Wasm traps as Python exceptions."""

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
