"""File or bytes -> validated `Module`: the one path untrusted input takes into the engine.

Validation by wasm-tools always comes before our own decoding, so the compiler only ever
sees modules the reference validator accepted. Every failure becomes a `LoadError` with a
one-line message naming the input, which the CLI prints without a traceback.
"""

from __future__ import annotations

import os

from . import wasmtools
from .binary import DecodeError, decode_module
from .module import Module

# What a file name says about its format; other names are sniffed for the magic.
_FORMAT_BY_SUFFIX = {".wasm": False, ".wat": True, ".wast": True}


class LoadError(Exception):
    """The module cannot be read, parsed, validated or decoded (message is one line)."""


def load_module(path: str | os.PathLike) -> Module:
    """Load a `.wasm` binary or `.wat` text file. WAT read from a file gets DWARF whose
    lines are the file's, so debuggers show and break on the text."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise LoadError(f"cannot read {name}: {e.strerror or e}") from None
    suffix = os.path.splitext(name)[1].lower()
    return load_bytes(data, name, text=_FORMAT_BY_SUFFIX.get(suffix), source_path=os.path.abspath(name))


def load_bytes(data: bytes, name: str = "<bytes>", text: bool | None = None,
               source_path: str | None = None) -> Module:
    """Load a module from memory; unless `text` says, WAT is told by a missing magic.
    WAT gets line DWARF if `source_path` names the file `data` was read from."""
    if text is None:
        text = not data.startswith(b"\0asm")
    try:
        if text:
            data = wasmtools.wat_to_wasm(bytes(data), dwarf_source=source_path)
        wasmtools.validate(bytes(data))
    except wasmtools.ToolError as e:
        kind = "cannot parse text" if text and not data.startswith(b"\0asm") else "invalid module"
        raise LoadError(f"{name}: {kind}: {e.message}") from None
    try:
        return decode_module(data)
    except DecodeError as e:
        raise LoadError(f"{name}: {e}") from None
