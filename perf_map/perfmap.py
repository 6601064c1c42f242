"""`/tmp/perf-<pid>.map`: perf's plain-text symbol table for JIT code.

perf reads this file for samples in anonymous executable memory of process <pid>; each
line is `START SIZE name` with START and SIZE in hex. No other tool or step is needed, so
it is the cheapest way to get names into `perf report`.
"""

from __future__ import annotations

import os

from stackstitch.engine.records import record

from .symbols import CodeSymbol, function_symbols, stub_symbols


@record
class PerfMapEntry:
    start: int
    size: int
    name: str


def perf_map_path(pid: int | None = None) -> str:
    return f"/tmp/perf-{os.getpid() if pid is None else pid}.map"


class PerfMapWriter:
    """Code observer appending a line per compiled function (and per stub) to the map."""

    def __init__(self, path: str | None = None):
        self.path = path or perf_map_path()
        # Truncate: a file left by an earlier process with the same pid would mislead perf.
        self._file = open(self.path, "w", encoding="utf-8")

    def stubs_placed(self, stubs) -> None:
        self._write(stub_symbols(stubs))

    def __call__(self, module, compiled, region) -> None:
        self._write(function_symbols(module, compiled, region))

    def _write(self, symbols: list[CodeSymbol]) -> None:
        self._file.write("".join(f"{s.address:x} {s.size:x} {_one_line(s.name)}\n"
                                 for s in symbols if s.size))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _one_line(name: str) -> str:
    """Names come from the module's name section: keep a hostile one to its line."""
    return name.replace("\n", " ").replace("\r", " ") or "?"


def read_perf_map(path: str) -> list[PerfMapEntry]:
    """The entries of a perf map file, in file order."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            start, size, name = (line.rstrip("\n").split(" ", 2) + ["", ""])[:3]
            try:
                entries.append(PerfMapEntry(int(start, 16), int(size, 16), name))
            except ValueError:
                raise ValueError(f"{path}:{number}: not a perf map line: {line.strip()!r}") from None
    return entries
