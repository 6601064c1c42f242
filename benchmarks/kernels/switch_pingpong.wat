;; Symmetric ping-pong: `run(n)` starts two players that `switch` straight to each other
;; n times in all, passing the count down; returns the number of switches, n.
(module
  (rec
    (type $ft (func (param i32 (ref null $ct)) (result i32)))
    (type $ct (cont $ft)))
  (tag $swap (result i32))
  (global $switches (mut i32) (i32.const 0))

  ;; Receives the count left and the other player; switches to it until the count is 0.
  (func $player (type $ft)
    (local $left i32) (local $other (ref null $ct))
    (local.set $left (local.get 0))
    (local.set $other (local.get 1))
    (loop $again
      (if (i32.eqz (local.get $left)) (then (return (i32.const 0))))
      (global.set $switches (i32.add (global.get $switches) (i32.const 1)))
      (switch $ct $swap (i32.sub (local.get $left) (i32.const 1)) (local.get $other))
      (local.set $other)
      (local.set $left)
      (br $again))
    (unreachable))
  (elem declare func $player)

  (func (export "run") (param $n i32) (result i32)
    (global.set $switches (i32.const 0))
    (drop (resume $ct (on $swap switch)
      (local.get $n)
      (cont.new $ct (ref.func $player))
      (cont.new $ct (ref.func $player))))
    (global.get $switches))
)
