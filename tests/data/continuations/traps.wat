;; Every way a continuation instruction traps, plus ordinary traps raised inside
;; continuations. Each export traps; none returns normally.
(module
  (type $ft (func))
  (type $ct (cont $ft))
  (type $ft1 (func (param i32)))
  (type $ct1 (cont $ft1))
  ;; Continuations that `switch` between each other receive the switcher's continuation.
  ;; (Their functions name $sft explicitly: an inline signature would be a different type.)
  (rec
    (type $sft (func (param (ref null $sct))))
    (type $sct (cont $sft)))
  (tag $yield)
  (tag $other)
  (tag $sw)
  (global $dead (mut (ref null $ct)) (ref.null $ct))
  (global $dead_switchable (mut (ref null $sct)) (ref.null $sct))

  (func $noop)
  (func $noop1 (param i32))
  (func $noop_switchable (type $sft))
  (func $yielder (suspend $yield))
  (func $recurse (param $n i64) (result i64)
    (i64.add (call $recurse (i64.add (local.get $n) (i64.const 1))) (i64.const 1)))
  (func $recurser (drop (call $recurse (i64.const 0))))
  (func $unreachable (unreachable))
  (func $divider (drop (i32.div_u (i32.const 1) (i32.const 0))))
  (func $nest_divider (resume $ct (cont.new $ct (ref.func $divider))))
  (func $switch_to_dead (type $sft)
    (drop (switch $sct $sw (global.get $dead_switchable))))
  (func $switch_to_null (type $sft)
    (drop (switch $sct $sw (ref.null $sct))))
  (func $switch_to_fresh (type $sft)
    (drop (switch $sct $sw (cont.new $sct (ref.func $noop_switchable)))))
  (elem declare func $noop $noop1 $noop_switchable $yielder $recurser $unreachable $divider
    $nest_divider $switch_to_dead $switch_to_null $switch_to_fresh)

  ;; A continuation that has run to completion.
  (func $finished (result (ref $ct))
    (local $k (ref null $ct))
    (local.set $k (cont.new $ct (ref.func $noop)))
    (resume $ct (local.get $k))
    (ref.as_non_null (local.get $k)))

  (func $run (param $f (ref $ft))
    (resume $ct (cont.new $ct (local.get $f))))

  ;; -- one-shot violations: "continuation already consumed" --
  (func (export "resume_finished")
    (resume $ct (call $finished)))

  ;; The reference that was resumed is stale once the continuation suspends again.
  (func (export "resume_stale")
    (local $k (ref null $ct))
    (local.set $k (cont.new $ct (ref.func $yielder)))
    (block $yielded (result (ref $ct))
      (resume $ct (on $yield $yielded) (local.get $k))
      (unreachable))
    (drop)
    (resume $ct (local.get $k)))

  (func (export "bind_finished")
    (local $k (ref null $ct1))
    (local.set $k (cont.new $ct1 (ref.func $noop1)))
    (resume $ct1 (i32.const 0) (local.get $k))
    (resume $ct (cont.bind $ct1 $ct (i32.const 0) (local.get $k))))

  (func (export "throw_finished")
    (resume_throw $ct $other (call $finished)))

  (func (export "switch_finished")
    (local $k (ref null $sct))
    (local.set $k (cont.new $sct (ref.func $noop_switchable)))
    (resume $sct (ref.null $sct) (local.get $k))
    (global.set $dead_switchable (local.get $k))
    (resume $sct (on $sw switch) (ref.null $sct) (cont.new $sct (ref.func $switch_to_dead))))

  ;; A reference kept after its continuation finished, while its stack is reused by
  ;; `finish_many` continuations, one after another.
  (global $stale (mut (ref null $ct)) (ref.null $ct))

  (func (export "make_stale")
    (global.set $stale (call $finished)))

  (func (export "finish_many") (param $n i32)
    (loop $next
      (drop (call $finished))
      (br_if $next (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))

  (func (export "resume_stale_finished")
    (resume $ct (global.get $stale)))

  ;; -- "null continuation reference" --
  (func (export "resume_null")
    (resume $ct (global.get $dead)))

  (func (export "bind_null")
    (resume $ct (cont.bind $ct1 $ct (i32.const 0) (ref.null $ct1))))

  (func (export "throw_null")
    (resume_throw $ct $other (ref.null $ct)))

  (func (export "switch_null")
    (resume $sct (on $sw switch) (ref.null $sct) (cont.new $sct (ref.func $switch_to_null))))

  ;; -- "unhandled tag" --
  (func (export "suspend_outside")
    (suspend $yield))

  (func (export "suspend_unhandled")
    (block $h (result (ref $ct))
      (resume $ct (on $other $h) (cont.new $ct (ref.func $yielder)))
      (return))
    (unreachable))

  (func (export "switch_unhandled")
    (block $h (result (ref $ct))
      (resume $sct (on $other $h) (ref.null $sct) (cont.new $sct (ref.func $switch_to_fresh)))
      (return))
    (unreachable))

  ;; -- ordinary traps inside continuations --
  (func (export "recurse_inside") (call $run (ref.func $recurser)))
  (func (export "unreachable_inside") (call $run (ref.func $unreachable)))
  (func (export "divide_inside_nested") (call $run (ref.func $nest_divider)))
)
