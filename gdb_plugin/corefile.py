"""What `stackstitch gdb --core` and `--attach` check before starting gdb, so that a wrong
file or process gets an error naming the real cause instead of gdb's (or the plugin's)
guess: a core that is not one, or is truncated; a process or core that is not a
`stackstitch run` one; an executable that is not on this machine.

Runs in the project's Python (outside gdb), with pyelftools. The executable of a core is
the file its NT_FILE note maps at the program headers' address (AT_PHDR, from NT_AUXV):
the real interpreter, even when the command that started it was a shell shim.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

JIT_SHIM_PREFIX = "jit-interface-"  # unwind/jitshim.py: the file every `stackstitch run` maps
AT_PHDR, AT_ENTRY = 3, 9


class CoreError(Exception):
    """One line: why this core or process cannot be debugged with the plugin."""


def _is_jit_shim(path: str) -> bool:
    name = os.path.basename(path)
    return name.startswith(JIT_SHIM_PREFIX) and name.endswith(".so")


def _auxv(desc) -> dict[int, int]:
    """NT_AUXV's (type, value) pairs; pyelftools parses some versions of it, not all."""
    if isinstance(desc, (bytes, bytearray)):
        words = struct.unpack(f"<{len(desc) // 8}Q", desc[:len(desc) // 8 * 8])
        return dict(zip(words[0::2], words[1::2]))
    names = {"AT_PHDR": AT_PHDR, "AT_ENTRY": AT_ENTRY}
    return {names.get(entry["a_type"], -1): entry["a_val"] for entry in desc}


def core_executable(core: Path) -> Path:
    """The executable that made `core`, checked to be a `stackstitch run` process's."""
    try:
        with open(core, "rb") as f:
            return _executable(ELFFile(f), os.fstat(f.fileno()).st_size, core)
    except FileNotFoundError:
        raise CoreError(f"no such core file: {core}") from None
    except IsADirectoryError:
        raise CoreError(f"{core} is a directory, not a core file") from None
    except PermissionError:
        raise CoreError(f"cannot read {core}: permission denied") from None
    except (ELFError, struct.error, ValueError, KeyError) as e:
        raise CoreError(f"{core} is not a core file ({e})") from None


def _executable(elf: ELFFile, size: int, core: Path) -> Path:
    if elf["e_type"] != "ET_CORE":
        raise CoreError(f"{core} is not a core file but an ELF {elf['e_type']} file")
    segments = list(elf.iter_segments())
    needed = max((s["p_offset"] + s["p_filesz"] for s in segments), default=0)
    if size < needed:
        raise CoreError(f"{core} is truncated: {size} bytes of the {needed} its segments need "
                        "(was it still being written, or cut by a core size limit?)")
    files: list[tuple[int, int, str]] = []
    auxv: dict[int, int] = {}
    for segment in segments:
        if segment["p_type"] != "PT_NOTE":
            continue
        for note in segment.iter_notes():
            if note["n_type"] == "NT_FILE":
                desc = note["n_desc"]
                files += [(entry["vm_start"], entry["vm_end"], name.decode("utf-8", "replace"))
                          for entry, name in zip(desc["Elf_Nt_File_Entry"], desc["filename"])]
            elif note["n_type"] == "NT_AUXV":
                auxv = _auxv(note["n_desc"])
    if not files:
        raise CoreError(f"{core} has no file notes (NT_FILE), so its executable is unknown: "
                        "open it with `gdb -x PLUGIN EXECUTABLE CORE`")
    if not any(_is_jit_shim(name) for *_, name in files):
        raise CoreError(f"{core} is not from a `stackstitch run` process: it maps no "
                        f"{JIT_SHIM_PREFIX}*.so (or it ran with --no-gdb-jit)")
    anchor = auxv.get(AT_PHDR) or auxv.get(AT_ENTRY)
    executable = next((name for start, end, name in files if anchor is not None and start <= anchor < end),
                      files[0][2])
    if not os.path.isfile(executable):
        raise CoreError(f"{core} was made by {executable}, which is not on this machine")
    return Path(executable)


def check_process(pid: int) -> None:
    """That `pid` is a live `stackstitch run` process (it has mapped the JIT shim)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except FileNotFoundError:
        raise CoreError(f"no process {pid}") from None
    except PermissionError:
        raise CoreError(f"cannot read the mappings of process {pid}: permission denied") from None
    if not any(_is_jit_shim(line.split()[-1]) for line in maps.splitlines() if len(line.split()) >= 6):
        raise CoreError(f"process {pid} is not a `stackstitch run` process: it has not loaded "
                        f"{JIT_SHIM_PREFIX}*.so (or it runs with --no-gdb-jit)")
