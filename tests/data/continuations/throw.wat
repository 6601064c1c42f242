;; Exceptions and continuations: resume_throw into suspended and unstarted continuations,
;; and exceptions thrown inside a continuation reaching the resumer's try_table.
(module
  (type $ft (func (result i32)))
  (type $ct (cont $ft))
  (tag $e (export "e") (param i32))
  (tag $yield)
  (global $consumed (mut (ref null $ct)) (ref.null $ct))

  ;; Suspends inside a try_table; returns payload + 1 if $e is thrown into it there.
  (func $catcher (result i32)
    (block $caught (result i32)
      (try_table (catch $e $caught)
        (suspend $yield))
      (return (i32.const -1)))
    (i32.add (i32.const 1)))

  ;; Suspends without a handler of its own.
  (func $bare (result i32)
    (suspend $yield)
    (i32.const -1))

  ;; Throws $e 7 as soon as it runs.
  (func $thrower (result i32)
    (throw $e (i32.const 7)))

  ;; Resumes $thrower: the exception passes through this continuation too.
  (func $relay (result i32)
    (resume $ct (cont.new $ct (ref.func $thrower))))
  (elem declare func $catcher $bare $thrower $relay)

  ;; Runs a fresh continuation of $f until its first suspend.
  (func $suspended (param $f (ref $ft)) (result (ref $ct))
    (block $yielded (result (ref $ct))
      (resume $ct (on $yield $yielded) (cont.new $ct (local.get $f)))
      (unreachable)))

  ;; The continuation's own try_table catches it: 41 + 1.
  (func (export "throw_into_suspended") (result i32)
    (resume_throw $ct $e (i32.const 41) (call $suspended (ref.func $catcher))))

  ;; Nothing inside catches it, the resumer does: payload + 100. The continuation is then
  ;; consumed, kept in $consumed for "resume_consumed".
  (func (export "throw_through_suspended") (result i32)
    (local $k (ref null $ct))
    (local.set $k (call $suspended (ref.func $bare)))
    (global.set $consumed (local.get $k))
    (block $caught (result i32)
      (try_table (result i32) (catch $e $caught)
        (resume_throw $ct $e (i32.const 5) (local.get $k)))
      (return))
    (i32.add (i32.const 100)))

  ;; An unstarted continuation: its try_table was never entered, the resumer catches.
  (func (export "throw_into_unstarted") (result i32)
    (block $caught (result i32)
      (try_table (result i32) (catch $e $caught)
        (resume_throw $ct $e (i32.const 9) (cont.new $ct (ref.func $catcher))))
      (return))
    (i32.add (i32.const 100)))

  ;; Thrown inside a continuation (depth 1 or 2), caught around the outermost resume.
  (func (export "throw_inside") (param $depth i32) (result i32)
    (block $caught (result i32)
      (try_table (result i32) (catch $e $caught)
        (resume $ct (cont.new $ct
          (select (result (ref $ft)) (ref.func $thrower) (ref.func $relay)
            (i32.eq (local.get $depth) (i32.const 1))))))
      (return))
    (i32.add (i32.const 100)))

  ;; Thrown inside a continuation and caught by nobody.
  (func (export "throw_uncaught") (result i32)
    (resume $ct (cont.new $ct (ref.func $relay))))

  (func (export "resume_consumed") (result i32)
    (resume $ct (global.get $consumed)))
)
