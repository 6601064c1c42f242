"""A gdb session driven through the machine interface (pygdbmi), for the tests that check
what gdb shows: frames, variables, expressions, and the debuggee's own output."""

from __future__ import annotations

import time

from pygdbmi.gdbcontroller import GdbController


class GdbError(Exception):
    pass


class GdbSession:
    """gdb (MI3) on a command line; the debuggee's output is collected in `output`, gdb's
    console messages in `console_log`."""

    def __init__(self, gdb: str, arguments: list[str], gdb_options: list[str] = ()):
        self.gdb = GdbController([gdb, "--nx", "--quiet", "--interpreter=mi3", *gdb_options,
                                  "--args", *arguments])
        self.output = ""
        self.console_log = ""
        for command in ("-gdb-set breakpoint pending on", "-gdb-set pagination off",
                        "-gdb-set debuginfod enabled off"):
            self.command(command)

    def close(self) -> None:
        try:
            self.gdb.exit()
        except Exception:
            pass

    def _collect(self, responses: list[dict]) -> list[dict]:
        for response in responses:
            if response["type"] == "output" and response["payload"]:
                self.output += response["payload"] + "\n"
            elif response["type"] == "console" and response["payload"]:
                self.console_log += response["payload"]
        return responses

    def drain(self, seconds: float = 1) -> None:
        """Collect what gdb still prints after a stop."""
        self._collect(self.gdb.get_gdb_response(timeout_sec=seconds, raise_error_on_timeout=False))

    def command(self, command: str, timeout: float = 30) -> dict:
        """Run an MI command; its result payload (GdbError if gdb reports an error)."""
        responses = self._collect(self.gdb.write(command, timeout_sec=timeout))
        deadline = time.monotonic() + timeout
        while True:
            for response in responses:
                if response["type"] == "result":
                    if response["message"] == "error":
                        raise GdbError(f"{command}: {response['payload'].get('msg')}")
                    return response["payload"] or {}
            if time.monotonic() > deadline:
                raise GdbError(f"{command}: no result")
            responses = self._collect(self.gdb.get_gdb_response(timeout_sec=1, raise_error_on_timeout=False))

    def console(self, command: str) -> str:
        """A CLI command's console output."""
        responses = self._collect(self.gdb.write(f"-interpreter-exec console {_quote(command)}", timeout_sec=30))
        text = "".join(r["payload"] for r in responses if r["type"] == "console")
        while not any(r["type"] == "result" for r in responses):
            responses = self._collect(self.gdb.get_gdb_response(timeout_sec=1, raise_error_on_timeout=False))
            text += "".join(r["payload"] for r in responses if r["type"] == "console")
        for response in responses:
            if response["type"] == "result" and response["message"] == "error":
                raise GdbError(f"{command}: {response['payload'].get('msg')}")
        return text

    def run_to_stop(self, command: str = "-exec-run", timeout: float = 120) -> dict:
        """Start or resume the debuggee; the payload of the next *stopped record."""
        responses = self._collect(self.gdb.write(command, timeout_sec=5, raise_error_on_timeout=False))
        deadline = time.monotonic() + timeout
        while True:
            for response in responses:
                if response["type"] == "notify" and response["message"] == "stopped":
                    return response["payload"]
                if response["type"] == "result" and response["message"] == "error":
                    raise GdbError(f"{command}: {response['payload'].get('msg')}")
            if time.monotonic() > deadline:
                raise GdbError(f"{command}: the debuggee did not stop")
            responses = self._collect(self.gdb.get_gdb_response(timeout_sec=1, raise_error_on_timeout=False))

    def frames(self, count: int = 6) -> list[dict]:
        """The innermost `count` frames (the host's below them are many and slow to list)."""
        return self.command(f"-stack-list-frames 0 {count - 1}")["stack"]

    def variables(self, frame: int) -> list[dict]:
        """[{name, value, arg?}] of one frame (arguments and locals)."""
        return self.command(f"-stack-list-variables --thread 1 --frame {frame} --all-values")["variables"]

    def evaluate(self, expression: str, frame: int = 0) -> str:
        self.command(f"-stack-select-frame {frame}")
        return self.command(f"-data-evaluate-expression {_quote(expression)}")["value"]


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
