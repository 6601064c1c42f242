;; cont.bind on a fresh continuation (binding its parameters one at a time) and on a
;; suspended one (binding the first of the two values its suspend is waiting for); many
;; fresh continuations with a bound value, all created before the first is resumed.
(module
  (type $f3 (func (param i32 i32 i32) (result i32)))
  (type $f2 (func (param i32 i32) (result i32)))
  (type $f1 (func (param i32) (result i32)))
  (type $f0 (func (result i32)))
  (type $c3 (cont $f3))
  (type $c2 (cont $f2))
  (type $c1 (cont $f1))
  (type $c0 (cont $f0))
  (tag $ask (result i32 i32))
  (table $fresh 0 (ref null $c0))
  (table $asking 0 (ref null $c2))

  (func $digits (param $a i32) (param $b i32) (param $c i32) (result i32)
    (i32.add (i32.add (i32.mul (local.get $a) (i32.const 100))
                      (i32.mul (local.get $b) (i32.const 10)))
             (local.get $c)))

  ;; Asks its resumer for two values, then combines them like $digits(a, b, 7).
  (func $asker (result i32)
    (call $digits (suspend $ask) (i32.const 7)))
  ;; a plus the two values it asks its resumer for.
  (func $add_asked (param $a i32) (result i32)
    (call $add (local.get $a) (suspend $ask)))
  (func $add (param $a i32) (param $x i32) (param $y i32) (result i32)
    (i32.add (local.get $a) (i32.add (local.get $x) (local.get $y))))
  (elem declare func $digits $asker $add_asked)

  ;; digits(a, b, c) with a bound first, then b, then c passed by resume.
  (func (export "bind_fresh") (param $a i32) (param $b i32) (param $c i32) (result i32)
    (resume $c1 (local.get $c)
      (cont.bind $c2 $c1 (local.get $b)
        (cont.bind $c3 $c2 (local.get $a) (cont.new $c3 (ref.func $digits))))))

  ;; Both at once, and none at all.
  (func (export "bind_all") (param $a i32) (param $b i32) (param $c i32) (result i32)
    (resume $c0
      (cont.bind $c0 $c0
        (cont.bind $c3 $c0 (local.get $a) (local.get $b) (local.get $c)
          (cont.new $c3 (ref.func $digits))))))

  ;; $asker suspended on $ask: bind a, resume with b.
  (func (export "bind_suspended") (param $a i32) (param $b i32) (result i32)
    (local $k (ref null $c2))
    (block $asked (result (ref $c2))
      (resume $c0 (on $ask $asked) (cont.new $c0 (ref.func $asker)))
      (unreachable))
    (local.set $k)
    (resume $c1 (local.get $b) (cont.bind $c2 $c1 (local.get $a) (local.get $k))))

  ;; n continuations of $add_asked with i bound (i = 0 .. n-1), all created first; then
  ;; each resumed until it asks (all hold a stack then), then each given 10 and 20:
  ;; the sum of i + 30.
  (func (export "bind_many") (param $n i32) (result i32)
    (local $i i32) (local $total i32) (local $k (ref null $c2))
    (drop (table.grow $fresh (ref.null $c0) (local.get $n)))
    (drop (table.grow $asking (ref.null $c2) (local.get $n)))
    (block $made
      (loop $next
        (br_if $made (i32.ge_u (local.get $i) (local.get $n)))
        (table.set $fresh (local.get $i)
          (cont.bind $c1 $c0 (local.get $i) (cont.new $c1 (ref.func $add_asked))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.set $i (i32.const 0))
    (block $asked_all
      (loop $next
        (br_if $asked_all (i32.ge_u (local.get $i) (local.get $n)))
        (block $asked (result (ref $c2))
          (resume $c0 (on $ask $asked) (table.get $fresh (local.get $i)))
          (unreachable))
        (local.set $k)
        (table.set $asking (local.get $i) (local.get $k))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.set $i (i32.const 0))
    (block $answered_all
      (loop $next
        (br_if $answered_all (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $total (i32.add (local.get $total)
          (resume $c2 (i32.const 10) (i32.const 20) (table.get $asking (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $total))
)
