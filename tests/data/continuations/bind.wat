;; cont.bind on a fresh continuation (binding its parameters one at a time) and on a
;; suspended one (binding the first of the two values its suspend is waiting for).
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

  (func $digits (param $a i32) (param $b i32) (param $c i32) (result i32)
    (i32.add (i32.add (i32.mul (local.get $a) (i32.const 100))
                      (i32.mul (local.get $b) (i32.const 10)))
             (local.get $c)))

  ;; Asks its resumer for two values, then combines them like $digits(a, b, 7).
  (func $asker (result i32)
    (call $digits (suspend $ask) (i32.const 7)))
  (elem declare func $digits $asker)

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
)
