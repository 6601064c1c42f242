;; One complete resume, switch and suspend, with no host call in between (so that gdb can
;; `stepi` through all of it): main creates both continuations and calls drive; drive
;; resumes task_a, which switches to task_b, which suspends back to drive.
(module
  (rec
    (type $ft (func (param (ref null $ct))))
    (type $ct (cont $ft)))
  (type $unit (func))
  (type $unit_ct (cont $unit))
  (tag $yield)
  (tag $done)
  (global $task_b (mut (ref null $ct)) (ref.null $ct))

  (func $task_b (type $ft) (param $previous (ref null $ct))
    (suspend $done))

  (func $task_a (type $ft) (param $previous (ref null $ct))
    (drop (switch $ct $yield (global.get $task_b))))

  ;; Returns 1 when task_b's suspension reached the handler.
  (func $drive (param $k (ref null $ct)) (result i32)
    (block $suspended (result (ref $unit_ct))
      (resume $ct (on $yield switch) (on $done $suspended) (ref.null $ct) (local.get $k))
      (return (i32.const 0)))
    (drop)
    (i32.const 1))

  (func $main (export "main") (result i32)
    (global.set $task_b (cont.new $ct (ref.func $task_b)))
    (call $drive (cont.new $ct (ref.func $task_a))))
  (elem declare func $task_a $task_b))
