;; Unbounded recursion inside a continuation exhausts its stack.
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (func $recurse (param i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))
  (func $body
    (drop (call $recurse (i32.const 0))))
  (func $main (export "main")
    (resume $ct (cont.new $ct (ref.func $body))))
  (elem declare func $body))
