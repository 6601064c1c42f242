"""The compiled-code cache: machine code and its tables, kept between runs.

Entries live in `$XDG_CACHE_HOME/stackstitch` (default `~/.cache/stackstitch`), a directory
private to the user (0700; one with looser permissions or another owner is not used). An
entry is named by its key, a SHA-256 over:

* the cache format and the engine's version: a digest of the engine's own source files
  (so an edited compiler never meets code an older one made) and of the wasm-tools
  release that validated the module;
* every option that changes the code (`compiler.compiled.code_options`);
* the module's bytes.

Nothing store-specific is in the code (see `compiler/compiled.py`), so one entry serves
every store. An entry is one file: a header (magic, format version, the key again, the
body's length and its SHA-256) and the body. A reader checks all of it and treats anything
else (a truncated file, a flipped byte, another format, another key) as a miss: the module
is compiled again and the entry rewritten. Writers write a temporary file in the
directory and rename it over the entry, so a reader sees a whole entry or none, and
concurrent runs can write the same entry. The body is `compiled.to_bytes`'s binary form,
decoded field by field: nothing in the cache is ever unpickled or evaluated.

Besides code, an entry may have:

* `.wasm`: the binary a WAT file converted to (keyed by the text and its path), so a
  cached run of a `.wat` file starts no wasm-tools process;
* observers' payloads (`Store.code_observers` with `cache_payload_name`): what an
  observer derived from the module, such as the GDB JIT object, under the code's key
  and the observer's name, checked the same way.

A module whose code entry exists has passed validation when the entry was written (the
key covers its bytes), so the loader does not validate it again.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
from pathlib import Path

from .compiler.compiled import CompiledModule, FormatError, from_bytes, to_bytes

FORMAT_VERSION = 1
_MAGIC = b"SSTCACHE"
_HEADER = struct.Struct("<8sI32sQ32s")  # magic, format version, key, body length, SHA-256(body)
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")  # payload names: part of a file name


class CacheUnusable(Exception):
    """The cache directory cannot be used (the message says why)."""


def default_directory() -> Path:
    """`$XDG_CACHE_HOME/stackstitch`, or `~/.cache/stackstitch` (XDG: a relative or empty
    XDG_CACHE_HOME is ignored)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "stackstitch"


def source_fingerprint(directory: Path) -> bytes:
    """A digest of the Python sources under `directory`: their paths and contents."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        folder = os.path.relpath(root, directory)  # once per folder: every run computes this
        for name in sorted(files):
            if name.endswith(".py"):
                with open(os.path.join(root, name), "rb") as f:
                    content = f.read()
                relative = name if folder == "." else os.path.join(folder, name)
                digest.update(b"%d:%s\0%d\0" % (len(name), relative.encode(), len(content)))
                digest.update(content)
    return digest.digest()


class CodeCache:
    """One cache directory. `open` makes sure it exists and is private."""

    def __init__(self, directory: Path, engine_version: bytes):
        self.directory = directory
        self.engine_version = engine_version
        self._entries: dict[tuple[int, str], CacheEntry] = {}

    @classmethod
    def open(cls, directory: Path | None = None) -> CodeCache:
        """The cache in `directory` (default: `default_directory()`), created if need be;
        CacheUnusable if it is not the user's own private directory."""
        directory = default_directory() if directory is None else Path(directory)
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            status = directory.lstat()
        except OSError as e:
            raise CacheUnusable(f"cannot create {directory}: {e.strerror}") from None
        if not directory.is_dir() or directory.is_symlink():
            raise CacheUnusable(f"{directory} is not a directory")
        if status.st_uid != os.getuid():
            raise CacheUnusable(f"{directory} belongs to another user")
        if status.st_mode & 0o077:
            try:
                directory.chmod(0o700)
            except OSError as e:
                raise CacheUnusable(f"cannot make {directory} private: {e.strerror}") from None
        from .frontend import wasmtools
        version = source_fingerprint(Path(__file__).parent) + wasmtools.release().encode()
        return cls(directory, hashlib.sha256(version).digest())

    def key(self, kind: str, *parts: bytes) -> bytes:
        """The key of an entry of `kind` made from `parts` (each length-prefixed, so that
        no two lists of parts give the same key)."""
        digest = hashlib.sha256(b"stackstitch code cache %d %s\0" % (FORMAT_VERSION, kind.encode()))
        digest.update(self.engine_version)
        for part in parts:
            digest.update(struct.pack("<Q", len(part)))
            digest.update(part)
        return digest.digest()

    def entry(self, wasm: bytes, code_options: str) -> CacheEntry:
        """The entry for a module's code compiled with `code_options`."""
        memo = (id(wasm), code_options)
        entry = self._entries.get(memo)
        if entry is None or entry.wasm is not wasm:
            entry = CacheEntry(self, self.key("code", code_options.encode(), wasm), wasm)
            self._entries[memo] = entry
        return entry

    def converted_text(self, text: bytes, path: str) -> bytes | None:
        """The binary a WAT file (its text and absolute path) converted to, if cached."""
        return self.read(self.key("wat", os.path.abspath(path).encode(), text), "wasm")

    def store_converted_text(self, text: bytes, path: str, wasm: bytes) -> None:
        self.write(self.key("wat", os.path.abspath(path).encode(), text), "wasm", wasm)

    # ---- files ---------------------------------------------------------------------

    def path(self, key: bytes, suffix: str) -> Path:
        return self.directory / f"{key.hex()}.{suffix}"

    def read(self, key: bytes, suffix: str) -> bytes | None:
        """An entry's body, or None if there is none or it is not exactly what was
        written for this key (truncated, damaged, another format)."""
        try:
            with open(self.path(key, suffix), "rb") as f:
                data = f.read()
        except OSError:
            return None
        if len(data) < _HEADER.size:
            return None
        magic, version, stored_key, length, checksum = _HEADER.unpack_from(data)
        body = data[_HEADER.size:]
        if (magic, version, stored_key, length) != (_MAGIC, FORMAT_VERSION, key, len(body)):
            return None
        if hashlib.sha256(body).digest() != checksum:
            return None
        return body

    def write(self, key: bytes, suffix: str, body: bytes) -> bool:
        """Write an entry atomically (a temporary file renamed over it); False if the
        directory refused (full, read-only): the cache is an optimization."""
        target = self.path(key, suffix)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        header = _HEADER.pack(_MAGIC, FORMAT_VERSION, key, len(body), hashlib.sha256(body).digest())
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(header)
                    f.write(body)
                os.replace(temporary, target)
            finally:
                if temporary.exists():
                    temporary.unlink()
        except OSError:
            return False
        return True


class CacheEntry:
    """The cache's files for one module compiled one way: its code, and the observers'
    payloads. The code is read (and checked) once."""

    def __init__(self, cache: CodeCache, key: bytes, wasm: bytes):
        self.cache = cache
        self.key = key
        self.wasm = wasm
        self._compiled: CompiledModule | None = None
        self._looked = False

    def compiled(self) -> CompiledModule | None:
        """The cached code, or None (no entry, or one that fails its checks)."""
        if not self._looked:
            self._looked = True
            body = self.cache.read(self.key, "code")
            if body is not None:
                try:
                    self._compiled = from_bytes(body)
                except FormatError:
                    self._compiled = None
        return self._compiled

    def store(self, compiled: CompiledModule) -> bool:
        try:
            body = to_bytes(compiled)
        except FormatError:  # code the binary form cannot hold is simply not cached
            return False
        self._compiled, self._looked = compiled, True
        return self.cache.write(self.key, "code", body)

    def payload(self, name: str) -> bytes | None:
        return self.cache.read(self.key, _payload_suffix(name))

    def store_payload(self, name: str, data: bytes) -> bool:
        return self.cache.write(self.key, _payload_suffix(name), data)


def _payload_suffix(name: str) -> str:
    if not _NAME.fullmatch(name) or name in ("code", "wasm"):
        raise ValueError(f"invalid cache payload name {name!r}")
    return f"{name}.payload"
