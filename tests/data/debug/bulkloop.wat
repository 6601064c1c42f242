;; A loop that keeps six locals in registers, all the integer ones the engine pins to (r12,
;; r13, rbx, r10, r9, r8), and calls the bulk-memory stubs while they are only there. After
;; k iterations $i is k and $a..$e are 1..5 times k+1 (before $i's increment); `spread N`
;; returns their sum after N iterations.
(module
  (memory 1)
  (func $spread (export "spread") (param $n i32) (result i32)
    (local $i i32) (local $a i32) (local $b i32) (local $c i32) (local $d i32) (local $e i32)
    (loop $next
      (local.set $a (i32.add (local.get $a) (i32.const 1)))
      (local.set $b (i32.add (local.get $b) (i32.const 2)))
      (local.set $c (i32.add (local.get $c) (i32.const 3)))
      (local.set $d (i32.add (local.get $d) (i32.const 4)))
      (local.set $e (i32.add (local.get $e) (i32.const 5)))
      (memory.fill (local.get $i) (local.get $a) (i32.const 64))
      (memory.copy (i32.const 4096) (local.get $i) (i32.const 64))
      (drop (memory.grow (i32.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
    (i32.add (local.get $a) (i32.add (local.get $b) (i32.add (local.get $c)
      (i32.add (local.get $d) (local.get $e)))))))
