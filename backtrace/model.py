"""What a walk produces: frames grouped by the stack they ran on, and how it ended.

The field names are the trap-report JSON schema (README, "Trap reports"), so `to_json`
is a plain conversion that the CLI, the gdb plugin and tests share.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# How a program's run ended; the report's last line names it.
TRAP = "trap"
EXHAUSTION = "stack exhaustion"
UNHANDLED_SUSPENSION = "unhandled suspension"
UNCAUGHT_EXCEPTION = "uncaught exception"
HOST_ERROR = "host function error"


@dataclass
class Frame:
    """One frame; a function inlined into another gets a frame of its own (`inlined`),
    above the one it was inlined into, with the same index, offset and pc."""
    func_index: int
    func_name: str
    wasm_offset: int
    pc: int
    stack_id: int
    file: str | None = None  # source position, from the module's DWARF (None without)
    line: int | None = None
    column: int | None = None
    inlined: bool = False


@dataclass
class ResumeSite:
    func_name: str
    wasm_offset: int


@dataclass
class Stack:
    """A stack the walk passed through, innermost first. For a continuation, `func_name` is
    the function it was created from and `resumed_at` the resume (or switch) site in the
    stack that resumed it; `handlers` names the tags that resume installed."""
    id: int
    kind: str  # "main" | "continuation"
    func_name: str | None
    resumed_at: ResumeSite | None
    handlers: list[str] = field(default_factory=list)


@dataclass
class Backtrace:
    frames: list[Frame] = field(default_factory=list)
    stacks: list[Stack] = field(default_factory=list)
    note: str | None = None  # why the walk stopped early (a corrupt chain), if it did
    kind: str = TRAP
    message: str = ""
    tag: str | None = None  # the tag of an unhandled suspension or an uncaught exception
    detail: str | None = None  # more about the trap (an out-of-bounds access's address)
    # frames[group_ends[k-1]:group_ends[k]] ran on stacks[k] (one stack can occur twice:
    # the main stack, when a host function called back into Wasm)
    group_ends: list[int] = field(default_factory=list)

    def open_stack(self, stack: Stack):
        """Frames appended from now on run on `stack`."""
        if self.stacks:
            self.group_ends.append(len(self.frames))
        self.stacks.append(stack)

    def close(self):
        """The walk is over: end the last group."""
        if len(self.group_ends) < len(self.stacks):
            self.group_ends.append(len(self.frames))

    def groups(self):
        """(stack, its frames) in walk order."""
        start = 0
        for stack, end in zip(self.stacks, self.group_ends):
            yield stack, self.frames[start:end]
            start = end

    def extend(self, outer: "Backtrace"):
        """Append the frames of an enclosing activation (a host function called back into
        Wasm, and the failure travelled out through it)."""
        self.group_ends.extend(len(self.frames) + end for end in outer.group_ends)
        self.frames.extend(outer.frames)
        self.stacks.extend(outer.stacks)
        if self.note:
            self.note += " (in the activation a host function called)"
        self.note = self.note or outer.note

    def frames_json(self) -> list[dict]:
        return [{"func_index": f.func_index, "func_name": f.func_name, "wasm_offset": f.wasm_offset,
                 "pc": f.pc, "stack_id": f.stack_id, "file": f.file, "line": f.line, "column": f.column,
                 "inlined": f.inlined} for f in self.frames]  # asdict is 10x slower

    def stacks_json(self) -> list[dict]:
        return [asdict(s) for s in self.stacks]

    def to_json(self) -> dict:
        """The trap-report schema (`trap`, `frames`, `stacks`), plus `kind`, and `tag` and
        `note` when there is one."""
        document = {"trap": self.message, "kind": self.kind, "frames": self.frames_json(),
                    "stacks": self.stacks_json()}
        if self.tag:
            document["tag"] = self.tag
        if self.detail:
            document["detail"] = self.detail
        if self.note:
            document["note"] = self.note
        return document
