"""Moving a built JIT object to another code address, by finding where it holds addresses.

A JIT object holds the absolute addresses of the code it describes (`.text`'s address,
FDE initial locations, DWARF low_pc and line-program addresses), each an 8-byte
little-endian field. Rather than have every writer report its fields, the object is built
twice, for the code at `address` and at `address + PROBE`: the fields are exactly the
places where the two images differ, and each must differ by PROBE. PROBE has a 1 in
every byte, so every byte of every address field differs (adding 1 or 2 with the carry
never gives the same byte back). Anything else that differs (a length or an encoding that
depends on the address) means the object cannot be moved this way, and `relocations` says
so instead of guessing.
"""

from __future__ import annotations

import re
import struct
from array import array

PROBE = 0x0101_0101_0101_0101
_CHANGED = re.compile(rb"[^\x00]+")
_FIELD = struct.Struct("<Q")


def relocations(image: bytes, probed: bytes) -> array | None:
    """The offsets of the address fields in `image`, given the same object built for code
    PROBE bytes higher; None if the two differ in anything but such fields."""
    if len(image) != len(probed):
        return None
    size = len(image)
    difference = int.from_bytes(image, "little") ^ int.from_bytes(probed, "little")
    changed = difference.to_bytes(size, "little")
    offsets = array("Q")
    for run in _CHANGED.finditer(changed):
        start, end = run.span()
        if (end - start) % 8:
            return None
        for at in range(start, end, 8):
            if _FIELD.unpack_from(probed, at)[0] - _FIELD.unpack_from(image, at)[0] != PROBE:
                return None
            offsets.append(at)
    return offsets


def relocate(image: bytes, offsets: array, delta: int) -> bytes:
    """`image` with `delta` added to each address field: one big-integer addition of an
    image-sized number holding |delta| at each field. No field overflows (or, moving
    down, underflows), so no carry crosses into the bytes after it."""
    addend = bytearray(len(image))
    for at in offsets:
        _FIELD.pack_into(addend, at, abs(delta))
    value, change = int.from_bytes(image, "little"), int.from_bytes(addend, "little")
    return (value + change if delta >= 0 else value - change).to_bytes(len(image), "little")
