"""The `spectest` host module that the conformance scripts import.

Its exports and their types are fixed by the spec's reference interpreter; the scripts
check both (imports.wast links against every one with matching and mismatching types).
Host objects belong to one Store, so the module is built afresh for each.
"""

from __future__ import annotations

from ..frontend.types import FUNCREF, FuncType, GlobalType, Limits, MemoryType, TableType
from ..values import f32_to_bits, f64_to_bits

# The print functions' parameter types; their output is not part of any assertion.
PRINT_FUNCTIONS = {
    "print": (),
    "print_i32": ("i32",),
    "print_i64": ("i64",),
    "print_f32": ("f32",),
    "print_f64": ("f64",),
    "print_i32_f32": ("i32", "f32"),
    "print_f64_f64": ("f64", "f64"),
}


def _ignore(*_raw_args: int) -> None:
    """The print functions stay silent so that script output is only pass/fail lines."""


def spectest_imports(store) -> dict:
    """Externs of the `spectest` module, keyed `("spectest", name)` like any imports dict."""
    externs = {
        name: store.host_function(FuncType(params, ()), _ignore, f"spectest.{name}")
        for name, params in PRINT_FUNCTIONS.items()
    }
    externs.update(
        global_i32=store.new_global(GlobalType("i32", False), 666),
        global_i64=store.new_global(GlobalType("i64", False), 666),
        global_f32=store.new_global(GlobalType("f32", False), f32_to_bits(666.6)),
        global_f64=store.new_global(GlobalType("f64", False), f64_to_bits(666.6)),
        table=store.new_table(TableType(FUNCREF, Limits(10, 20))),
        table64=store.new_table(TableType(FUNCREF, Limits(10, 20, is64=True))),
        memory=store.new_memory(MemoryType(Limits(1, 2))),
    )
    return {("spectest", name): extern for name, extern in externs.items()}
