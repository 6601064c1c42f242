;; A suspend inside two continuations that no resume handles.
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (tag $yield)
  (tag $other)
  (func $deep
    (suspend $other))
  (func $inner
    (call $deep))
  (func $outer
    (block $h (result (ref $ct))
      (resume $ct (on $yield $h) (cont.new $ct (ref.func $inner)))
      (return))
    (drop))
  (func $main (export "main")
    (resume $ct (cont.new $ct (ref.func $outer))))
  (elem declare func $inner $outer))
