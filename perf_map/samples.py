"""Samples read from `perf script` output, with their call chains, innermost frame first.

`perf script -F comm,period,ip,sym,dso` prints one header line per sample (the command
name and the period) and then one line per frame of its call chain: address, symbol
(with `+0x...` when perf prints offsets) and the object in parentheses. Kernel frames
come first for samples taken in the kernel; the user part follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A call-chain line: address, symbol, optional (dso).
_FRAME = re.compile(r"^\s+([0-9a-fA-F]+)\s+(.*?)(?:\s+\((.*)\))?$")
_OFFSET = re.compile(r"\+0x[0-9a-fA-F]+$")
KERNEL_SPACE = 0xFFFF800000000000
UNKNOWN = "[unknown]"
SCRIPT_FIELDS = "comm,period,ip,sym,dso"


@dataclass(frozen=True)
class Frame:
    address: int
    symbol: str  # without any `+0x...` offset; UNKNOWN when perf has no name
    dso: str  # the object's path, or UNKNOWN

    @property
    def in_kernel(self) -> bool:
        return self.address >= KERNEL_SPACE or self.dso == "[kernel.kallsyms]"


@dataclass
class Sample:
    comm: str
    period: int
    frames: list[Frame] = field(default_factory=list)  # innermost first

    @property
    def user_frames(self) -> list[Frame]:
        """The call chain from the user-space pc on (kernel frames dropped)."""
        return [f for f in self.frames if not f.in_kernel]


def parse_perf_script(text: str) -> list[Sample]:
    """Every sample of `perf script -F comm,period,ip,sym,dso` output (a header line without
    a period counts with weight 1)."""
    samples: list[Sample] = []
    current: Sample | None = None
    for line in text.splitlines():
        if not line.strip():
            current = None
        elif line[0].isspace():
            match = _FRAME.match(line)
            if match and current is not None:
                symbol = _OFFSET.sub("", match.group(2).strip()) or UNKNOWN
                current.frames.append(Frame(int(match.group(1), 16), symbol, match.group(3) or UNKNOWN))
        else:
            fields = line.rstrip(":").split()
            period = int(fields[-1]) if len(fields) > 1 and fields[-1].isdigit() else 1
            current = Sample(fields[0] if fields else "?", period)
            samples.append(current)
    return samples
