"""`jit-<pid>.dump`: perf's jitdump format, written as code is placed, and read back.

The format (tools/perf/Documentation/jitdump-specification.txt) is a 40-byte header and
then records, each `id, total_size, timestamp` and a payload. Per code symbol we write
UNWINDING_INFO and DEBUG_INFO (both apply to the CODE_LOAD that follows) and CODE_LOAD
with a copy of the code. DEBUG_INFO gives source lines where the module's own DWARF has
them (C built with `-g`, WAT read from a file: `perf report --sort srcline` then shows
`file.c:LINE`), else Wasm module offsets as the lines of a file named after the module.
`perf record` only learns of the file because we mmap it with PROT_EXEC: that mapping is
the marker `perf inject --jit` looks for. Timestamps use CLOCK_MONOTONIC, the clock
`perf record -k 1` stamps samples with.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
import time
from dataclasses import dataclass, field

from stackstitch.unwind.cfi import CfiError

from .ehframe import unwind_info
from .symbols import CodeSymbol, function_symbols, stub_symbols

MAGIC = 0x4A695444  # "JiTD" read as a little-endian u32
VERSION = 1
EM_X86_64 = 62
HEADER = struct.Struct("<IIIIIIQQ")  # magic version total_size elf_mach pad1 pid timestamp flags
RECORD_PREFIX = struct.Struct("<IIQ")  # id total_size timestamp
CODE_LOAD_FIELDS = struct.Struct("<IIQQQQ")  # pid tid vma code_addr code_size code_index
DEBUG_INFO_FIELDS = struct.Struct("<QQ")  # code_addr nr_entry
DEBUG_ENTRY_FIELDS = struct.Struct("<QII")  # code_addr line discrim, then a C string
UNWINDING_FIELDS = struct.Struct("<QQQ")  # unwinding_size eh_frame_hdr_size mapped_size

JIT_CODE_LOAD, JIT_CODE_MOVE, JIT_CODE_DEBUG_INFO, JIT_CODE_CLOSE, JIT_CODE_UNWINDING_INFO = range(5)


def timestamp() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def jitdump_path(directory: str, pid: int | None = None) -> str:
    """perf inject recognizes the dump by this exact file name."""
    return os.path.join(directory, f"jit-{os.getpid() if pid is None else pid}.dump")


def _record(kind: int, payload: bytes) -> bytes:
    payload += b"\0" * (-(len(payload) + RECORD_PREFIX.size) % 8)
    return RECORD_PREFIX.pack(kind, RECORD_PREFIX.size + len(payload), timestamp()) + payload


def _c_string(text: str) -> bytes:
    return text.encode("utf-8", "replace").replace(b"\0", b"?") + b"\0"


class JitdumpWriter:
    """Code observer appending jitdump records for every function and stub placed."""

    def __init__(self, directory: str, source_name: str | None = None):
        self.source_name = source_name
        self.path = jitdump_path(directory)
        self._code_index = 0
        self._file = open(self.path, "w+b")  # readable: mmap needs it
        self._file.write(HEADER.pack(MAGIC, VERSION, HEADER.size, EM_X86_64, 0, os.getpid(),
                                     timestamp(), 0))
        self._file.flush()
        # The marker: perf records this executable file mapping, perf inject finds it.
        self._marker = mmap.mmap(self._file.fileno(), HEADER.size, flags=mmap.MAP_PRIVATE,
                                 prot=mmap.PROT_READ | mmap.PROT_EXEC)

    def stubs_placed(self, stubs) -> None:
        self._write(stub_symbols(stubs), source=None)

    def __call__(self, module, compiled, region) -> None:
        source = self.source_name or f"{module.name or 'module'}.wasm"
        source_lines = {}
        if ".debug_info" in module.custom_sections:  # pyelftools is imported only then
            from stackstitch.unwind.sourcelines import native_source_lines
            source_lines = native_source_lines(module, compiled, region.address)
        self._write(function_symbols(module, compiled, region), source, source_lines)

    def _write(self, symbols: list[CodeSymbol], source: str | None, source_lines: dict | None = None) -> None:
        pid, tid = os.getpid(), threading.get_native_id()
        out = bytearray()
        for symbol in symbols:
            if not symbol.size:
                continue
            out += self._unwinding_info(symbol)
            rows = source_lines.get(symbol.address) if source_lines else None
            if rows:
                out += self._source_debug_info(symbol, rows)
            elif source and symbol.lines:
                out += self._debug_info(symbol, source)
            out += _record(JIT_CODE_LOAD, CODE_LOAD_FIELDS.pack(
                pid, tid, symbol.address, symbol.address, symbol.size, self._code_index)
                + _c_string(symbol.name) + symbol.code)
            self._code_index += 1
        self._file.write(out)
        self._file.flush()

    @staticmethod
    def _unwinding_info(symbol: CodeSymbol) -> bytes:
        try:
            data, hdr_size = unwind_info(symbol.origin, symbol.origin + symbol.size,
                                         symbol.cfi_rows)
        except CfiError:
            return b""  # perf still has the frame-pointer chain
        # mapped_size = size: perf inject then maps the eh_frame after the code, where
        # its DWARF unwinder looks for it.
        return _record(JIT_CODE_UNWINDING_INFO,
                       UNWINDING_FIELDS.pack(len(data), hdr_size, len(data)) + data)

    @staticmethod
    def _debug_info(symbol: CodeSymbol, source: str) -> bytes:
        """Wasm module offsets as the "line numbers" of a file named after the module."""
        name = _c_string(source)
        entries = []
        last_line = None
        pack, shift = DEBUG_ENTRY_FIELDS.pack, symbol.address - symbol.origin
        for offset, wasm_offset in symbol.lines:
            if wasm_offset != last_line:
                entries.append(pack(shift + offset, wasm_offset, 0) + name)
                last_line = wasm_offset
        return _record(JIT_CODE_DEBUG_INFO,
                       DEBUG_INFO_FIELDS.pack(symbol.address, len(entries)) + b"".join(entries))

    @staticmethod
    def _source_debug_info(symbol: CodeSymbol, rows: list[tuple[int, str, int]]) -> bytes:
        """Lines of the module's own source: (address, file, line) rows."""
        pack = DEBUG_ENTRY_FIELDS.pack
        entries = [pack(address, line, 0) + _c_string(path) for address, path, line in rows]
        return _record(JIT_CODE_DEBUG_INFO,
                       DEBUG_INFO_FIELDS.pack(symbol.address, len(entries)) + b"".join(entries))

    def close(self) -> None:
        """Optional: mark the end of the JIT's life in the dump."""
        self._file.write(_record(JIT_CODE_CLOSE, b""))
        self._marker.close()
        self._file.close()


# ---- reading -----------------------------------------------------------------------------

@dataclass
class JitdumpHeader:
    version: int
    elf_mach: int
    pid: int
    timestamp: int
    flags: int


@dataclass
class CodeLoad:
    timestamp: int
    pid: int
    tid: int
    vma: int
    code_addr: int
    code_index: int
    name: str
    code: bytes


@dataclass
class DebugEntry:
    address: int
    line: int
    discrim: int
    filename: str


@dataclass
class DebugInfo:
    timestamp: int
    code_addr: int
    entries: list[DebugEntry] = field(default_factory=list)


@dataclass
class UnwindingInfo:
    timestamp: int
    eh_frame_hdr_size: int
    mapped_size: int
    data: bytes  # .eh_frame then .eh_frame_hdr


@dataclass
class CodeClose:
    timestamp: int


@dataclass
class Jitdump:
    header: JitdumpHeader
    records: list


class JitdumpFormatError(ValueError):
    pass


def _c_string_at(data: bytes, at: int) -> tuple[str, int]:
    end = data.find(b"\0", at)
    if end < 0:
        raise JitdumpFormatError(f"unterminated string at offset {at}")
    return data[at:end].decode("utf-8", "replace"), end + 1


def _parse_record(kind: int, stamp: int, body: bytes, at: int):
    """One record's payload (`body`, starting at file offset `at`) as a dataclass."""
    if kind == JIT_CODE_LOAD:
        pid, tid, vma, code_addr, size, index = CODE_LOAD_FIELDS.unpack_from(body)
        name, end = _c_string_at(body, CODE_LOAD_FIELDS.size)
        if end + size > len(body):
            raise JitdumpFormatError(f"CODE_LOAD at offset {at}: code runs past the record")
        return CodeLoad(stamp, pid, tid, vma, code_addr, index, name, body[end:end + size])
    if kind == JIT_CODE_DEBUG_INFO:
        code_addr, count = DEBUG_INFO_FIELDS.unpack_from(body)
        info, pos = DebugInfo(stamp, code_addr), DEBUG_INFO_FIELDS.size
        for _ in range(count):
            address, line, discrim = DEBUG_ENTRY_FIELDS.unpack_from(body, pos)
            filename, pos = _c_string_at(body, pos + DEBUG_ENTRY_FIELDS.size)
            info.entries.append(DebugEntry(address, line, discrim, filename))
        return info
    if kind == JIT_CODE_UNWINDING_INFO:
        size, hdr_size, mapped = UNWINDING_FIELDS.unpack_from(body)
        data = body[UNWINDING_FIELDS.size:UNWINDING_FIELDS.size + size]
        if len(data) != size or hdr_size > size:
            raise JitdumpFormatError(f"UNWINDING_INFO at offset {at}: bad sizes")
        return UnwindingInfo(stamp, hdr_size, mapped, data)
    if kind == JIT_CODE_CLOSE:
        return CodeClose(stamp)
    raise JitdumpFormatError(f"unknown record type {kind} at offset {at}")


def read_jitdump(path: str) -> Jitdump:
    """Parse a jitdump file; malformed input raises JitdumpFormatError (one line)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < HEADER.size:
        raise JitdumpFormatError(f"{path}: too short for a jitdump header")
    magic, version, header_size, elf_mach, _, pid, stamp, flags = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise JitdumpFormatError(f"{path}: bad magic {magic:#x}")
    header = JitdumpHeader(version, elf_mach, pid, stamp, flags)
    records, at = [], header_size
    try:
        while at + RECORD_PREFIX.size <= len(data):
            kind, size, stamp = RECORD_PREFIX.unpack_from(data, at)
            if size < RECORD_PREFIX.size or at + size > len(data):
                raise JitdumpFormatError(f"record at offset {at} has bad size {size}")
            records.append(_parse_record(kind, stamp, data[at + RECORD_PREFIX.size:at + size], at))
            at += size
    except struct.error as e:
        raise JitdumpFormatError(f"{path}: truncated record at offset {at}: {e}") from None
    except JitdumpFormatError as e:
        raise JitdumpFormatError(f"{path}: {e}") from None
    return Jitdump(header, records)
