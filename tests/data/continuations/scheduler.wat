;; Green threads scheduled round-robin with `switch`: each task does its steps one at a
;; time and hands control straight to the next task in the queue, which enqueues the task
;; that switched to it. Every step appends the task's id (one byte) to the trace in memory.
(module
  (rec
    (type $ft (func (param (ref null $ct))))
    (type $ct (cont $ft)))
  (type $task_ft (func (param i32 (ref null $ct))))
  (type $task_ct (cont $task_ft))
  (tag $yield)
  (memory (export "memory") 1)
  ;; Steps of task 1, 2, 3, ... (bytes 0..15); the trace starts at byte 64.
  (data (i32.const 1) "\02\04\03\01\05\01\02\03")
  (global $trace_end (mut i32) (i32.const 64))

  ;; The ready queue: a ring of 16 continuations.
  (table $queue 16 (ref null $ct))
  (global $head (mut i32) (i32.const 0))
  (global $tail (mut i32) (i32.const 0))

  (func $enqueue (param $k (ref null $ct))
    (if (ref.is_null (local.get $k)) (then (return)))
    (table.set $queue (i32.and (global.get $tail) (i32.const 15)) (local.get $k))
    (global.set $tail (i32.add (global.get $tail) (i32.const 1))))

  (func $dequeue (result (ref null $ct))
    (local $k (ref null $ct))
    (local.set $k (table.get $queue (i32.and (global.get $head) (i32.const 15))))
    (table.set $queue (i32.and (global.get $head) (i32.const 15)) (ref.null $ct))
    (global.set $head (i32.add (global.get $head) (i32.const 1)))
    (local.get $k))

  (func $queue_empty (result i32)
    (i32.eq (global.get $head) (global.get $tail)))

  ;; One task: $previous is the task that switched to it (null when the scheduler resumed it).
  (func $task (param $id i32) (param $previous (ref null $ct))
    (local $done i32)
    (loop $step
      (call $enqueue (local.get $previous))
      (i32.store8 (global.get $trace_end) (i32.add (local.get $id) (i32.const 48)))
      (global.set $trace_end (i32.add (global.get $trace_end) (i32.const 1)))
      (local.set $done (i32.add (local.get $done) (i32.const 1)))
      (if (i32.lt_u (local.get $done) (i32.load8_u (local.get $id)))
        (then
          (if (call $queue_empty)
            (then
              (local.set $previous (ref.null $ct))
              (br $step)))
          (local.set $previous (switch $ct $yield (call $dequeue)))
          (br $step)))))
  (elem declare func $task)

  ;; Runs tasks 1..n to completion; returns the length of the trace.
  (func (export "run") (param $n i32) (result i32)
    (local $id i32)
    (global.set $trace_end (i32.const 64))
    (loop $spawn
      (local.set $id (i32.add (local.get $id) (i32.const 1)))
      (call $enqueue
        (cont.bind $task_ct $ct (local.get $id) (cont.new $task_ct (ref.func $task))))
      (br_if $spawn (i32.lt_u (local.get $id) (local.get $n))))
    (block $idle
      (loop $next
        (br_if $idle (call $queue_empty))
        (resume $ct (on $yield switch) (ref.null $ct) (call $dequeue))
        (br $next)))
    (i32.sub (global.get $trace_end) (i32.const 64)))
)
