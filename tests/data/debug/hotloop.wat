;; A loop that writes $i, $sum and $x on every iteration, after its call: the engine keeps
;; them in registers while the loop runs, and their frame slots are stale there. `fill N`
;; returns what they hold after N iterations; the tests stop in the loop and compare.
(module
  (memory (export "memory") 1)
  (func $square (param $v i32) (result i32)
    (i32.mul (local.get $v) (local.get $v)))
  (func $fill (export "fill") (param $n i32) (result i32 i32 f64)
    (local $i i32) (local $sum i32) (local $x f64)
    (loop $again
      (local.set $sum (i32.add (local.get $sum) (call $square (local.get $i))))
      (local.set $x (f64.add (local.get $x) (f64.const 0.5)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (i32.store (i32.shl (local.get $i) (i32.const 2)) (local.get $sum)) ;; an iteration ends
      (br_if $again (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $i) (local.get $sum) (local.get $x)))
