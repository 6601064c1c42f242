;; Host calls: `calls(n)` calls the WASI import args_sizes_get n times (it writes two
;; words into linear memory, no system call in either tool); returns how many succeeded, n.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "calls") (param $n i32) (result i32)
    (local $ok i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (if (i32.eqz (call $args_sizes_get (i32.const 0) (i32.const 4)))
          (then (local.set $ok (i32.add (local.get $ok) (i32.const 1)))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (local.get $ok))
)
