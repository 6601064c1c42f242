"""`record`: a class statement that makes a named tuple, as `typing.NamedTuple` does.

The engine and the debug info describe their immutable records (types, places, rules,
compiled functions) as named tuples written in class syntax. `typing.NamedTuple` would do,
but importing `typing` costs 3-4 ms of every `stackstitch run`, whose cached start-up is
about 50 ms; `record` builds the same class from `collections.namedtuple`.
"""

from __future__ import annotations

from collections import namedtuple

# What the class body may hold besides fields and methods, and is not copied: the tuple
# class has its own.
_OWN = frozenset(("__module__", "__qualname__", "__dict__", "__weakref__"))


def record(cls: type) -> type:
    """The named tuple whose fields are `cls`'s annotated names in order (those given a
    value take it as their default), with `cls`'s docstring, methods and other attributes.
    Like `typing.NamedTuple`, the result is the tuple class itself, not a subclass."""
    body = cls.__dict__
    fields = tuple(body.get("__annotations__", {}))
    defaults = [body[name] for name in fields if name in body]
    if any(name not in body for name in fields[len(fields) - len(defaults):]):
        raise TypeError(f"{cls.__name__}: a field without a default follows one with a default")
    tuple_class = namedtuple(cls.__name__, fields, defaults=defaults, module=cls.__module__)
    tuple_class.__qualname__ = cls.__qualname__
    for key, value in body.items():
        if key not in _OWN and key not in fields:
            setattr(tuple_class, key, value)
    return tuple_class
