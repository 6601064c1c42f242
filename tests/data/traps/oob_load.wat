;; An out-of-bounds load one continuation deep.
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (memory 1)
  (func $load (param i32) (result i32)
    (i32.load (local.get 0)))
  (func $body
    (drop (call $load (i32.const 70000))))
  (func $main (export "main")
    (resume $ct (cont.new $ct (ref.func $body))))
  (elem declare func $body))
