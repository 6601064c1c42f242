;; Every stack-switching sequence and stub, with little else in between, for stepping one
;; instruction at a time. fp_main runs, in turn:
;; - generators: resumes middle (fresh), which resumes gen (fresh, with a cont.bind value:
;;   the merge stub) under a handler for $other only; gen suspends $yield twice (the search
;;   passes middle's handler first) and is resumed each time (suspended), then returns;
;; - tasks: resumes task_a (fresh) with a switch handler; task_a switches to task_b (fresh),
;;   which switches back to task_a (suspended), which returns;
;; - throwing: catcher suspends inside a try_table and is resumed with resume_throw; it
;;   catches, calls the host (sched_yield) and returns;
;; - a continuation that traps.
(module
  (import "wasi_snapshot_preview1" "sched_yield" (func $sched_yield (result i32)))
  (memory (export "memory") 1)
  (type $gen_ft (func (param i32)))
  (type $gen_ct (cont $gen_ft))
  (type $unit (func))
  (type $unit_ct (cont $unit))
  (rec
    (type $task_ft (func (param (ref null $task_ct)) (result i32)))
    (type $task_ct (cont $task_ft)))
  (tag $yield (param i32))
  (tag $other)
  (tag $swap (result i32))
  (tag $wait)
  (tag $exn)

  (func $gen (type $gen_ft) (param $n i32)
    (suspend $yield (local.get $n))
    (suspend $yield (i32.add (local.get $n) (i32.const 1))))

  (func $middle (type $unit)
    (block $on_other (result (ref $unit_ct))
      (resume $unit_ct (on $other $on_other)
        (cont.bind $gen_ct $unit_ct (i32.const 5) (cont.new $gen_ct (ref.func $gen))))
      (return))
    (drop))

  ;; The sum of what gen yielded: 11.
  (func $generators (result i32)
    (local $k (ref null $unit_ct)) (local $sum i32)
    (local.set $k (cont.new $unit_ct (ref.func $middle)))
    (block $done
      (loop $again
        (block $yielded (result i32 (ref $unit_ct))
          (resume $unit_ct (on $yield $yielded) (local.get $k))
          (br $done))
        (local.set $k)
        (local.set $sum (i32.add (local.get $sum)))
        (br $again)))
    (local.get $sum))

  (func $task_b (type $task_ft) (param $previous (ref null $task_ct)) (result i32)
    (drop (switch $task_ct $swap (local.get $previous)))
    (i32.const 0))

  (func $task_a (type $task_ft) (param $previous (ref null $task_ct)) (result i32)
    (drop (switch $task_ct $swap (cont.new $task_ct (ref.func $task_b))))
    (i32.const 20))

  (func $tasks (result i32)
    (resume $task_ct (on $swap switch) (ref.null $task_ct) (cont.new $task_ct (ref.func $task_a))))

  (func $catcher (type $unit)
    (block $caught
      (try_table (catch $exn $caught)
        (suspend $wait)))
    (drop (call $sched_yield)))

  (func $throwing (result i32)
    (block $waiting (result (ref $unit_ct))
      (resume $unit_ct (on $wait $waiting) (cont.new $unit_ct (ref.func $catcher)))
      (return (i32.const -1)))
    (resume_throw $unit_ct $exn)
    (i32.const 100))

  (func $crash (type $unit) (unreachable))

  (func $fp_main (export "main") (result i32)
    (i32.add (i32.add (call $generators) (call $tasks)) (call $throwing))
    (resume $unit_ct (cont.new $unit_ct (ref.func $crash))))

  (elem declare func $gen $middle $task_a $task_b $catcher $crash))
