;; Every continuation event, in this order, for the catchpoint tests:
;;   cont.new 1 (producer); resume 1 (fresh); 1 suspends on $yield; resume 1; 1 suspends
;;   on $other; resume 1 (it returns); cont.new 2 (task_a); resume 2 (fresh); cont.new 3
;;   (task_b) in task_a; 2 switches to 3 on $hop; 3 returns.
(module
  (type $ft (func (result i32)))
  (type $ct (cont $ft))
  (rec
    (type $sft (func (param (ref null $sct)) (result i32)))
    (type $sct (cont $sft)))
  (tag $yield (param i32))
  (tag $other)
  (tag $hop (result i32))

  (func $producer (result i32)
    (suspend $yield (i32.const 1))
    (suspend $other)
    (i32.const 3))

  (func $task_b (type $sft) (param $previous (ref null $sct)) (result i32)
    (i32.const 7))
  (func $task_a (type $sft) (param $previous (ref null $sct)) (result i32)
    (drop (switch $sct $hop (cont.new $sct (ref.func $task_b))))
    (i32.const 0))

  (func $main (export "main") (result i32)
    (local $k (ref null $ct))
    (block $yielded (result i32 (ref $ct))
      (drop (resume $ct (on $yield $yielded) (cont.new $ct (ref.func $producer))))
      (return (i32.const -1)))
    (local.set $k)
    (drop)
    (block $paused (result (ref $ct))
      (drop (resume $ct (on $other $paused) (local.get $k)))
      (return (i32.const -2)))
    (local.set $k)
    (i32.add
      (resume $ct (local.get $k))
      (resume $sct (on $hop switch) (ref.null $sct) (cont.new $sct (ref.func $task_a)))))
  (elem declare func $producer $task_a $task_b))
