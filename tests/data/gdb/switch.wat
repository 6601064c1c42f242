;; A scheduler resumes task_a under a handler `(on $yield switch)`; task_a switches to
;; task_b, which takes task_a's place under the scheduler's resume and calls leaf. At leaf
;; the resume chain is task_b's stack, then the scheduler's: task_a is suspended.
(module
  (rec
    (type $ft (func (param (ref null $ct)) (result i32)))
    (type $ct (cont $ft)))
  (tag $yield (result i32))

  (func $leaf (result i32) (i32.const 7))

  ;; Gets the suspended task_a; returns leaf's value to the scheduler.
  (func $task_b (type $ft) (param $previous (ref null $ct)) (result i32)
    (i32.add (call $leaf) (i32.const 1)))

  (func $task_a (type $ft) (param $previous (ref null $ct)) (result i32)
    (drop (switch $ct $yield (cont.new $ct (ref.func $task_b))))
    (i32.const 0))

  (func $scheduler (export "main") (result i32)
    (resume $ct (on $yield switch) (ref.null $ct) (cont.new $ct (ref.func $task_a))))
  (elem declare func $task_a $task_b))
