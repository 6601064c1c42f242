;; Continuation lifetimes. `churn(n)`: n times, cont.new a small generator and run it to
;; completion (one suspend, two resumes). `hold(n)`: n generators suspended at the same
;; time, then all run to completion. Both return the sum of the yielded values.
;; `unresumed(n)`: n continuations created and dropped, never resumed; returns n.
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (tag $yield (param i32))
  (table $held 0 (ref null $ct))

  (func $once
    (suspend $yield (i32.const 1)))
  (elem declare func $once)

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

  (func (export "churn") (param $n i32) (result i64)
    (local $total i64)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $total
          (i64.add (local.get $total) (call $drain (cont.new $ct (ref.func $once)))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $total))

  (func (export "hold") (param $n i32) (result i64)
    (local $i i32) (local $k (ref null $ct)) (local $total i64)
    (drop (table.grow $held (ref.null $ct) (local.get $n)))
    (block $all_suspended
      (loop $next
        (br_if $all_suspended (i32.ge_u (local.get $i) (local.get $n)))
        (block $yielded (result i32 (ref $ct))
          (resume $ct (on $yield $yielded) (cont.new $ct (ref.func $once)))
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
    (block $all_done
      (loop $next
        (br_if $all_done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $total
          (i64.add (local.get $total) (call $drain (table.get $held (local.get $i)))))
        (table.set $held (local.get $i) (ref.null $ct))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $total))

  (func (export "unresumed") (param $n i32) (result i32)
    (local $i i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (drop (cont.new $ct (ref.func $once)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $i))
)
