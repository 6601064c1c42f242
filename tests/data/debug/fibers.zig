//! Fibers in Zig, switched by the stack-switching primitives of fiber.wat (preloaded as
//! `env`): walk yields each value of a linked list to main. The tests build it with the
//! ziglang wheel: `zig build-exe fibers.zig -target wasm32-wasi -O Debug --import-table`
//! (the table import makes a function pointer an index into fiber.wat's table).
const std = @import("std");

extern "env" fn fiber_new(body: *const fn (?*anyopaque) callconv(.c) i32, arg: ?*anyopaque) i32;
extern "env" fn fiber_resume(fiber: i32) i32;
extern "env" fn fiber_yield(value: i32) void;
extern "env" fn fiber_done(fiber: i32) i32;

const Node = struct { v: i32, next: ?*Node };

/// One line on stdout, through WASI itself (std's writers change between Zig releases).
fn say(comptime format: []const u8, args: anytype) void {
    var buffer: [128]u8 = undefined;
    const line = std.fmt.bufPrint(&buffer, format ++ "\n", args) catch return;
    const pieces = [_]std.os.wasi.ciovec_t{.{ .base = line.ptr, .len = line.len }};
    var written: usize = 0;
    _ = std.os.wasi.fd_write(1, &pieces, pieces.len, &written);
}

fn walk(arg: ?*anyopaque) callconv(.c) i32 {
    const list: *Node = @ptrCast(@alignCast(arg.?));
    var count: i32 = 0;
    var n: ?*Node = list;
    while (n) |node| : (n = node.next) {
        count += 1;
        say("walk: count={d} v={d}", .{ count, node.v });
        fiber_yield(node.v); // walk yields
    }
    return count;
}

pub fn main() void {
    var c = Node{ .v = 33, .next = null };
    var b = Node{ .v = 22, .next = &c };
    var a = Node{ .v = 11, .next = &b };
    const fiber = fiber_new(&walk, &a);
    var sum: i32 = 0;
    while (true) {
        const value = fiber_resume(fiber); // main resumes walk
        if (fiber_done(fiber) != 0) break;
        sum += value;
        say("main: value={d} sum={d}", .{ value, sum });
    }
}
