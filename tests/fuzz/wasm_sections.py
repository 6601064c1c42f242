"""Just enough of the binary format to add an export to a module wasm-smith wrote.

wasm-smith's `--ensure-termination` adds a fuel global after it has chosen the exports,
so even `--export-everything` leaves it private. The harness exports it to refill it
before every call (each call then gets the same budget, whatever ran before).
"""

from __future__ import annotations

EXPORT_SECTION, GLOBAL_SECTION, IMPORT_SECTION = 7, 6, 2
# Where each known section id sits in the order the binary format requires.
SECTION_ORDER = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}
GLOBAL_KIND = 3


def uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def read_uleb(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


def sections(wasm: bytes) -> list[tuple[int, bytes]]:
    """(id, contents) of every section, in order."""
    out, pos = [], 8
    while pos < len(wasm):
        section_id = wasm[pos]
        size, pos = read_uleb(wasm, pos + 1)
        out.append((section_id, wasm[pos:pos + size]))
        pos += size
    return out


def assemble(parts: list[tuple[int, bytes]]) -> bytes:
    return b"\0asm\1\0\0\0" + b"".join(bytes([i]) + uleb(len(c)) + c for i, c in parts)


def export_entry(name: str, kind: int, index: int) -> bytes:
    encoded = name.encode()
    return uleb(len(encoded)) + encoded + bytes([kind]) + uleb(index)


def read_limits(data: bytes, pos: int) -> int:
    flags = data[pos]
    _, pos = read_uleb(data, pos + 1)
    if flags & 1:
        _, pos = read_uleb(data, pos)
    return pos


def imported_globals(imports: bytes) -> int:
    """How many globals an import section imports. Handles the import kinds wasm-smith
    emits with one-byte value types, which is all `--available-imports` offers it."""
    count, pos = read_uleb(imports, 0)
    globals_ = 0
    for _ in range(count):
        for _name in range(2):
            length, pos = read_uleb(imports, pos)
            pos += length
        kind = imports[pos]
        pos += 1
        if kind == 0:  # function: type index
            _, pos = read_uleb(imports, pos)
        elif kind == 1:  # table: element type, limits
            pos = read_limits(imports, pos + 1)
        elif kind == 2:  # memory
            pos = read_limits(imports, pos)
        elif kind == GLOBAL_KIND:  # value type, mutability
            pos += 2
            globals_ += 1
        elif kind == 4:  # tag: attribute, type index
            _, pos = read_uleb(imports, pos + 1)
        else:
            raise ValueError(f"import kind {kind:#x} (compact imports?)")
    return globals_


def export_last_global(wasm: bytes, name: str) -> bytes | None:
    """`wasm` with its last global exported as `name`, or None if it defines none."""
    parts = sections(wasm)
    ids = [i for i, _ in parts]
    if GLOBAL_SECTION not in ids:
        return None
    count, _ = read_uleb(parts[ids.index(GLOBAL_SECTION)][1], 0)
    if count == 0:
        return None
    imported = imported_globals(parts[ids.index(IMPORT_SECTION)][1]) if IMPORT_SECTION in ids else 0
    entry = export_entry(name, GLOBAL_KIND, imported + count - 1)
    if EXPORT_SECTION in ids:
        k = ids.index(EXPORT_SECTION)
        exports, pos = read_uleb(parts[k][1], 0)
        parts[k] = (EXPORT_SECTION, uleb(exports + 1) + parts[k][1][pos:] + entry)
    else:
        k = next((n for n, i in enumerate(ids)
                  if SECTION_ORDER.get(i, 0) > SECTION_ORDER[EXPORT_SECTION]), len(parts))
        parts.insert(k, (EXPORT_SECTION, uleb(1) + entry))
    return assemble(parts)
