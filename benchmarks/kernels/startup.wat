;; A trivial module: running it measures each tool's process start-up and instantiation.
(module
  (func (export "one") (result i32) (i32.const 1)))
