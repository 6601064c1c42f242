;; Bulk memory operations, one kind per export, each called n times in a loop.
;; grow: memory.grow by (i & 1) pages: half grow by 0, the rest grow by one page until the
;; maximum (2048 pages), then fail. Returns the sum of the results.
;; copy/fill: blocks of 16 bytes or 64 KiB at a moving address (copies from the first
;; 128 KiB into the next). Returns a byte of the result, so no work can be skipped.
(module
  (memory 4 2048)
  (func (export "grow") (param $n i32) (result i32)
    (local $i i32) (local $sum i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $sum (i32.add (local.get $sum)
                                 (memory.grow (i32.and (local.get $i) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $sum))
  (func $copy (param $n i32) (param $size i32) (result i32)
    (local $i i32) (local $at i32)
    (memory.fill (i32.const 0) (i32.const 7) (i32.const 131072))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $at (i32.and (i32.mul (local.get $i) (local.get $size)) (i32.const 65535)))
        (memory.copy (i32.add (local.get $at) (i32.const 131072)) (local.get $at) (local.get $size))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.load8_u (i32.const 131072)))
  (func $fill (param $n i32) (param $size i32) (result i32)
    (local $i i32) (local $at i32)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $at (i32.and (i32.mul (local.get $i) (local.get $size)) (i32.const 65535)))
        (memory.fill (local.get $at) (local.get $i) (local.get $size))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.load8_u (i32.const 0)))
  (func (export "copy16") (param $n i32) (result i32) (call $copy (local.get $n) (i32.const 16)))
  (func (export "copy64k") (param $n i32) (result i32) (call $copy (local.get $n) (i32.const 65536)))
  (func (export "fill16") (param $n i32) (result i32) (call $fill (local.get $n) (i32.const 16)))
  (func (export "fill64k") (param $n i32) (result i32) (call $fill (local.get $n) (i32.const 65536)))
)
