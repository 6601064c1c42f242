"""Running compiled code: the store and instances, continuation stacks, exceptions, native
memory, the stack walker and the debug root out-of-process readers use."""
