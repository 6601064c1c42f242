"""Real lldb (no plugin) on a Python process running the engine with the GDB JIT interface:
the breakpoint by Wasm function name, the backtrace, and the WAT line of the pc."""

from __future__ import annotations

import re
import subprocess
import sys

from test_gdb_plain import ENGINE_SCRIPT, NESTED_CALLS_WAT


def test_breakpoint_by_name_and_backtrace(require_tool, tmp_path):
    lldb = require_tool("lldb")
    module = tmp_path / "calls.wat"
    module.write_text(NESTED_CALLS_WAT)
    script = tmp_path / "engine_script.py"
    script.write_text(ENGINE_SCRIPT)
    commands = ["settings set plugin.jit-loader.gdb.enable on", "breakpoint set --name leaf", "run",
                "bt", "image lookup --address $pc", "process kill"]
    args = [lldb, "--batch"]
    for command in commands:
        args += ["-o", command]
    args += ["--", sys.executable, str(script), str(module), str(tmp_path)]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr

    assert re.search(r"stop reason = breakpoint 1\.1", output), output
    backtrace = output.split("(lldb) bt", 1)[-1].split("(lldb) image lookup", 1)[0]
    frames = re.findall(r"frame #(\d+): 0x[0-9a-f]+ (\S+?)`(\w+)", backtrace)
    names = [name for _, _, name in frames]
    assert names[:5] == ["leaf", "b", "a", "main", "stackstitch_entry"], output
    assert all(module_name.startswith("JIT(") for _, module_name, _ in frames[:5]), output
    assert len(frames) > 5, output  # host frames follow

    leaf_line = next(n for n, text in enumerate(NESTED_CALLS_WAT.splitlines(), 1) if "$leaf" in text)
    assert re.search(rf"Summary: JIT\(0x[0-9a-f]+\)`leaf \+ \d+ at calls\.wat:{leaf_line}:", output), output
