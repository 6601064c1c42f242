"""`Module` to machine code: the single-pass compiler with its address maps, CFI rows and
exception tables, the x86-64 encoder, and the hand-assembled stubs."""
