;; main resumes `outer`; outer -> f1 -> f2; f2 resumes `inner`; inner -> leaf.
(module
  (type $ft (func (result i32)))
  (type $ct (cont $ft))
  (func $leaf (result i32) (i32.const 7))
  (func $inner (result i32) (i32.add (call $leaf) (i32.const 1)))
  (func $f2 (result i32) (i32.add (resume $ct (cont.new $ct (ref.func $inner))) (i32.const 2)))
  (func $f1 (result i32) (i32.add (call $f2) (i32.const 3)))
  (func $outer (result i32) (i32.add (call $f1) (i32.const 4)))
  (func $main (export "main") (result i32) (resume $ct (cont.new $ct (ref.func $outer))))
  (elem declare func $inner $outer))
