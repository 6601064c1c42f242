;; Mandelbrot set membership over a $size x $size grid in f64: float multiply/add chains,
;; comparisons and int/float conversions. Returns the number of points inside the set.
(module
  (func (export "mandel") (param $size i32) (param $max_iter i32) (result i32)
    (local $px i32) (local $py i32) (local $iter i32) (local $inside i32)
    (local $cr f64) (local $ci f64) (local $zr f64) (local $zi f64) (local $t f64)
    (local $scale f64)
    (local.set $scale (f64.div (f64.const 3.0) (f64.convert_i32_u (local.get $size))))
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $py) (local.get $size)))
        (local.set $ci (f64.sub (f64.mul (f64.convert_i32_u (local.get $py)) (local.get $scale))
                                (f64.const 1.5)))
        (local.set $px (i32.const 0))
        (block $cols_done
          (loop $cols
            (br_if $cols_done (i32.ge_u (local.get $px) (local.get $size)))
            (local.set $cr (f64.sub (f64.mul (f64.convert_i32_u (local.get $px)) (local.get $scale))
                                    (f64.const 2.0)))
            (local.set $zr (f64.const 0)) (local.set $zi (f64.const 0))
            (local.set $iter (i32.const 0))
            (block $escaped
              (loop $step
                (br_if $escaped (f64.gt (f64.add (f64.mul (local.get $zr) (local.get $zr))
                                                 (f64.mul (local.get $zi) (local.get $zi)))
                                        (f64.const 4.0)))
                (local.set $t (f64.add (f64.sub (f64.mul (local.get $zr) (local.get $zr))
                                                (f64.mul (local.get $zi) (local.get $zi)))
                                       (local.get $cr)))
                (local.set $zi (f64.add (f64.mul (f64.mul (f64.const 2.0) (local.get $zr)) (local.get $zi))
                                        (local.get $ci)))
                (local.set $zr (local.get $t))
                (local.set $iter (i32.add (local.get $iter) (i32.const 1)))
                (br_if $step (i32.lt_u (local.get $iter) (local.get $max_iter)))))
            (local.set $inside (i32.add (local.get $inside)
                                        (i32.eq (local.get $iter) (local.get $max_iter))))
            (local.set $px (i32.add (local.get $px) (i32.const 1)))
            (br $cols)))
        (local.set $py (i32.add (local.get $py) (i32.const 1)))
        (br $rows)))
    (local.get $inside)))
