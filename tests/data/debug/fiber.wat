;; Fibers over the stack-switching instructions, for C, which cannot emit them. Preloaded
;; as `env` (`stackstitch run --preload env=fiber.wat prog.wasm`), the module C's linker
;; imports undefined symbols from: a program built with `-Wl,--import-table` calls through
;; this module's function table, so a C function pointer is an index into it.
;;
;; The C side declares:
;;   int  fiber_new(int (*body)(void *), void *arg);  a fiber that will run body(arg)
;;   int  fiber_resume(int fiber);  runs it until it yields or returns; that value
;;   void fiber_yield(int value);   suspends the running fiber, handing value to its resumer
;;   int  fiber_done(int fiber);    whether its body returned
;; A fiber is an index into $fibers; its slot holds the suspended continuation, null once
;; the body returned.
(module
  (type $body (func (param i32) (result i32)))
  (type $start (func (param i32 i32) (result i32)))
  (type $start_cont (cont $start))
  (type $run (func (result i32)))
  (type $fiber (cont $run))
  (tag $yield (param i32))

  (table $functions (export "__indirect_function_table") 1024 funcref)
  (table $fibers 16 (ref null $fiber))
  (global $fiber_count (mut i32) (i32.const 0))

  ;; The first function every fiber runs: the C body, called through the table.
  (func $fiber_start (type $start) (param $body i32) (param $arg i32) (result i32)
    (call_indirect $functions (type $body) (local.get $arg) (local.get $body)))

  (func $fiber_new (export "fiber_new") (param $body i32) (param $arg i32) (result i32)
    (local $fiber i32)
    (local.set $fiber (global.get $fiber_count))
    (if (i32.ge_u (local.get $fiber) (table.size $fibers))
      (then (drop (table.grow $fibers (ref.null $fiber) (table.size $fibers)))))
    (table.set $fibers (local.get $fiber)
      (cont.bind $start_cont $fiber (local.get $body) (local.get $arg)
        (cont.new $start_cont (ref.func $fiber_start))))
    (global.set $fiber_count (i32.add (local.get $fiber) (i32.const 1)))
    (local.get $fiber))

  (func $fiber_resume (export "fiber_resume") (param $fiber i32) (result i32)
    (local $value i32)
    (local $next (ref null $fiber))
    (block $yielded (result i32 (ref $fiber))
      (resume $fiber (on $yield $yielded) (table.get $fibers (local.get $fiber)))
      (table.set $fibers (local.get $fiber) (ref.null $fiber))
      (return))
    (local.set $next)
    (local.set $value)
    (table.set $fibers (local.get $fiber) (local.get $next))
    (local.get $value))

  (func $fiber_yield (export "fiber_yield") (param $value i32)
    (suspend $yield (local.get $value)))

  (func $fiber_done (export "fiber_done") (param $fiber i32) (result i32)
    (ref.is_null (table.get $fibers (local.get $fiber))))

  (elem declare func $fiber_start))
