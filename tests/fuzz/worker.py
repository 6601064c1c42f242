"""A long-lived process that runs modules on stackstitch, each in a forked child.

The engine is imported once; each module then costs a fork. A crash in generated code
kills only the child, and the worker reports it; a child silent for longer than the time
limit (generated code that loops, which no Python signal can interrupt) is killed and
reported as a hang. Jobs come as JSON lines on stdin ({"wasm": path, "recipe": {...},
"timeout": seconds}); the child's events (see `observe`) go out as JSON lines on stdout,
followed by {"event": "crash", "signal"|"status"} or {"event": "hang"} if it ended so,
and always {"event": "done"}.

    python -m tests.fuzz.worker
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import traceback

from .observe import Recipe, decoded_host_module, observe


def run_child(job: dict, out_fd: int) -> None:
    def emit(event: dict) -> None:
        data = (json.dumps(event) + "\n").encode()
        while data:
            data = data[os.write(out_fd, data):]
    try:
        with open(job["wasm"], "rb") as f:
            wasm = f.read()
        observe(wasm, Recipe(**job["recipe"]), emit)
    except BaseException:  # a bug of the harness, not of the engine: say so
        emit({"event": "harness error", "message": traceback.format_exc()})


def run_job(job: dict, send) -> None:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        run_child(job, write_fd)
        os._exit(0)
    os.close(write_fd)
    buffer = b""
    hung = False
    with os.fdopen(read_fd, "rb", buffering=0) as pipe:
        while True:
            ready, _, _ = select.select([pipe], [], [], job["timeout"])
            if not ready:
                os.kill(pid, signal.SIGKILL)
                hung = True
                break
            chunk = pipe.read(65536)
            if not chunk:
                break
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                send(line.decode())
    _, status = os.waitpid(pid, 0)
    if hung:
        send(json.dumps({"event": "hang"}))
    elif os.WIFSIGNALED(status):
        send(json.dumps({"event": "crash", "signal": os.WTERMSIG(status)}))
    elif os.WEXITSTATUS(status) != 0:
        send(json.dumps({"event": "crash", "status": os.WEXITSTATUS(status)}))


def main() -> None:
    decoded_host_module()  # once, before forking
    def send(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    for line in sys.stdin:
        run_job(json.loads(line), send)
        send(json.dumps({"event": "done"}))


if __name__ == "__main__":
    main()
