"""The one privileged door to the grading sandbox for staff accounts: ``python -m autograder.executor``.

Kernels get their sandbox (``autograder.grading.sandbox``) only from root. The graders that run as root
(``python -m autograder grade`` and ``serve``) start sandboxed kernels themselves; everything else
that autogrades runs as a staff account: the formgrader (as ``dgm-grader``) and a TA's own
``nbgrader autograde`` or ``python -m autograder grade``. For them ``GuardedExecute`` sends the
notebook here instead of starting a kernel, and nbgrader goes on with the executed notebook that
comes back (scores, feedback, gradebook: all as the staff account, as before).

Why a root service and not ``sudo``: the request is data (a notebook), not a command line or an
environment that root would have to clean; what runs, with which caps and which files, is
decided here alone. The service listens on a Unix socket that only the staff group can open
(mode 0660, and the peer's credentials are checked again with ``SO_PEERCRED``), reads at most
``MAX_REQUEST_MB`` within ``READ_TIMEOUT_S``, runs the notebook in a scratch folder with the same
sandbox, caps and watch as ``workers.run_task`` (``supervise``), and answers the executed
notebook or the reason it could not run. On the hub it is a JupyterHub service run as root
(``autograder.hub``).

Protocol: one request per connection, a 4-byte big-endian length then JSON,
``{"notebook": <nbformat JSON>}``; the answer is framed the same way:
``{"notebook": ...}`` or ``{"error": "..."}``.
"""
from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import socket
import socketserver
import struct
import sys
import tempfile
import threading
from pathlib import Path

EXECUTOR_ENV = "DGM_EXECUTOR"  # the socket's path, in staff accounts' environment
MAX_REQUEST_MB = 64
READ_TIMEOUT_S = 60.0


class ExecutorError(RuntimeError):
    """The executor refused or failed a notebook: the reason, for the grading log."""


# --- framing ------------------------------------------------------------------------------------

def send(sock: socket.socket, obj: dict) -> None:
    data = json.dumps(obj).encode()
    sock.sendall(struct.pack(">I", len(data)) + data)


def receive(sock: socket.socket, limit: int = MAX_REQUEST_MB << 20) -> dict:
    """One framed JSON object, refused above ``limit`` bytes (checked before reading it)."""
    (size,) = struct.unpack(">I", _exactly(sock, 4))
    if size > limit:
        raise ExecutorError(f"a request of {size >> 20} MiB is over the executor's {limit >> 20} MiB")
    obj = json.loads(_exactly(sock, size))
    if not isinstance(obj, dict):
        raise ExecutorError("a request must be a JSON object")
    return obj


def _exactly(sock: socket.socket, n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise ExecutorError("the connection closed mid-message")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# --- the client: GuardedExecute as a staff account ----------------------------------------------

def execute_remote(path: str, notebook: dict, timeout: float) -> dict:
    """Have the executor at ``path`` run ``notebook`` (nbformat JSON as a dict); returns the
    executed notebook or raises ``ExecutorError`` with the executor's reason."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as e:
            raise ExecutorError(f"the grading executor at {path} cannot be reached ({e.strerror or e}); "
                                "is the hub's executor service running?") from None
        send(sock, {"notebook": notebook})
        answer = receive(sock, limit=(MAX_REQUEST_MB * 2) << 20)
    if "error" in answer:
        raise ExecutorError(f"the grading executor: {answer['error']}")
    return answer["notebook"]


# --- the server ---------------------------------------------------------------------------------

def peer_allowed(conn: socket.socket, group: str | None) -> tuple[bool, str]:
    """Whether the peer is root or a member of ``group``; and who it is, for the log."""
    pid, uid, gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        return False, f"uid {uid}"
    if uid == 0:
        return True, name
    try:
        return grp.getgrnam(group).gr_gid in os.getgrouplist(name, gid), name
    except (KeyError, TypeError):
        return False, name


class Executor(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Runs staff's notebooks in the sandbox, ``workers`` at a time."""

    daemon_threads = True

    def __init__(self, path: Path, group: str | None, workers: int = 2, memory_mb: int | None = None,
                 wall_clock: float | None = None, threads: int = 1, say=print):
        from .workers import MEMORY_MB, WALL_CLOCK_S
        self.path, self.group, self.say = Path(path), group, say
        self.memory_mb, self.wall_clock, self.threads = memory_mb or MEMORY_MB, wall_clock or WALL_CLOCK_S, threads
        self.slots = threading.BoundedSemaphore(max(1, workers))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            self.path.unlink()
        super().__init__(str(self.path), Handler)
        os.chmod(self.path, 0o660)
        if group:
            os.chown(self.path, 0, grp.getgrnam(group).gr_gid)

    def run(self, notebook: dict) -> dict:
        """Execute ``notebook`` in a scratch folder under the sandbox (``workers.supervise``)."""
        from . import forkserver
        from .workers import supervise
        with self.slots, tempfile.TemporaryDirectory(prefix="dgm-exec-") as tmp:
            root = Path(tmp)
            (root / "work").mkdir()
            (root / "in.ipynb").write_text(json.dumps(notebook))
            result = supervise(forkserver.execute, root, self.memory_mb, self.threads, self.wall_clock,
                               text=json.dumps(notebook))
            out = root / "out.ipynb"
            if result.error or not out.is_file():
                raise ExecutorError(result.error or "the notebook could not be run")
            if out.stat().st_size > (MAX_REQUEST_MB * 2) << 20:
                raise ExecutorError("the executed notebook is over the executor's limit")
            import nbformat  # as nbgrader holds it in memory: a cell's text one string, not the file's lines
            return nbformat.read(out, as_version=4)


class Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Executor = self.server  # type: ignore[assignment]
        conn = self.request
        allowed, who = peer_allowed(conn, server.group)
        if not allowed:
            server.say(f"refused {who}: not in {server.group}")
            send(conn, {"error": f"only the staff group ({server.group}) may grade here"})
            return
        try:
            conn.settimeout(READ_TIMEOUT_S)
            request = receive(conn)
            notebook = request.get("notebook")
            if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
                raise ExecutorError("the request holds no notebook")
            conn.settimeout(None)
            server.say(f"running a notebook for {who}")
            executed = server.run(notebook)
            send(conn, {"notebook": executed})
            server.say(f"done for {who}")
        except (ExecutorError, ValueError, OSError) as e:
            server.say(f"error for {who}: {e}")
            try:
                send(conn, {"error": str(e)})
            except OSError:
                pass


def main(argv: list[str] | None = None) -> int:
    from .workers import MEMORY_MB, WALL_CLOCK_S
    p = argparse.ArgumentParser(prog="python -m autograder.executor", description=__doc__.split("\n\n")[0])
    p.add_argument("--socket", type=Path, required=True, help="the Unix socket to listen on")
    p.add_argument("--group", help="the staff group allowed to connect (default: root only)")
    p.add_argument("--workers", type=int, default=2, help="notebooks run at once")
    p.add_argument("--memory-mb", type=int, default=MEMORY_MB, help="memory cap per notebook")
    p.add_argument("--wall-clock", type=float, default=WALL_CLOCK_S, help="seconds allowed per notebook")
    args = p.parse_args(argv)
    from . import sandbox
    if not sandbox.available():
        print("error: the executor needs root, bwrap and setpriv (it starts sandboxed kernels)", file=sys.stderr)
        return 2
    from . import forkserver
    forkserver.warm_up()
    server = Executor(args.socket, args.group, args.workers, args.memory_mb, args.wall_clock,
                      say=lambda m: print(m, flush=True))
    print(f"executor on {args.socket} for {args.group or 'root'}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
