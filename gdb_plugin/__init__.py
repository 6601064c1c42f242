"""gdb Python extension: continuation-aware backtraces (not built yet)."""
