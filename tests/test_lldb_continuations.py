"""Real lldb (no plugin, its GDB JIT loader on) on `stackstitch run` across two continuation
boundaries, and from host code called inside a continuation: the same Wasm frames as gdb
shows, in both switching modes. lldb names each start stub frame where gdb shows
`<signal handler called>`."""

from __future__ import annotations

import re
import subprocess

import pytest

from test_gdb_continuations import (ENTRY, MODES, NESTED_BACKTRACE, NESTED_WASM_FRAMES, SIGNAL,
                                    START_STUB, stackstitch_command)


def lldb_backtrace(require_tool, module: str, mode: str, stops: list[str]) -> tuple[str, list]:
    """lldb's output, and (image, function) of each `bt` frame after a breakpoint at each
    function of `stops` in turn (each set once the previous one is hit)."""
    lldb = require_tool("lldb")
    commands = ["settings set plugin.jit-loader.gdb.enable on"]
    for k, stop in enumerate(stops):
        commands += [f"breakpoint set --name {stop}", "run" if k == 0 else "continue"]
    args = [lldb, "--batch"]
    for command in commands + ["bt", "process kill"]:
        args += ["-o", command]
    args += ["--", *stackstitch_command(require_tool, module, mode)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert re.search(rf"stop reason = breakpoint {len(stops)}\.1", output), output
    backtrace = output.split("(lldb) bt", 1)[-1].split("(lldb) process kill", 1)[0]
    return output, re.findall(r"frame #\d+: 0x[0-9a-f]+ (\S+?)`(\S+)", backtrace)


@pytest.mark.parametrize("mode", MODES)
def test_backtrace_across_two_boundaries(require_tool, mode):
    output, frames = lldb_backtrace(require_tool, "nested.wat", mode, ["leaf"])
    names = [name for _, name in frames]
    expected = [START_STUB if name == SIGNAL else name for name in NESTED_BACKTRACE]
    assert names[:len(expected)] == expected, output
    assert [name for name in names[:names.index(ENTRY)] if name != START_STUB] == NESTED_WASM_FRAMES
    assert all(image.startswith("JIT(") for image, _ in frames[:len(expected)]), output
    assert frames[len(expected)][0].startswith("libffi"), output  # then the host


@pytest.mark.parametrize("mode", MODES)
def test_backtrace_from_host_code_called_in_a_continuation(require_tool, mode):
    """Stopped where the host-call stub calls into Python (on the main stack, above the
    continuation's frames): the chain continues through the stub down to the entry."""
    output, frames = lldb_backtrace(require_tool, "host_call.wat", mode, ["leaf", "PyObject_CallNoArgs"])
    names = [name for _, name in frames]
    assert names[0] == "PyObject_CallNoArgs", output
    host_stub = names.index("stackstitch_host_call")
    assert names[host_stub:host_stub + 6] == ["stackstitch_host_call", "leaf", "inner", START_STUB,
                                              "main", ENTRY], output
