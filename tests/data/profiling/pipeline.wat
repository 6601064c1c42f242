;; A 3-level producer/consumer pipeline: main resumes consumer, which pulls items from
;; filter, which pulls them from producer; every level is a continuation and does some
;; work per item. `main(n)` passes n items through and returns a checksum.
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (tag $item (param i32))
  (global $items (mut i32) (i32.const 0))
  (global $checksum (mut i64) (i64.const 0))

  ;; A little arithmetic, `rounds` times.
  (func $work (param $x i32) (param $rounds i32) (result i32)
    (loop $again
      (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 1103515245)) (i32.const 12345)))
      (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
      (br_if $again (local.get $rounds)))
    (local.get $x))

  (func $producer
    (local $i i32)
    (loop $next
      (suspend $item (call $work (local.get $i) (i32.const 300)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (global.get $items)))))

  (func $filter
    (local $k (ref null $ct))
    (local.set $k (cont.new $ct (ref.func $producer)))
    (loop $next
      (block $got (result i32 (ref $ct))
        (resume $ct (on $item $got) (local.get $k))
        (return))
      (local.set $k)
      (suspend $item (call $work (i32.const 200)))
      (br $next)))

  (func $consumer
    (local $k (ref null $ct)) (local $value i32)
    (local.set $k (cont.new $ct (ref.func $filter)))
    (loop $next
      (block $got (result i32 (ref $ct))
        (resume $ct (on $item $got) (local.get $k))
        (return))
      (local.set $k)
      (local.set $value (call $work (i32.const 100)))
      (global.set $checksum (i64.add (global.get $checksum) (i64.extend_i32_u (local.get $value))))
      (br $next)))

  (func $main (export "main") (param $n i32) (result i64)
    (global.set $items (local.get $n))
    (resume $ct (cont.new $ct (ref.func $consumer)))
    (global.get $checksum))

  (elem declare func $producer $filter $consumer))
