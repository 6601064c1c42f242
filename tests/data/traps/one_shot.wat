;; A continuation resumed twice: the second resume traps inside another continuation.
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (func $noop)
  (func $twice
    (local $k (ref null $ct))
    (local.set $k (cont.new $ct (ref.func $noop)))
    (resume $ct (local.get $k))
    (resume $ct (local.get $k)))
  (func $main (export "main")
    (resume $ct (cont.new $ct (ref.func $twice))))
  (elem declare func $noop $twice))
