;; A small compute example: the sum of the squares 1..n, with a loop over linear memory.
;; `main` returns 1^2 + 2^2 + ... + 10^2 = 385.
;; Try also: stackstitch run hello.wat --invoke sum_squares 4   (prints 30)
(module
  (memory 1)
  (func $sum_squares (export "sum_squares") (param $n i32) (result i32)
    (local $i i32)
    (local $sum i32)
    ;; store the squares in memory, then add them up
    (block $filled
      (loop $fill
        (br_if $filled (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store (i32.shl (local.get $i) (i32.const 2))
                   (i32.mul (i32.add (local.get $i) (i32.const 1))
                            (i32.add (local.get $i) (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $fill)))
    (block $summed
      (loop $add
        (br_if $summed (i32.eqz (local.get $i)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (local.set $sum (i32.add (local.get $sum)
                                 (i32.load (i32.shl (local.get $i) (i32.const 2)))))
        (br $add)))
    (local.get $sum))

  (func (export "main") (result i32)
    (call $sum_squares (i32.const 10))))
