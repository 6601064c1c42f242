"""File or bytes -> validated `Module`: the one path untrusted input takes into the engine.

Validation by wasm-tools always comes before our own decoding, so the compiler only ever
sees modules the reference validator accepted. The one exception proves the same thing
another way: a module whose code is in the code cache (`engine/codecache.py`) passed
validation when the entry was written, and the entry's key covers the module's bytes.
Every failure becomes a `LoadError` with a one-line message naming the input, which the
CLI prints without a traceback.
"""

from __future__ import annotations

import os

from . import wasmtools
from .binary import DecodeError, decode_module
from .module import Module

TYPE_CHECKING = False  # as typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from ..codecache import CodeCache

# What a file name says about its format; other names are sniffed for the magic.
_FORMAT_BY_SUFFIX = {".wasm": False, ".wat": True, ".wast": True}


class LoadError(Exception):
    """The module cannot be read, parsed, validated or decoded (message is one line)."""


def load_module(path: str | os.PathLike, cache: CodeCache | None = None,
                code_options: str = "") -> Module:
    """Load a `.wasm` binary or `.wat` text file. WAT read from a file gets DWARF whose
    lines are the file's, so debuggers show and break on the text. With a `cache`, a WAT
    file's binary may come from it, and a module whose code it holds for `code_options` is
    not validated again."""
    name = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise LoadError(f"cannot read {name}: {e.strerror or e}") from None
    suffix = os.path.splitext(name)[1].lower()
    return load_bytes(data, name, text=_FORMAT_BY_SUFFIX.get(suffix),
                      source_path=os.path.abspath(name), cache=cache, code_options=code_options)


def load_bytes(data: bytes, name: str = "<bytes>", text: bool | None = None,
               source_path: str | None = None, cache: CodeCache | None = None,
               code_options: str = "") -> Module:
    """Load a module from memory; unless `text` says, WAT is told by a missing magic.
    WAT gets line DWARF if `source_path` names the file `data` was read from; a cached
    conversion is keyed by that file's path and text."""
    data = bytes(data)
    if text is None:
        text = not data.startswith(b"\0asm")
    wasm = cache.converted_text(data, source_path or name) if cache is not None and text else None
    converted = text and wasm is None
    try:
        if converted:
            wasm = wasmtools.wat_to_wasm(data, dwarf_source=source_path)
        elif not text:
            wasm = data
        if cache is None or cache.entry(wasm, code_options).compiled() is None:
            wasmtools.validate(wasm)
    except wasmtools.ToolError as e:
        kind = "cannot parse text" if wasm is None else "invalid module"
        raise LoadError(f"{name}: {kind}: {e.message}") from None
    try:
        module = decode_module(wasm)
    except DecodeError as e:
        raise LoadError(f"{name}: {e}") from None
    if converted and cache is not None:
        cache.store_converted_text(data, source_path or name, wasm)
    return module
