;; Continuations in every state for the gdb plugin's tests. Ids follow cont.new order:
;;   1 gen    suspended in gen_body (yield)
;;   2 pair   suspended: pair resumed 3 without a handler, so 3's yield suspends both
;;   3 sub    suspended, inside 2's segment
;;   4 gen    fresh (created, never resumed)
;;   5 outer  running: outer -> mid resumes 6
;;   6 inner  running, current: inner -> leaf (the breakpoint)
;; `spin` does the same, but leaf loops forever (for attaching to a running process).
(module
  (type $ft (func (result i32)))
  (type $ct (cont $ft))
  (tag $yield (param i32))
  (global $fresh (mut (ref null $ct)) (ref.null $ct))
  (global $spin (mut i32) (i32.const 0))

  (func $gen_body (result i32)
    (suspend $yield (i32.const 10))
    (i32.const 1))
  (func $gen (result i32) (i32.add (call $gen_body) (i32.const 2)))

  (func $sub_body (result i32)
    (suspend $yield (i32.const 20))
    (i32.const 3))
  (func $sub (result i32) (call $sub_body))
  (func $pair (result i32) (i32.add (resume $ct (cont.new $ct (ref.func $sub))) (i32.const 4)))

  (func $leaf (result i32)
    (loop $forever (br_if $forever (global.get $spin)))
    (i32.const 7))
  (func $inner (result i32) (i32.add (call $leaf) (i32.const 1)))
  (func $mid (result i32) (i32.add (resume $ct (cont.new $ct (ref.func $inner))) (i32.const 2)))
  (func $outer (result i32) (i32.add (call $mid) (i32.const 3)))

  ;; Resumes `k` until its first yield; the yielded value (the suspended rest is dropped).
  (func $first_yield (param $k (ref $ct)) (result i32)
    (block $yielded (result i32 (ref $ct))
      (drop (resume $ct (on $yield $yielded) (local.get $k)))
      (return (i32.const -1)))
    (drop))

  (func $main (export "main") (result i32)
    (i32.add
      (i32.add (call $first_yield (cont.new $ct (ref.func $gen)))
               (call $first_yield (cont.new $ct (ref.func $pair))))
      (block (result i32)
        (global.set $fresh (cont.new $ct (ref.func $gen)))
        (resume $ct (cont.new $ct (ref.func $outer))))))
  (func $spin_main (export "spin") (result i32)
    (global.set $spin (i32.const 1))
    (call $main))
  (elem declare func $gen $pair $sub $inner $outer))
