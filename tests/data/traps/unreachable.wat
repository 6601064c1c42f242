;; `unreachable` in a continuation that was suspended once and resumed again.
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (tag $yield)
  (func $fail
    (unreachable))
  (func $body
    (suspend $yield)
    (call $fail))
  (func $main (export "main")
    (local $k (ref null $ct))
    (local.set $k (cont.new $ct (ref.func $body)))
    (block $on_yield (result (ref $ct))
      (resume $ct (on $yield $on_yield) (local.get $k))
      (return))
    (local.set $k)
    (resume $ct (local.get $k)))
  (elem declare func $body))
