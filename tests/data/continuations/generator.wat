;; A countdown generator and its drivers: one run to completion, many short-lived runs
;; (create-run-finish churn), many continuations suspended at the same time, and many
;; created and never resumed.
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (tag $yield (param i32))
  (global $start (mut i32) (i32.const 0))
  (table $held 0 (ref null $ct))

  ;; Yields $start, $start - 1, ..., 1, then returns.
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

  ;; Resumes $k until it returns; the sum of what it yielded.
  (func $drain (param $k (ref null $ct)) (result i64)
    (local $total i64)
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

  ;; n suspend/resume round trips: n + (n - 1) + ... + 1.
  (func $sum (export "sum") (param $n i32) (result i64)
    (global.set $start (local.get $n))
    (call $drain (cont.new $ct (ref.func $countdown))))

  ;; `cycles` generators created, run to completion and finished: 3 * cycles.
  (func (export "churn") (param $cycles i32) (result i64)
    (local $total i64)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $cycles)))
        (local.set $total (i64.add (local.get $total) (call $sum (i32.const 2))))
        (local.set $cycles (i32.sub (local.get $cycles) (i32.const 1)))
        (br $next)))
    (local.get $total))

  ;; n generators suspended at once (each after its first value), then all drained: 6 * n.
  (func (export "hold") (param $n i32) (result i64)
    (local $i i32) (local $k (ref null $ct)) (local $total i64)
    (global.set $start (i32.const 3))
    (drop (table.grow $held (ref.null $ct) (i32.sub (local.get $n) (table.size $held))))
    (block $all_suspended
      (loop $next
        (br_if $all_suspended (i32.ge_u (local.get $i) (local.get $n)))
        (block $yielded (result i32 (ref $ct))
          (resume $ct (on $yield $yielded) (cont.new $ct (ref.func $countdown)))
          (unreachable))
        (local.set $k)
        (table.set $held (local.get $i) (local.get $k))
        (i64.extend_i32_u)
        (local.get $total)
        (i64.add)
        (local.set $total)
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.set $i (i32.const 0))
    (block $all_drained
      (loop $next
        (br_if $all_drained (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $total (i64.add (local.get $total) (call $drain (table.get $held (local.get $i)))))
        (table.set $held (local.get $i) (ref.null $ct))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $total))

  ;; n generators created and dropped, none ever resumed: n.
  (func (export "unresumed") (param $n i32) (result i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (drop (cont.new $ct (ref.func $countdown)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $i))
)
