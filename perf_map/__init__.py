"""perf support: perf map and jitdump writers (code observers), the perf record/inject
driver, and the reports read from its samples; and the switch timeline of a tracing store.

`observers.observers_from_args` makes the observers `stackstitch run --perf-map /
--jitdump[=DIR]` hand to `Store(code_observers=...)`; `perfmap` and `jitdump` write and read
the two formats; `ehframe` lays out per-function unwind data the way `perf inject` maps it;
`perftool` runs perf; `samples` reads `perf script` output; `stacks` names each sample's
frames (host code grouped, continuation boundaries marked) and folds them; `report` prints
time per function or per continuation; `flamegraph` draws the SVG; `annotate` lists one
function's instructions; `cli` is `stackstitch perf`. `timeline` turns a tracing store's
events into tracks, `chrome_trace` writes them as trace-event JSON, `trace_report` and
`trace_html` summarise and draw that file; `trace_cli` is `stackstitch trace`.
"""
