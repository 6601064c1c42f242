;; Ten tasks in a ring, scheduled with `switch`: task i does (i + 1) * unit rounds of work,
;; then switches straight to task i + 1 (mod 10), until `switches` switches have been made;
;; the task that makes the last one returns its index. Suspended tasks wait in $tasks.
(module
  (rec
    (type $ft (func (param (ref null $ct)) (result i32)))
    (type $ct (cont $ft)))
  (type $task_ft (func (param i32 (ref null $ct)) (result i32)))
  (type $task_ct (cont $task_ft))
  (tag $yield (result i32))
  (table $tasks 10 (ref null $ct))
  (global $switches (mut i32) (i32.const 0))
  (global $unit (mut i32) (i32.const 0))

  (func $work (param $rounds i32) (result i32)
    (local $x i32)
    (loop $again
      (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 1103515245)) (i32.const 12345)))
      (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
      (br_if $again (i32.gt_s (local.get $rounds) (i32.const 0))))
    (local.get $x))

  ;; $previous: the task that switched here, suspended; it goes back into the table.
  (func $task (type $task_ft) (param $i i32) (param $previous (ref null $ct)) (result i32)
    (local $next i32)
    (loop $again
      (if (i32.eqz (ref.is_null (local.get $previous)))
        (then (table.set $tasks (i32.rem_u (i32.add (local.get $i) (i32.const 9)) (i32.const 10))
                         (local.get $previous))))
      (drop (call $work (i32.mul (i32.add (local.get $i) (i32.const 1)) (global.get $unit))))
      (if (i32.eqz (global.get $switches)) (then (return (local.get $i))))
      (global.set $switches (i32.sub (global.get $switches) (i32.const 1)))
      (local.set $next (i32.rem_u (i32.add (local.get $i) (i32.const 1)) (i32.const 10)))
      (table.get $tasks (local.get $next))
      (table.set $tasks (local.get $next) (ref.null $ct))
      (local.set $previous (switch $ct $yield))
      (br $again))
    (unreachable))
  (elem declare func $task)

  (func $main (export "main") (param $switches i32) (param $unit i32) (result i32)
    (local $i i32)
    (global.set $switches (local.get $switches))
    (global.set $unit (local.get $unit))
    (loop $make
      (table.set $tasks (local.get $i)
        (cont.bind $task_ct $ct (local.get $i) (cont.new $task_ct (ref.func $task))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $make (i32.lt_u (local.get $i) (i32.const 10))))
    (ref.null $ct)  ;; what task 0 gets as the task that switched to it: none
    (table.get $tasks (i32.const 0))
    (table.set $tasks (i32.const 0) (ref.null $ct))
    (resume $ct (on $yield switch)))
)
