;; Sieve of Eratosthenes over linear memory, repeated: byte loads and stores in tight loops.
;; Returns the number of primes below $n (the last repetition's count).
(module
  (memory 1)
  (func (export "sieve") (param $n i32) (param $reps i32) (result i32)
    (local $i i32) (local $j i32) (local $count i32)
    ;; grow memory to hold one byte per number
    (if (i32.gt_u (local.get $n) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow
        (i32.sub (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))
                 (memory.size))))))
    (loop $rep
      ;; mark everything as a candidate prime
      (memory.fill (i32.const 0) (i32.const 1) (local.get $n))
      (local.set $i (i32.const 2))
      (block $done
        (loop $outer
          (br_if $done (i32.gt_u (i32.mul (local.get $i) (local.get $i)) (local.get $n)))
          (if (i32.load8_u (local.get $i))
            (then
              (local.set $j (i32.mul (local.get $i) (local.get $i)))
              (block $inner_done
                (loop $inner
                  (br_if $inner_done (i32.ge_u (local.get $j) (local.get $n)))
                  (i32.store8 (local.get $j) (i32.const 0))
                  (local.set $j (i32.add (local.get $j) (local.get $i)))
                  (br $inner)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $outer)))
      ;; count the survivors
      (local.set $count (i32.const 0))
      (local.set $i (i32.const 2))
      (block $counted
        (loop $count_loop
          (br_if $counted (i32.ge_u (local.get $i) (local.get $n)))
          (local.set $count (i32.add (local.get $count) (i32.load8_u (local.get $i))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $count_loop)))
      (local.set $reps (i32.sub (local.get $reps) (i32.const 1)))
      (br_if $rep (i32.gt_s (local.get $reps) (i32.const 0))))
    (local.get $count)))
