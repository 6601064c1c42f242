;; A continuation suspended two frames deep with locals of several types, for selecting it
;; and reading its frames: main resumes producer(42), which calls step, which suspends;
;; main keeps the continuation in $kept and calls checkpoint (where the tests stop).
;;   step     value = 42000, half = 21000
;;   producer seed = 42, total = 42000, ratio = 2.5
;; `spin` does the same, prints "ready" (WASI) and loops in checkpoint forever (for
;; attaching and for killing it into a core file).
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (type $ft (func (param i32) (result i32)))
  (type $ct (cont $ft))
  (type $rest_ft (func (result i32)))
  (type $rest (cont $rest_ft))  ;; what is left of producer after its yield
  (tag $yield (param i64))
  (memory $heap (export "memory") 1 4)
  (data (i32.const 16) "ready\n")
  (data (i32.const 0) "\10\00\00\00\06\00\00\00")  ;; one iovec: 6 bytes at 16
  (table $callbacks 2 funcref)
  (global $spin (mut i32) (i32.const 0))
  (global $kept (mut (ref null $rest)) (ref.null $rest))

  (func $step (param $value i64) (result i32)
    (local $half i64)
    (local.set $half (i64.div_u (local.get $value) (i64.const 2)))
    (suspend $yield (local.get $half))
    (i32.const 0))
  (func $producer (param $seed i32) (result i32)
    (local $total i64) (local $ratio f64)
    (local.set $total (i64.mul (i64.extend_i32_u (local.get $seed)) (i64.const 1000)))
    (local.set $ratio (f64.const 2.5))
    (call $step (local.get $total)))
  (func $checkpoint
    (if (global.get $spin)
      (then (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
    (loop $forever (br_if $forever (global.get $spin))))

  (func $main (export "main")
    (block $yielded (result i64 (ref $rest))
      (drop (resume $ct (on $yield $yielded) (i32.const 42) (cont.new $ct (ref.func $producer))))
      (return))
    (global.set $kept)
    (drop)
    (call $checkpoint))
  (func (export "spin")
    (global.set $spin (i32.const 1))
    (call $main))
  (elem declare func $producer))
