;; Generator: `run(n)` makes n suspend/resume round trips between a consumer and a
;; countdown generator; returns the sum of the yielded values, n(n+1)/2.
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (tag $yield (param i32))
  (global $start (mut i32) (i32.const 0))

  (func $countdown
    (local $i i32)
    (local.set $i (global.get $start))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $i)))
        (suspend $yield (local.get $i))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br $next))))
  (elem declare func $countdown)

  (func (export "run") (param $n i32) (result i64)
    (local $k (ref null $ct)) (local $total i64)
    (global.set $start (local.get $n))
    (local.set $k (cont.new $ct (ref.func $countdown)))
    (block $finished
      (loop $again
        (block $yielded (result i32 (ref $ct))
          (resume $ct (on $yield $yielded) (local.get $k))
          (br $finished))
        (local.set $k)
        (i64.extend_i32_u)
        (local.get $total)
        (i64.add)
        (local.set $total)
        (br $again)))
    (local.get $total))
)
