;; An integer hash/mix loop (splitmix64-style finaliser folded into an accumulator):
;; 64-bit multiplies, shifts, xors and rotates with a loop-carried dependency.
(module
  (func (export "mix") (param $n i32) (result i64)
    (local $x i64) (local $acc i64) (local $i i32)
    (local.set $x (i64.const 0x9E3779B97F4A7C15))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $x (i64.add (local.get $x) (i64.const 0x9E3779B97F4A7C15)))
        (local.set $acc (local.get $x))
        (local.set $acc (i64.mul (i64.xor (local.get $acc) (i64.shr_u (local.get $acc) (i64.const 30)))
                                 (i64.const 0xBF58476D1CE4E5B9)))
        (local.set $acc (i64.mul (i64.xor (local.get $acc) (i64.shr_u (local.get $acc) (i64.const 27)))
                                 (i64.const 0x94D049BB133111EB)))
        (local.set $acc (i64.xor (local.get $acc) (i64.shr_u (local.get $acc) (i64.const 31))))
        (local.set $x (i64.xor (local.get $x)
                               (i64.rotl (local.get $acc) (i64.extend_i32_u (i32.and (local.get $i) (i32.const 63))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $x)))
