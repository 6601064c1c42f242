"""`p` and `print` for lldb that follow the pointers of a Wasm program.

A C pointer of a wasm32 program is a linear-memory address. The JIT object types it as a
native pointer whose target carries a DW_AT_data_location (add the frame's memory base);
gdb follows that, lldb 14 ignores it, so its `expression` and `frame variable` read the
Wasm address as a native one and fail. This command evaluates variable paths itself (a
variable, then `*`, `->`, `.`, `[N]` and parentheses, as in `*n`, `n->next->v`, `arr[3]`)
on lldb's values, dereferencing a pointer in a Wasm frame at the frame's memory base plus
the address, and prints the result as `frame variable` does. Anything else (arithmetic,
casts, calls, formats such as `p/x`) goes to `expression`, as lldb 16's `dwim-print`
sends to `expression` what `frame variable` cannot do.
"""

from __future__ import annotations

import re

import lldb

from stackstitch.engine import layout as L

TOKEN = re.compile(r"\s*(?:(->|[.*\[\]()])|([A-Za-z_$][\w$]*)|(0x[0-9a-fA-F]+|\d+))")


class NotAPath(Exception):
    """The text is not a variable path: `expression` evaluates it."""


class PrintFailed(Exception):
    """A path that cannot be read; the message is lldb's one-line error."""


def tokens(text: str) -> list[tuple[str, str]]:
    """(kind, text) pairs: kind is "op", "name" or "number"."""
    out, at = [], 0
    text = text.rstrip()
    while at < len(text):
        match = TOKEN.match(text, at)
        if match is None or match.end() == at:
            raise NotAPath(text)
        op, name, number = match.groups()
        out.append(("op", op) if op else ("name", name) if name else ("number", number))
        at = match.end()
    return out


class PathEvaluator:
    """Evaluates one variable path in `frame`. Grammar:
    unary := '*' unary | postfix;  postfix := primary ('.' NAME | '->' NAME | '[' NUMBER ']')*;
    primary := NAME | '(' unary ')'."""

    def __init__(self, frame, text: str):
        self.frame = frame
        self.tokens = tokens(text)
        self.at = 0
        self.wasm = (frame.GetModule().GetFileSpec().GetFilename() or "").startswith("JIT(")

    def evaluate(self):
        if not self.tokens:
            raise NotAPath("")
        value = self.unary()
        if self.at != len(self.tokens):
            raise NotAPath("trailing text")
        return value

    def peek(self, text: str) -> bool:
        return self.at < len(self.tokens) and self.tokens[self.at] == ("op", text)

    def take(self, kind: str) -> str:
        if self.at >= len(self.tokens) or self.tokens[self.at][0] != kind:
            raise NotAPath(f"expected a {kind}")
        self.at += 1
        return self.tokens[self.at - 1][1]

    def unary(self):
        if self.peek("*"):
            self.at += 1
            value, name = self.unary()
            return self.dereference(value, f"*{name}", 0), f"*{name}"
        return self.postfix()

    def postfix(self):
        value, name = self.primary()
        while True:
            if self.peek("."):
                self.at += 1
                member = self.take("name")
                value, name = self.member(value, member), f"{name}.{member}"
            elif self.peek("->"):
                self.at += 1
                member = self.take("name")
                value, name = self.member(self.dereference(value, f"*{name}", 0), member), f"{name}->{member}"
            elif self.peek("["):
                self.at += 1
                index = int(self.take("number"), 0)
                if not self.peek("]"):
                    raise NotAPath("expected ]")
                self.at += 1
                value, name = self.element(value, index, f"{name}[{index}]"), f"{name}[{index}]"
            else:
                return value, name

    def primary(self):
        if self.peek("("):
            self.at += 1
            value, name = self.unary()
            if not self.peek(")"):
                raise NotAPath("expected )")
            self.at += 1
            return value, f"({name})"
        name = self.take("name")
        value = self.frame.FindVariable(name)
        if not value.IsValid():
            value = self.frame.FindValue(name, lldb.eValueTypeVariableGlobal)
        if not value.IsValid():
            value = self.frame.FindValue(name, lldb.eValueTypeVariableStatic)
        if not value.IsValid():
            raise NotAPath(f"no variable {name}")
        return value, name

    @staticmethod
    def member(value, name: str):
        child = value.GetChildMemberWithName(name)
        if not child.IsValid():
            raise PrintFailed(f'"{name}" is not a member of "({value.GetTypeName()}) {value.GetName()}"')
        return child

    def element(self, value, index: int, name: str):
        kind = value.GetType().GetCanonicalType()
        if kind.IsArrayType():
            child = value.GetChildAtIndex(index, lldb.eNoDynamicValues, True)
            if not child.IsValid():
                raise PrintFailed(f"no element {index} in {value.GetName()}")
            return child
        return self.dereference(value, name, index)

    def dereference(self, value, name: str, index: int):
        """The `index`-th object `value` points at; in a Wasm frame, in linear memory."""
        pointer = value.GetType().GetCanonicalType()
        if not pointer.IsPointerType():
            raise PrintFailed(f"{value.GetName()} is not a pointer ({value.GetTypeName()})")
        if not self.wasm:
            raise NotAPath("a native pointer: lldb's own expression reads it")
        target_type = pointer.GetPointeeType()
        address = value.GetValueAsUnsigned() + index * target_type.GetByteSize()
        base, size = self.linear_memory()
        if address + max(target_type.GetByteSize(), 1) > size:
            raise PrintFailed(f"{name}: Wasm address 0x{address:x} is outside linear memory "
                              f"(0x{size:x} bytes)")
        return value.CreateValueFromAddress(name, base + address, target_type)

    def linear_memory(self) -> tuple[int, int]:
        """Native base and byte size of memory 0 of the frame's instance, through the
        vmctx the frame saved."""
        process, error = self.frame.GetThread().GetProcess(), lldb.SBError()
        vmctx = process.ReadPointerFromMemory(self.frame.GetFP() + L.FRAME_VMCTX, error)
        base = process.ReadPointerFromMemory(vmctx + L.VM_MEM_BASE, error) if error.Success() else 0
        size = process.ReadPointerFromMemory(vmctx + L.VM_MEM_SIZE, error) if error.Success() else 0
        if error.Fail():
            raise PrintFailed(f"cannot read the frame's instance: {error.GetCString()}")
        return base, size


def describe(value, name: str) -> str:
    """As `frame variable` prints a value, under the path the user wrote."""
    text = str(value).rstrip("\n")
    head = f"({value.GetTypeName()}) {value.GetName()} = "
    if text.startswith(head):
        text = f"({value.GetTypeName()}) {name} = {text[len(head):]}"
    return text


def print_command(debugger, command, exe_ctx, result, internal_dict):
    """`p EXPR`: a variable path through Wasm pointers, else lldb's `expression -- EXPR`."""
    text = command.strip()
    frame = exe_ctx.GetFrame()
    if frame.IsValid() and text and not text.startswith(("-", "/")):
        try:
            value, name = PathEvaluator(frame, text).evaluate()
        except PrintFailed as e:
            result.SetError(str(e))
            return
        except NotAPath:
            pass
        else:
            if value.GetError().Fail():
                result.SetError(value.GetError().GetCString())
            else:
                result.AppendMessage(describe(value, name))
            return
    expression = f"expression {text}" if text.startswith(("-", "/")) else f"expression -- {text}"
    debugger.GetCommandInterpreter().HandleCommand(expression, exe_ctx, result)
