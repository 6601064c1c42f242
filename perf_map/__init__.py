"""perf support: perf map and jitdump writers (code observers), the perf record/inject/
report driver, and flame graphs.

`observers.observers_from_args` makes the observers `stackstitch run --perf-map /
--jitdump[=DIR]` hand to `Store(code_observers=...)`; `perfmap` and `jitdump` write and read
the two formats; `ehframe` lays out per-function unwind data the way `perf inject` maps it;
`perftool` runs perf; `flamegraph` folds `perf script` stacks and draws the SVG; `cli` is
`stackstitch perf`.
"""
