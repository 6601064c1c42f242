;; Deep handler search: `run(n)` nests 10 continuations, each resumed with a handler for
;; $other only, under one resume that handles $yield. The innermost suspends $yield n
;; times; each suspend passes 10 non-matching handlers before it finds its own, and each
;; resume switches back into the whole chain. Returns the sum of the yielded values.
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (tag $yield (param i32))
  (tag $other)
  (global $levels (mut i32) (i32.const 0))
  (global $start (mut i32) (i32.const 0))

  ;; With levels left, resumes another level under a handler for $other; at the bottom,
  ;; yields $start, $start - 1, ..., 1.
  (func $level
    (local $i i32)
    (if (global.get $levels)
      (then
        (global.set $levels (i32.sub (global.get $levels) (i32.const 1)))
        (block $on_other (result (ref $ct))
          (resume $ct (on $other $on_other) (cont.new $ct (ref.func $level)))
          (return))
        (unreachable)))
    (local.set $i (global.get $start))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $i)))
        (suspend $yield (local.get $i))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br $next))))
  (elem declare func $level)

  (func (export "run") (param $n i32) (result i64)
    (local $k (ref null $ct)) (local $total i64)
    (global.set $levels (i32.const 10))
    (global.set $start (local.get $n))
    (local.set $k (cont.new $ct (ref.func $level)))
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
