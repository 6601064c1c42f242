"""perf map and jitdump writers, perf driver and flame graphs (not built yet)."""
