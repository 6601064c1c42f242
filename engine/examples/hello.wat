;; A generator on its own stack: `squares` suspends once per value, and `main` resumes it
;; until it returns, summing what it yields. `main` returns 1^2 + 2^2 + ... + 10^2 = 385.
;; Try also: stackstitch run hello.wat --invoke sum_squares 4   (prints 30)
(module
  (type $generator (func))
  (type $cont (cont $generator))
  (tag $yield (param i32))

  (global $count (mut i32) (i32.const 0))

  (func $squares
    (local $i i32)
    (block $end
      (loop $next
        (br_if $end (i32.ge_u (local.get $i) (global.get $count)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (suspend $yield (i32.mul (local.get $i) (local.get $i)))
        (br $next))))
  (elem declare func $squares)

  (func $sum_squares (export "sum_squares") (param $n i32) (result i32)
    (local $k (ref null $cont))
    (local $sum i32)
    (global.set $count (local.get $n))
    (local.set $k (cont.new $cont (ref.func $squares)))
    (block $done
      (loop $again
        (block $on_yield (result i32 (ref $cont))
          (resume $cont (on $yield $on_yield) (local.get $k))
          (br $done))
        ;; the generator suspended: its value and continuation are on the stack
        (local.set $k)
        (local.set $sum (i32.add (local.get $sum)))
        (br $again)))
    (local.get $sum))

  (func (export "main") (result i32)
    (call $sum_squares (i32.const 10))))
