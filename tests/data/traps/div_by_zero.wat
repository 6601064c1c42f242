;; main resumes outer, outer resumes inner, inner calls leaf, leaf divides by zero.
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (func $leaf (param i32) (result i32)
    (i32.div_s (i32.const 1) (local.get 0)))
  (func $inner
    (drop (call $leaf (i32.const 0))))
  (func $outer
    (resume $ct (cont.new $ct (ref.func $inner))))
  (func $main (export "main")
    (resume $ct (cont.new $ct (ref.func $outer))))
  (elem declare func $inner $outer))
