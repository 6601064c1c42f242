;; Named parameters and locals of every Wasm value type but v128, three calls deep.
(module
  (func $leaf (param $n i32) (param $scale i64) (result i64)
    (local $acc i64) (local $ratio f64) (local i32)
    (local.set $acc (i64.mul (i64.extend_i32_u (local.get $n)) (local.get $scale)))
    (local.set $ratio (f64.const 2.5))
    (local.set 4 (i32.const -3))
    (local.get $acc))
  (func $mid (param $x i32) (result i64)
    (local $y i32)
    (local.set $y (i32.add (local.get $x) (i32.const 1)))
    (call $leaf (local.get $y) (i64.const 1000)))
  (func (export "main") (result i64) (call $mid (i32.const 41))))
