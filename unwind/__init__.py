"""Unwind info for JIT code, and making it visible to debuggers.

dwarf      register numbers, LEB128, DWARF expressions (building and evaluating)
cfi        frame-state rows -> .eh_frame / .eh_frame_hdr
evaluate   rows -> caller registers; a frame walker (standard library only, for gdb's Python)
debuginfo  DWARF compile unit and line table whose lines are Wasm module offsets
elffile    a small ELF64 writer
elf        the JIT object for one module or for the stubs
jitshim    the ELF shared object that provides the GDB JIT interface's symbols
gdbjit     registering JIT objects with gdb and lldb; the Store code observer
"""
