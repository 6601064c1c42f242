"""Driving real gdb through its machine interface (MI), with pygdbmi: what the gdb tests use.

MI is what IDEs talk, so the tests see what they see: console output per command, and
structured records (`-stack-list-frames`) where the frame filter's decorations must show.
Each command carries a token and is complete when its result record arrives; execution
commands (`run`, `continue`, ...) also wait for gdb's `*stopped` record.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field

from pygdbmi.gdbcontroller import GdbController

DEFAULT_TIMEOUT = 300.0


class GdbTimeout(AssertionError):
    """gdb did not answer in time; the message holds what it printed meanwhile."""


@dataclass
class Reply:
    """What gdb printed for one command."""

    result: dict  # the result record (`^done`, `^error`, `^running`, ...)
    records: list[dict] = field(default_factory=list)  # everything, in order

    @property
    def ok(self) -> bool:
        return self.result["message"] != "error"

    @property
    def error(self) -> str | None:
        return None if self.ok else self.result["payload"].get("msg", "")

    @property
    def console(self) -> str:
        """The command's console output, as a terminal would show it (errors included)."""
        text = "".join(r["payload"] for r in self.records
                       if r["type"] in ("console", "target") and r["payload"])
        return text + (self.error + "\n" if self.error else "")

    @property
    def lines(self) -> list[str]:
        return self.console.splitlines()


class GdbSession:
    """One gdb process in MI mode. `program` (a command line) is what `run` starts."""

    def __init__(self, gdb: str, program: list[str] | None = None, gdb_args: list[str] = (),
                 timeout: float = DEFAULT_TIMEOUT, command: list[str] | None = None):
        """gdb with `gdb_args`, on `program`; or `command`, a launcher that runs gdb with
        the arguments `-nx -q --interpreter=mi3` it is given."""
        if command is None:
            command = [gdb, "-nx", "-q", "--interpreter=mi3", *gdb_args]
            if program:
                command += ["--args", *program]
        self.timeout = timeout
        self.controller = GdbController(command=command, time_to_check_for_additional_output_sec=0)
        self.tokens = itertools.count(1)
        self.unread: list[dict] = []  # records read from gdb but not yet consumed
        self.transcript: list[dict] = []  # every record, for failure messages
        for setting in ("breakpoint pending on", "pagination off", "confirm off",
                        "debuginfod enabled off"):
            self.mi(f"-gdb-set {setting}")

    def __enter__(self) -> "GdbSession":
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.controller.exit()
        except Exception:  # gdb already gone
            pass

    # ---- commands -------------------------------------------------------------------

    def mi(self, command: str, timeout: float | None = None) -> Reply:
        """An MI command (`-stack-list-frames`, ...): returns once its result arrives."""
        token = next(self.tokens)
        self.controller.write(f"{token}{command}", read_response=False)
        return self._until(lambda r: r["type"] == "result" and r.get("token") == token, timeout)

    def cli(self, command: str, timeout: float | None = None) -> Reply:
        """A console command (`bt`, `info continuations`, ...), as a user types it."""
        return self.mi(f"-interpreter-exec console {_quote(command)}", timeout)

    def run(self, command: str = "run", timeout: float | None = None) -> Reply:
        """An execution command (`run`, `continue`, `next`, ...): returns at the next stop
        or exit; the reply's records include the `*stopped` one."""
        reply = self.cli(command, timeout)
        if not reply.ok or reply.result["message"] != "running":
            return reply
        stopped = self._until(lambda r: r["type"] == "notify" and r["message"] == "stopped", timeout)
        reply.records += stopped.records
        reply.result = stopped.result
        return reply

    def next_stop(self, timeout: float | None = None) -> Reply:
        """The next `*stopped` record (or exit), of execution gdb started by itself."""
        return self._until(lambda r: r["type"] == "notify" and r["message"] == "stopped", timeout)

    def python(self, code: str, timeout: float | None = None) -> Reply:
        """Python in gdb. Code that runs the inferior (gdb.execute("stepi")) makes MI answer
        `^running` at once while it goes on: a second command's answer marks its end."""
        reply = self.cli(f"python {code}", timeout)
        if reply.result["message"] == "running":
            reply.records += self.mi("-list-thread-groups", timeout).records
        return reply

    # ---- reading records --------------------------------------------------------------

    def payload(self, command: str, timeout: float | None = None) -> dict:
        """An MI command's result payload; a gdb error fails the test with its message."""
        reply = self.mi(command, timeout)
        assert reply.ok, f"{command}: {reply.error}"
        return reply.result["payload"] or {}

    def frames(self, count: int | None = None) -> list[dict]:
        """`-stack-list-frames`: the frames as IDEs get them, decorations included; the
        innermost `count` of them (the host's below are many and slow to list)."""
        limits = f" 0 {count - 1}" if count else ""
        return self.payload(f"-stack-list-frames{limits}")["stack"]

    def variables(self, frame: int) -> list[dict]:
        """[{name, value, arg?}] of one frame: its arguments and locals."""
        return self.payload(f"-stack-list-variables --thread 1 --frame {frame} --all-values")["variables"]

    def evaluate(self, expression: str, frame: int = 0) -> str:
        self.payload(f"-stack-select-frame {frame}")
        return self.payload(f"-data-evaluate-expression {_quote(expression)}")["value"]

    @property
    def program_output(self) -> str:
        """What the debuggee printed so far."""
        return "".join(r["payload"] + "\n" for r in self.transcript
                       if r["type"] == "output" and r["payload"])

    def _until(self, done, timeout: float | None) -> Reply:
        deadline = time.monotonic() + (timeout or self.timeout)
        records: list[dict] = []
        while True:
            while self.unread:
                record = self.unread.pop(0)
                records.append(record)
                if done(record):
                    return Reply(record, records)
            if time.monotonic() > deadline:
                raise GdbTimeout("gdb did not answer in time; it printed:\n" + _text(records))
            fresh = self.controller.get_gdb_response(timeout_sec=0.05, raise_error_on_timeout=False)
            self.unread += fresh
            self.transcript += fresh

    def output(self) -> str:
        """Everything gdb printed so far, for assertion messages."""
        return _text(self.transcript)


def _quote(command: str) -> str:
    return '"' + command.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _text(records: list[dict]) -> str:
    return "".join(str(r.get("payload") or "") if r["type"] in ("console", "target", "log")
                   else f"[{r['type']} {r.get('message')} {r.get('payload')}]\n" for r in records)
