;; main resumes `inner`; inner -> leaf; leaf calls the WASI import sched_yield, a Python
;; function, which runs on the main stack while the continuation's frames wait below it.
(module
  (type $ft (func (result i32)))
  (type $ct (cont $ft))
  (import "wasi_snapshot_preview1" "sched_yield" (func $sched_yield (result i32)))
  (memory (export "memory") 1)
  (func $leaf (result i32) (i32.add (i32.const 7) (call $sched_yield)))
  (func $inner (result i32) (i32.add (call $leaf) (i32.const 1)))
  (func $main (export "main") (result i32) (resume $ct (cont.new $ct (ref.func $inner))))
  (elem declare func $inner))
