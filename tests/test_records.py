"""`engine.records.record` makes the named tuples `typing.NamedTuple` would, and a cached
`stackstitch run` imports none of the modules kept off its start-up path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from stackstitch.engine.records import record


@record
class Span:
    """A half-open range."""

    lo: int
    hi: int
    label: str = ""
    tags: tuple = ()

    def width(self) -> int:
        return self.hi - self.lo

    @property
    def empty(self) -> bool:
        return self.hi <= self.lo


def test_a_record_is_a_named_tuple_with_its_defaults_and_methods():
    span = Span(2, 7)
    assert span == (2, 7, "", ()) and isinstance(span, tuple)
    assert Span._fields == ("lo", "hi", "label", "tags")
    assert span._replace(label="x") == Span(2, 7, "x")
    assert (span.width(), span.empty, Span(3, 3).empty) == (5, False, True)
    assert hash(span) == hash((2, 7, "", ()))
    assert Span.__doc__ == "A half-open range." and Span.__qualname__ == "Span"
    assert Span.__module__ == __name__
    with pytest.raises(AttributeError):
        span.extra = 1  # no instance dictionary, as with typing.NamedTuple
    with pytest.raises(TypeError):
        Span(1)


def test_a_field_without_a_default_may_not_follow_one_with_a_default():
    with pytest.raises(TypeError, match="without a default follows"):
        @record
        class Wrong:
            a: int = 0
            b: int


ON_DEMAND = ("typing", "dataclasses", "rich", "capstone", "elftools")


def test_a_cached_run_imports_none_of_the_modules_kept_off_start_up(tmp_path):
    """What `stackstitch run` of a cached trivial module imports: not typing (3-4 ms),
    dataclasses, rich, capstone, nor pyelftools."""
    module = tmp_path / "one.wat"
    module.write_text('(module (func (export "one") (result i32) i32.const 1))')
    program = ("import json, sys\n"
               "from stackstitch.engine.cli import main\n"
               f"status = main(['run', {str(module)!r}, '--invoke', 'one'])\n"
               "print(json.dumps([status, sorted(sys.modules)]))")
    environment = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    for _ in range(2):  # the first run fills the cache
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                              env=environment, timeout=60)
    assert done.returncode == 0, done.stderr
    status, modules = json.loads(done.stdout.splitlines()[-1])
    assert status == 0
    loaded = {name.split(".")[0] for name in modules}
    assert not loaded & set(ON_DEMAND), sorted(loaded & set(ON_DEMAND))
