"""Unwind and debug info for JIT code, and making it visible to debuggers.

dwarf        register numbers, LEB128, DWARF expressions (building and evaluating)
cfi          frame-state rows -> .eh_frame / .eh_frame_hdr
evaluate     rows -> caller registers; a frame walker (standard library only, for gdb's Python)
elffile      a small ELF64 writer
elf          the JIT object for one module or for the stubs
jitshim      the ELF shared object that provides the GDB JIT interface's symbols
gdbjit       registering JIT objects with gdb and lldb; the Store code observer

Source-level debug info (README.md in this folder):
debuginfo    the DWARF sections of a module's JIT object: translated, or Wasm-level
dwarfout     a DWARF 4 writer: DIE trees, abbreviations, strings, location/range lists, lines
wasmdwarf    the DWARF in a Wasm module's custom sections, read with pyelftools
codemap      native ranges of Wasm code offsets, per compiled function
wasmcode     where a function writes its Wasm locals, and its loops
sourcelines  Wasm line programs -> native line sequences (JIT objects, jitdump)
sourcepositions  Wasm code offsets -> source positions with inlined calls (trap reports)
locations    Wasm location expressions -> native ones
wasmpointers how Wasm (4-byte, linear-memory) pointers and their targets are described
translate    the module's compile units, DIE by DIE
wasmlevel    Wasm-level variables and lines, for code without DWARF
"""
