"""Real lldb (no plugin, its GDB JIT loader on) on `stackstitch run` across two continuation
boundaries: the same Wasm frames as gdb shows, in both switching modes. lldb names each
start stub frame where gdb shows `<signal handler called>`."""

from __future__ import annotations

import re
import subprocess

import pytest

from test_gdb_continuations import (ENTRY, MODES, NESTED_BACKTRACE, NESTED_WASM_FRAMES, SIGNAL,
                                    START_STUB, stackstitch_command)


@pytest.mark.parametrize("mode", MODES)
def test_backtrace_across_two_boundaries(require_tool, mode):
    lldb = require_tool("lldb")
    commands = ["settings set plugin.jit-loader.gdb.enable on", "breakpoint set --name leaf", "run",
                "bt", "process kill"]
    args = [lldb, "--batch"]
    for command in commands:
        args += ["-o", command]
    args += ["--", *stackstitch_command(require_tool, "nested.wat", mode)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr

    assert re.search(r"stop reason = breakpoint 1\.1", output), output
    backtrace = output.split("(lldb) bt", 1)[-1].split("(lldb) process kill", 1)[0]
    frames = re.findall(r"frame #\d+: 0x[0-9a-f]+ (\S+?)`(\S+)", backtrace)
    names = [name for _, name in frames]
    expected = [START_STUB if name == SIGNAL else name for name in NESTED_BACKTRACE]
    assert names[:len(expected)] == expected, output
    assert [name for name in names[:names.index(ENTRY)] if name != START_STUB] == NESTED_WASM_FRAMES
    assert all(image.startswith("JIT(") for image, _ in frames[:len(expected)]), output
    assert frames[len(expected)][0].startswith("libffi"), output  # then the host
