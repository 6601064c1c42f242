;; Fresh continuations (made by cont.new, not resumed yet), whose stack comes at their
;; first resume: made and resumed later, bound then resumed, thrown into, switched to;
;; each driver n times, so that a test can see the records and stacks recycled.
(module
  (rec
    (type $ft (func (param (ref null $ct))))
    (type $ct (cont $ft)))
  (type $fi (func (param i32 (ref null $ct))))
  (type $ci (cont $fi))
  (type $f0 (func))
  (type $c0 (cont $f0))
  (type $f2 (func (param i32 i32) (result i32)))
  (type $c2 (cont $f2))
  (type $f1 (func (param i32) (result i32)))
  (type $c1 (cont $f1))
  (tag $yield)
  (tag $sw)
  (tag $e (param i32))
  (global $log (mut i32) (i32.const 0))

  (func $gen (suspend $yield))
  (func $never (unreachable))
  (func $sub (param $a i32) (param $b i32) (result i32)
    (i32.sub (local.get $a) (local.get $b)))
  (elem declare func $gen $never $sub $switcher $target)

  ;; A fresh continuation of $gen.
  (func (export "make") (result (ref null $c0))
    (cont.new $c0 (ref.func $gen)))

  ;; Runs $k up to its suspend (traps if it was consumed).
  (func (export "start") (param $k (ref null $c0))
    (block $yielded (result (ref $c0))
      (resume $c0 (on $yield $yielded) (local.get $k))
      (return))
    (drop))

  ;; n times: $sub with 100 + i bound, resumed with i: n * 100.
  (func (export "bind_resume") (param $n i32) (result i32)
    (local $i i32) (local $total i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $total (i32.add (local.get $total)
          (resume $c1 (local.get $i)
            (cont.bind $c2 $c1 (i32.add (i32.const 100) (local.get $i))
              (cont.new $c2 (ref.func $sub))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $total))

  ;; n times: $e i thrown into a fresh continuation, caught by the resumer: the sum of i.
  (func (export "throw_into_fresh") (param $n i32) (result i32)
    (local $i i32) (local $total i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $total (i32.add (local.get $total)
          (block $caught (result i32)
            (try_table (catch $e $caught)
              (resume_throw $c0 $e (local.get $i) (cont.new $c0 (ref.func $never))))
            (unreachable))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $total))

  ;; Switches to a fresh continuation of $target with 7 bound, then, resumed by it, returns.
  (func $switcher (type $ft) (param $k (ref null $ct))
    (drop (switch $ct $sw (cont.bind $ci $ct (i32.const 7) (cont.new $ci (ref.func $target))))))

  ;; Logs 10 * bound + 1 if it got the switcher's continuation, then finishes the switcher.
  (func $target (type $fi) (param $bound i32) (param $from (ref null $ct))
    (global.set $log (i32.add (global.get $log)
      (i32.add (i32.mul (local.get $bound) (i32.const 10))
               (i32.eqz (ref.is_null (local.get $from))))))
    (resume $ct (on $sw switch) (ref.null $ct) (local.get $from)))

  ;; n times: a switcher run, which switches to a fresh target: n * 71.
  (func (export "switch_to_fresh") (param $n i32) (result i32)
    (local $i i32)
    (global.set $log (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (resume $ct (on $sw switch) (ref.null $ct) (cont.new $ct (ref.func $switcher)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (global.get $log))
)
