;; Host calls to a Python function, in-process: `calls(n)` calls the import n times from
;; the main stack, `calls_in_continuation(n)` makes the same loop run in a continuation
;; (each host call then moves to the main stack). Both return the sum of the results.
(module
  (type $ft (func (param i32) (result i32)))
  (type $ct (cont $ft))
  (import "host" "identity" (func $identity (param i32) (result i32)))
  (func $calls (export "calls") (param $n i32) (result i32)
    (local $sum i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $sum (i32.add (local.get $sum) (call $identity (local.get $n))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $sum))
  (elem declare func $calls)
  (func (export "calls_in_continuation") (param $n i32) (result i32)
    (resume $ct (local.get $n) (cont.new $ct (ref.func $calls))))
)
