;; Nested handlers: `outer` resumes `middle` handling $b; `middle` resumes `innermost`
;; handling $a. `innermost` suspends $b, which skips middle's resume and reaches outer's
;; handler, and then $a, which middle handles. The global $log records the order of events
;; as decimal digits.
(module
  ;; Fresh and suspended continuations have the same type: the i32 a fresh one receives
  ;; is ignored.
  (type $ft (func (param i32) (result i32)))
  (type $ct (cont $ft))
  (tag $a (param i32) (result i32))
  (tag $b (param i32) (result i32))
  (global $log (mut i64) (i64.const 0))

  (func $log (param $event i32)
    (global.set $log
      (i64.add (i64.mul (global.get $log) (i64.const 10)) (i64.extend_i32_u (local.get $event)))))

  ;; 10 -> outer adds 1 -> 11 -> middle doubles -> 22 -> returns 122.
  (func $innermost (param $v i32) (result i32)
    (call $log (i32.const 1))
    (local.set $v (suspend $b (i32.const 10)))
    (call $log (i32.const 4))
    (local.set $v (suspend $a (local.get $v)))
    (call $log (i32.const 6))
    (i32.add (local.get $v) (i32.const 100)))

  ;; Answers $a with twice its value; adds 1000 to what innermost returns.
  (func $middle (param $v i32) (result i32)
    (local $k (ref null $ct))
    (local.set $k (cont.new $ct (ref.func $innermost)))
    (loop $again
      (block $on_a (result i32 (ref $ct))
        (resume $ct (on $a $on_a) (local.get $v) (local.get $k))
        (call $log (i32.const 7))
        (return (i32.add (i32.const 1000))))
      (local.set $k)
      (local.set $v (i32.mul (i32.const 2)))
      (call $log (i32.const 5))
      (br $again))
    (unreachable))

  ;; Answers $b with its value plus one; returns what middle returns: 1122.
  (func (export "outer") (result i32)
    (local $k (ref null $ct))
    (local $v i32)
    (global.set $log (i64.const 0))
    (local.set $k (cont.new $ct (ref.func $middle)))
    (loop $again
      (block $on_b (result i32 (ref $ct))
        (resume $ct (on $b $on_b) (local.get $v) (local.get $k))
        (call $log (i32.const 8))
        (return))
      (local.set $k)
      (local.set $v (i32.add (i32.const 1)))
      (call $log (i32.const 2))
      (br $again))
    (unreachable))

  (func (export "log") (result i64) (global.get $log))
  (elem declare func $innermost $middle)
)
