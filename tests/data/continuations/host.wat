;; Host (Python) functions called from inside continuations, including ones that call
;; back into Wasm. `call_back(what, arg)` is dispatched by the test harness on `what`.
(module
  (import "host" "note" (func $note (param i32)))
  (import "host" "call_back" (func $call_back (param i32 i32) (result i32)))
  (type $ft (func))
  (type $ct (cont $ft))
  (type $ft_i (func (result i32)))
  (type $ct_i (cont $ft_i))
  (tag $yield (param i32))
  (tag $b)
  (global $start (mut i32) (i32.const 0))
  (global $what (mut i32) (i32.const 0))

  ;; Yields call_back($what, i) for i = $start .. 1, telling the host about each i first.
  ;; Reads both globals once, at its start: host calls may run other generators.
  (func $countdown
    (local $i i32) (local $what i32)
    (local.set $i (global.get $start))
    (local.set $what (global.get $what))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $i)))
        (call $note (local.get $i))
        (suspend $yield (call $call_back (local.get $what) (local.get $i)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br $next))))

  ;; Asks the host to call back into "suspend_b"; handled only by the resume in
  ;; "suspend_beyond_host", on the far side of the host's frames.
  (func $via_host (result i32)
    (call $call_back (i32.const 1) (i32.const 0)))
  (elem declare func $countdown $via_host)

  (func $drain (param $k (ref null $ct)) (result i64)
    (local $total i64)
    (block $finished
      (loop $again
        (block $yielded (result i32 (ref $ct))
          (resume $ct (on $yield $yielded) (local.get $k))
          (br $finished))
        (local.set $k)
        (i64.extend_i32_u)
        (local.get $total)
        (i64.add)
        (local.set $total)
        (br $again)))
    (local.get $total))

  ;; The sum of call_back(what, i) for i = n .. 1, each call made inside the generator.
  (func (export "sum") (param $what i32) (param $n i32) (result i64)
    (global.set $what (local.get $what))
    (global.set $start (local.get $n))
    (call $drain (cont.new $ct (ref.func $countdown))))

  (func (export "suspend_b") (result i32)
    (suspend $b)
    (i32.const 5))

  ;; What $via_host returns, or -1 if its suspend reached this handler.
  (func (export "suspend_beyond_host") (result i32)
    (block $on_b (result (ref $ct_i))
      (return (resume $ct_i (on $b $on_b) (cont.new $ct_i (ref.func $via_host)))))
    (drop)
    (i32.const -1))
)
