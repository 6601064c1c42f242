"""DWARF CFI writer and evaluator, ELF writer for JIT objects, GDB JIT interface (not built yet)."""
