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


def export_last_global(wasm: bytes, name: str) -> bytes | None:
    """`wasm` with its last global exported as `name`, or None if it has no globals or
    imports (an imported global would shift the index; smith runs without imports)."""
    parts = sections(wasm)
    ids = [i for i, _ in parts]
    if GLOBAL_SECTION not in ids or (IMPORT_SECTION in ids
                                     and read_uleb(parts[ids.index(IMPORT_SECTION)][1], 0)[0]):
        return None
    count, _ = read_uleb(parts[ids.index(GLOBAL_SECTION)][1], 0)
    if count == 0:
        return None
    entry = export_entry(name, GLOBAL_KIND, count - 1)
    if EXPORT_SECTION in ids:
        k = ids.index(EXPORT_SECTION)
        exports, pos = read_uleb(parts[k][1], 0)
        parts[k] = (EXPORT_SECTION, uleb(exports + 1) + parts[k][1][pos:] + entry)
    else:
        k = next((n for n, i in enumerate(ids)
                  if SECTION_ORDER.get(i, 0) > SECTION_ORDER[EXPORT_SECTION]), len(parts))
        parts.insert(k, (EXPORT_SECTION, uleb(1) + entry))
    return assemble(parts)
