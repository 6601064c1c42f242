"""`stackstitch wast`: run WebAssembly conformance scripts against the engine.

`wasm-tools json-from-wast` splits each script into JSON commands plus binary modules,
so this module only executes commands. Each script runs in a forked child process with a
fresh Store: a crash or a hang in generated code then costs that script, not the run, and
scripts run in parallel. The child reports every command over a pipe; the parent collects
the reports, prints one line per script in the order given and the `N passed, M failed`
total.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import values
from .frontend.loader import LoadError, load_bytes
from .runtime.store import LinkError, Store, Trap, WasmException
from .host.spectest import spectest_imports
from .frontend.wasmtools import ToolError, json_from_wast

DEFAULT_TIMEOUT = 10.0
# How long the parent waits past a command's time limit before it kills a silent child:
# the child's own alarm cannot interrupt generated code, only Python code.
KILL_GRACE = 5.0


class CommandFailed(Exception):
    """A command did not do what the script expects; the message is the one-line reason."""


class CommandTimeout(Exception):
    """Raised by the alarm handler when a command exceeds its time limit."""


# ---------------------------------------------------------------- executing one script

class Script:
    """The state of one running script: its Store, named instances and registrations."""

    def __init__(self, wasm_dir: Path, switching: str = "native"):
        self.wasm_dir = wasm_dir
        self.store = Store(switching=switching)
        # One dict serves every instantiation: spectest plus whatever `register` adds.
        self.linkable = spectest_imports(self.store)
        self.instances = {}
        self.definitions = {}
        self.current = None
        self.failed_module_line = None  # explains "no current module" after a failed module
        self.handlers = {
            "module": self.module,
            "module_definition": self.module_definition,
            "module_instance": self.module_instance,
            "register": self.register,
            "action": self.action,
            "assert_return": self.assert_return,
            "assert_trap": self.assert_trap,
            "assert_exhaustion": self.assert_trap,
            "assert_suspension": self.assert_trap,
            "assert_exception": self.assert_exception,
            "assert_invalid": self.assert_rejected,
            "assert_malformed": self.assert_rejected,
            "assert_unlinkable": self.assert_unlinkable,
            "assert_uninstantiable": self.assert_uninstantiable,
        }

    def run(self, command: dict) -> str | None:
        """Execute one command; None if it passed, else the one-line reason it failed."""
        handler = self.handlers.get(command["type"])
        if handler is None:
            return f"unsupported command {command['type']}"
        try:
            handler(command)
        except CommandFailed as e:
            return str(e)
        except CommandTimeout:
            return "timed out"
        except Exception as e:  # an engine bug must fail the command, not the run
            return one_line(f"internal error: {type(e).__name__}: {e}")
        return None

    # -- modules

    def load(self, command: dict):
        """Decode and validate the command's module; text modules come pre-assembled."""
        filename = command.get("binary_filename", command["filename"])
        try:
            return load_bytes((self.wasm_dir / filename).read_bytes())
        except LoadError as e:
            raise CommandFailed(f"module failed to load: {e}") from None

    def instantiate(self, module, name: str | None):
        try:
            return self.store.instantiate(module, self.linkable, name=name)
        except LinkError as e:
            raise CommandFailed(f"module failed to link: {e}") from None
        except Trap as e:
            raise CommandFailed(f"instantiation trapped: {e.message}") from None

    def module(self, command: dict) -> None:
        self.current = None  # commands after a module that fails must not use the old one
        self.failed_module_line = command["line"]
        self.current = self.instantiate(self.load(command), command.get("name"))
        self.failed_module_line = None
        if command.get("name"):
            self.instances[command["name"]] = self.current

    def module_definition(self, command: dict) -> None:
        self.definitions[command.get("name")] = self.load(command)

    def module_instance(self, command: dict) -> None:
        if command.get("module") not in self.definitions:
            raise CommandFailed(f"unknown module definition {command.get('module')}")
        self.current = self.instantiate(self.definitions[command.get("module")],
                                        command.get("instance"))
        if command.get("instance"):
            self.instances[command["instance"]] = self.current

    def register(self, command: dict) -> None:
        instance = self.instance(command.get("name"))
        for field_name, extern in instance.exports.items():
            self.linkable[(command["as"], field_name)] = extern

    def instance(self, name: str | None):
        instance = self.instances.get(name) if name else self.current
        if instance is not None:
            return instance
        if name:
            raise CommandFailed(f"no module {name}")
        if self.failed_module_line is not None:
            raise CommandFailed(f"no current module (the module at line "
                                f"{self.failed_module_line} failed)")
        raise CommandFailed("no current module")

    # -- actions

    def perform(self, action: dict) -> list[int]:
        """Invoke an export or read a global; raw results."""
        instance = self.instance(action.get("module"))
        name = action["field"]
        if name not in instance.exports:
            raise CommandFailed(f"no export {name!r}")
        if action["type"] == "get":
            return [instance.exports[name].get()]
        args = [values.wast_arg(arg, self.store) for arg in action["args"]]
        return instance.invoke(name, args)

    def perform_expecting_success(self, action: dict) -> list[int]:
        try:
            return self.perform(action)
        except Trap as e:
            raise CommandFailed(f"trapped: {e.message}") from None
        except WasmException:
            raise CommandFailed("uncaught exception") from None

    def action(self, command: dict) -> None:
        self.perform_expecting_success(command["action"])

    def assert_return(self, command: dict) -> None:
        results = self.perform_expecting_success(command["action"])
        expected = command["expected"]
        if len(results) != len(expected):
            raise CommandFailed(f"expected {len(expected)} results, got {len(results)}")
        if not all(values.wast_matches(want, got, self.store)
                   for want, got in zip(expected, results)):
            wanted = ", ".join(values.describe_expected(want) for want in expected)
            got = ", ".join(values.describe_actual(raw, want["type"])
                            for want, raw in zip(expected, results))
            raise CommandFailed(f"expected {wanted}, got {got}")

    def assert_trap(self, command: dict) -> None:
        """assert_trap, assert_exhaustion, assert_suspension: a trap whose message starts
        with the expected text, as the reference interpreter compares."""
        try:
            results = self.perform(command["action"])
        except Trap as e:
            expect_message(e.message, command["text"])
            return
        except WasmException:
            raise CommandFailed(f"expected trap {command['text']!r}, got an exception") from None
        raise CommandFailed(f"expected trap {command['text']!r}, returned {len(results)} results")

    def assert_exception(self, command: dict) -> None:
        try:
            self.perform(command["action"])
        except WasmException:
            return
        except Trap as e:
            raise CommandFailed(f"expected an exception, trapped: {e.message}") from None
        raise CommandFailed("expected an exception, returned normally")

    # -- modules that must fail

    def assert_rejected(self, command: dict) -> None:
        """assert_invalid and assert_malformed: the loader must refuse the module. A text
        module wasm-tools could not assemble has no binary: that is already a rejection."""
        if command["module_type"] == "text" and "binary_filename" not in command:
            return
        try:
            self.load(command)
        except CommandFailed:
            return
        raise CommandFailed(f"module was accepted, expected {command['text']!r}")

    def assert_unlinkable(self, command: dict) -> None:
        module = self.load(command)
        try:
            self.store.instantiate(module, self.linkable)
        except LinkError:
            return
        except Trap as e:
            raise CommandFailed(f"expected a link error, trapped: {e.message}") from None
        raise CommandFailed(f"module linked, expected {command['text']!r}")

    def assert_uninstantiable(self, command: dict) -> None:
        module = self.load(command)
        try:
            self.store.instantiate(module, self.linkable)
        except Trap as e:
            expect_message(e.message, command["text"])
            return
        except LinkError as e:
            raise CommandFailed(f"expected a trap, failed to link: {e}") from None
        raise CommandFailed(f"module instantiated, expected trap {command['text']!r}")


def expect_message(message: str, expected: str) -> None:
    if not message.startswith(expected):
        raise CommandFailed(f"expected trap {expected!r}, got {message!r}")


def one_line(text: str) -> str:
    return " ".join(str(text).split())


# ---------------------------------------------------------------- the child process

def _on_alarm(_signum, _frame):
    raise CommandTimeout


def run_script_in_child(wast_path: Path, timeout: float, report, switching: str = "native") -> None:
    """Run one script, writing report lines: `T total`, then per command `L line` and
    `P` or `F reason`, and `D` when done; `E reason` if the script cannot be converted."""
    signal.signal(signal.SIGALRM, _on_alarm)
    with tempfile.TemporaryDirectory(prefix="stackstitch-wast-") as tmp:
        try:
            json_path = json_from_wast(wast_path, tmp)
            commands = json.loads(json_path.read_text())["commands"]
        except (ToolError, OSError, ValueError) as e:
            report(f"E cannot read script: {one_line(e)}")
            return
        report(f"T {len(commands)}")
        script = Script(Path(tmp), switching)
        for command in commands:
            report(f"L {command['line']}")
            try:
                signal.setitimer(signal.ITIMER_REAL, timeout)
                reason = script.run(command)
            except CommandTimeout:  # the alarm fired outside the handler's try
                reason = "timed out"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            report("P" if reason is None else f"F {one_line(reason)}")
        report("D")


# ---------------------------------------------------------------- the parent process

@dataclass
class Outcome:
    """What one script did: its command count and (line, reason) for each failure."""

    name: str
    total: int = 0
    finished: int = 0
    failures: list[tuple[int | None, str]] = field(default_factory=list)
    not_run: int = 0  # commands lost when the child died or was killed
    current_line: int | None = None
    complete: bool = False

    @property
    def failed(self) -> int:
        return len(self.failures) + self.not_run


class Child:
    """A forked process running one script, and the report it has sent so far."""

    def __init__(self, path: Path, timeout: float, switching: str):
        self.outcome = Outcome(path.name)
        self.switching = switching
        self.timeout = timeout
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()  # or the child would repeat the parent's buffered output
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(read_fd)
            self._be_child(path, write_fd)
        os.close(write_fd)
        self.fd = read_fd
        self.buffer = b""
        self.last_heard = time.monotonic()

    def _be_child(self, path: Path, write_fd: int) -> None:
        status = 0
        try:
            with os.fdopen(write_fd, "w", buffering=1) as pipe:
                run_script_in_child(path, self.timeout, lambda line: pipe.write(line + "\n"),
                                    self.switching)
        except BaseException:  # never return into the parent's code
            status = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def read(self) -> bool:
        """Consume available report lines; False once the child has closed its end."""
        data = os.read(self.fd, 65536)
        self.last_heard = time.monotonic()
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            self._apply(line.decode("utf-8", "replace"))
        return bool(data)

    def _apply(self, line: str) -> None:
        kind, _, rest = line.partition(" ")
        outcome = self.outcome
        if kind == "T":
            outcome.total = int(rest)
        elif kind == "L":
            outcome.current_line = int(rest)
        elif kind == "P":
            outcome.finished += 1
            outcome.current_line = None
        elif kind == "F":
            outcome.finished += 1
            outcome.failures.append((outcome.current_line, rest))
            outcome.current_line = None
        elif kind == "D":
            outcome.complete = True
        elif kind == "E":
            outcome.total, outcome.finished, outcome.complete = 1, 1, True
            outcome.failures.append((None, rest))

    def is_hung(self) -> bool:
        return time.monotonic() - self.last_heard > self.timeout + KILL_GRACE

    def finish(self, killed: bool = False) -> Outcome:
        """Reap the process and charge any command it did not report as failed."""
        if killed:
            os.kill(self.pid, signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        outcome = self.outcome
        if not outcome.complete:
            if killed:
                why = "timed out in generated code; script abandoned"
            elif os.WIFSIGNALED(status):
                why = f"engine crashed ({signal.Signals(os.WTERMSIG(status)).name})"
            else:
                why = f"script runner died (exit status {os.waitstatus_to_exitcode(status)})"
            outcome.failures.append((outcome.current_line, why))
            # The command that was running fails; the ones after it never ran. A crash
            # after the last command (or before the count arrived) still counts once.
            unreported = max(outcome.total - outcome.finished, 1)
            outcome.not_run = unreported - 1
            outcome.total = outcome.finished + unreported
        return outcome


def run_scripts(paths: list[Path], timeout: float, jobs: int, switching: str = "native"):
    """Yield the Outcome of each script, in the order given, running `jobs` at a time."""
    waiting = list(enumerate(paths))
    running: dict[int, tuple[int, Child]] = {}
    done: dict[int, Outcome] = {}
    next_index = 0
    while waiting or running:
        while waiting and len(running) < jobs:
            index, path = waiting.pop(0)
            if not path.is_file():
                done[index] = Outcome(path.name, 1, 1, [(None, "no such file")], complete=True)
                continue
            child = Child(path, timeout, switching)
            running[child.fd] = (index, child)
        if running:
            readable, _, _ = select.select(list(running), [], [], 1.0)
            for fd in readable:
                index, child = running[fd]
                if not child.read():
                    del running[fd]
                    done[index] = child.finish()
            for fd, (index, child) in list(running.items()):
                if child.is_hung():
                    del running[fd]
                    done[index] = child.finish(killed=True)
        while next_index in done:
            yield done.pop(next_index)
            next_index += 1


def first_failure(outcome: Outcome) -> str:
    """Why the script failed, shown without -v: its first failure."""
    if not outcome.failures:
        return f", {outcome.not_run} commands not run"
    line, reason = outcome.failures[0]
    return f", first at line {line}: {reason}" if line is not None else f": {reason}"


def run_files(paths: list[str], verbose: bool = False, timeout: float = DEFAULT_TIMEOUT,
              jobs: int | None = None, out=sys.stdout, switching: str = "native") -> int:
    """The `stackstitch wast` command; exit status 0 iff every command passed."""
    passed = failed = 0
    for outcome in run_scripts([Path(p) for p in paths], timeout, jobs or os.cpu_count() or 1,
                               switching):
        passed += outcome.total - outcome.failed
        failed += outcome.failed
        if outcome.failed:
            print(f"FAIL {outcome.name}: {outcome.failed} of {outcome.total} failed{first_failure(outcome)}",
                  file=out)
        else:
            print(f"PASS {outcome.name} ({outcome.total} commands)", file=out)
        if verbose:
            for line, reason in outcome.failures:
                print(f"  {outcome.name}:{line if line is not None else '-'}: {reason}", file=out)
            if outcome.not_run:
                print(f"  {outcome.name}: {outcome.not_run} later commands not run", file=out)
        out.flush()
    print(f"{passed} passed, {failed} failed", file=out)
    return 0 if failed == 0 else 1
