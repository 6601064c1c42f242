"""The command line's options: `stackstitch run`, `compile` and `wast`, and the types of
their values.

Shared by the dispatcher (cli.py) and `stackstitch gdb`, `perf record` and `trace record`,
which take `run`'s options and check them (parse_run_arguments) before they start. Imports
nothing of the engine at module level, so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re

_SIZE = re.compile(r"(\d+)([KMG]?)(i?B)?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


class CommandLineParser(argparse.ArgumentParser):
    """Usage errors in one line with a pointer to --help, not argparse's usage block."""

    def error(self, message: str):
        required = "the following arguments are required: "
        if message.startswith(required):  # argparse lists ARG too, though it may be empty
            message = f"missing {message[len(required):].split(', ')[0]}"
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def parse_subcommand(parser: argparse.ArgumentParser, subcommands: dict, argv: list[str],
                     dest: str) -> argparse.Namespace:
    """Subcommands parse intermixed, so that `run m.wasm --invoke f 1 2` keeps its ARGs;
    the subcommand's name goes into `dest`. Help and usage errors exit (argparse)."""
    if argv and argv[0] in subcommands:
        namespace = subcommands[argv[0]].parse_intermixed_args(argv[1:])
        setattr(namespace, dest, argv[0])
        return namespace
    return parser.parse_args(argv)  # help, or the usage error for a missing/unknown command


def stack_size(text: str) -> int:
    """`--stack-size` value: bytes, with an optional K, M or G suffix (powers of 1024)."""
    from .runtime.continuations import MAX_STACK_SIZE, MIN_STACK_SIZE
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (examples: 65536, 512K, 8M)")
    size = int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
    if not MIN_STACK_SIZE <= size <= MAX_STACK_SIZE:
        raise argparse.ArgumentTypeError(f"stack size {text!r} out of range "
                                         f"({MIN_STACK_SIZE >> 10}K to {MAX_STACK_SIZE >> 30}G)")
    return size


def positive(convert):
    """An argparse type: `convert` the text and insist on a value above zero."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = 0
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value
    return parse


def parse_run_arguments(run_args: list[str]) -> argparse.Namespace:
    """`stackstitch run`'s arguments (after `run`), parsed as `run` would; ValueError (one
    line) if they are wrong. For commands that run `stackstitch run` under a tool (gdb,
    perf) or in a tracing store, so that a mistake shows before anything starts."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors), contextlib.redirect_stdout(io.StringIO()):
            return command_parser("run").parse_intermixed_args(run_args)
    except SystemExit:
        lines = errors.getvalue().strip().splitlines() or ["invalid arguments"]
        message = lines[-1].split("error: ", 1)[-1].rsplit(" (see `", 1)[0]  # not run's help
        raise ValueError(message) from None


# The subcommands with options of their own: help, description, epilog, and what adds
# their arguments. `perf`, `trace`, `gdb` and `lldb` parse their own command lines.
_RUN_DESCRIPTION = ("Instantiate MODULE (with WASI preview1 imports) and call the export NAME "
                    "with ARGs, or `_start`, or only its start function. Results are printed "
                    "one per line.")
_RUN_EPILOG = ("Arguments are converted by the parameter types: integers in decimal or hex "
               "(0x...), floats incl. nan, inf, -0 and hex floats, `null` for references. "
               "Put negative values other than plain decimals after `--` (-- -inf). "
               "Exit status: 0 success, 1 load/validation/link error, 2 usage error, "
               "134 trap or unhandled suspension, n for WASI proc_exit(n).")
_COMPILE_DESCRIPTION = (
    "Compile MODULE as `stackstitch run` with the same options would, and keep its code (and "
    "what debuggers are given) in the code cache ($XDG_CACHE_HOME/stackstitch), so that later "
    "runs start at once. Options that do not change the code are accepted and have no effect, "
    "so a run's command line with `run` replaced by `compile` fills the entry that run uses.")
_WAST_DESCRIPTION = ("Run WebAssembly spec test scripts, each in a fresh store. Prints one line "
                     "per script, then `N passed, M failed` counting commands. Exit status 0 "
                     "iff no command failed.")


def add_wast_options(wast: argparse.ArgumentParser) -> None:
    wast.add_argument("files", metavar="FILE", nargs="+", help="a .wast script")
    wast.add_argument("-v", "--verbose", action="store_true",
                      help="print each failed command with its line number and reason")
    wast.add_argument("--timeout", type=positive(float), default=10.0, metavar="SECONDS",
                      help="time limit per command (default: 10)")
    wast.add_argument("-j", "--jobs", type=positive(int), metavar="N",
                      help="scripts run in parallel (default: number of CPUs)")
    wast.add_argument("--switching", choices=("native", "libcall"), default="native",
                      help="how stack-switching instructions run (default: native)")


COMMANDS = {
    "run": ("run a module (.wasm or .wat)", _RUN_DESCRIPTION, _RUN_EPILOG, lambda p: add_run_options(p)),
    "compile": ("compile a module into the code cache, without running it", _COMPILE_DESCRIPTION,
                None, lambda p: add_run_options(p)),
    "wast": ("run spec test scripts (.wast)", _WAST_DESCRIPTION, None, add_wast_options),
}


def command_parser(name: str, commands=None) -> argparse.ArgumentParser:
    """The parser of subcommand `name` (in COMMANDS): added to `commands` (a subparsers
    action), or on its own, which is all a command line naming it needs."""
    help_text, description, epilog, add_options = COMMANDS[name]
    if commands is None:
        parser = CommandLineParser(prog=f"stackstitch {name}", description=description,
                                   epilog=epilog)
    else:
        parser = commands.add_parser(name, help=help_text, description=description, epilog=epilog)
    add_options(parser)
    return parser


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The whole command line (for help and usage errors), and the subcommands' parsers."""
    parser = CommandLineParser(
        prog="stackstitch",
        description="A native x86-64 WebAssembly engine whose switched stacks "
                    "(stack-switching proposal) are debuggable and profilable.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    subcommands = {name: command_parser(name, commands) for name in ("run", "compile")}
    commands.add_parser("perf", add_help=False, help="profile with perf: record, report, annotate")
    commands.add_parser("trace", add_help=False,
                        help="a timeline of every switch: record, report (Chrome trace JSON)")
    commands.add_parser("gdb", add_help=False,
                        help="debug with gdb and the continuation-aware plugin")
    commands.add_parser("lldb", add_help=False,
                        help="debug with lldb and the continuation-aware plugin")
    subcommands["wast"] = command_parser("wast", commands)
    return parser, subcommands


def add_run_options(run: argparse.ArgumentParser) -> None:
    """MODULE, ARGs and the options of `stackstitch run` (shared with `compile`)."""
    run.add_argument("module", metavar="MODULE", help="a .wasm binary or .wat text file")
    run.add_argument("args", metavar="ARG", nargs="*",
                     help="arguments for NAME, or the WASI program's arguments")
    run.add_argument("--invoke", metavar="NAME", help="the exported function to call")
    run.add_argument("--preload", action="append", default=[], metavar="NAME=MODULE",
                     help="instantiate MODULE first and let later modules import its exports "
                          "as NAME (repeatable, in order), as Wasmtime's --preload does")
    run.add_argument("--dir", action="append", default=[], metavar="HOST_DIR[::GUEST_DIR]",
                     help="give the WASI program the host directory HOST_DIR, under the name "
                          "GUEST_DIR (default: HOST_DIR as written); no path it opens can "
                          "leave it; repeatable")
    run.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                     help="set a WASI environment variable (without =VALUE: the host's value); "
                          "repeatable")
    run.add_argument("--trap-format", choices=("text", "json"), default="text",
                     help="how a trap is reported on stderr (default: text); json is one "
                          "document with `trap`, `frames` and `stacks`")
    run.add_argument("--no-color", action="store_true",
                     help="print the text trap report without colors and styles (they are "
                          "only used on a terminal anyway)")
    run.add_argument("--stack-size", type=stack_size, metavar="BYTES",
                     help="size of each continuation's stack, e.g. 1M (suffixes K, M, G; "
                          "default 256K); deeper recursion in a continuation traps with "
                          "'call stack exhausted'")
    run.add_argument("--switching", choices=("native", "libcall"),
                     help="how stack-switching instructions run: native code (default) or "
                          "calls into a runtime routine, for comparison")
    run.add_argument("--no-cache", action="store_true",
                     help="neither use nor fill the compiled-code cache "
                          "($XDG_CACHE_HOME/stackstitch, default ~/.cache/stackstitch)")
    run.add_argument("--no-gdb-jit", action="store_true",
                     help="do not register JIT code with debuggers (GDB JIT interface) nor "
                          "publish the debug root the gdb plugin reads; both are on by default")
    run.add_argument("--debug-info", action="store_true",
                     help="give debuggers the module's source-level info (its DWARF translated, "
                          "or a .wat file's lines) even if none traces the process as it "
                          "starts, for one that attaches later; about 2 s per MB of DWARF, "
                          "once (the result is cached). Under a debugger this is automatic")
    run.add_argument("--perf-map", action="store_true",
                     help="write /tmp/perf-<pid>.map naming the JIT code for perf")
    run.add_argument("--jitdump", nargs="?", const=".", metavar="DIR",
                     help="write DIR/jit-<pid>.dump for `perf inject --jit` (default DIR: .)")
