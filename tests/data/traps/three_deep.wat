;; main resumes level1, which resumes level2, which resumes level3; level3 calls leaf,
;; which divides by zero: a trap three continuations deep.
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (func $leaf (param $divisor i32) (result i32)
    (i32.div_s (i32.const 1) (local.get $divisor)))
  (func $level3 (drop (call $leaf (i32.const 0))))
  (func $level2 (resume $ct (cont.new $ct (ref.func $level3))))
  (func $level1 (resume $ct (cont.new $ct (ref.func $level2))))
  (func $main (export "main") (resume $ct (cont.new $ct (ref.func $level1))))
  (elem declare func $level1 $level2 $level3))
