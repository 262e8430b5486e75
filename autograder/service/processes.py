"""The service's processes: one service per course (``hold``, a lock file), the running graders
killed when the service abandons them (``kill_graders``) and those a service that died left
behind ended at the next start (``reap_orphans``, found by ``MARKER`` in their environment)."""
from __future__ import annotations

import fcntl
import multiprocessing.forkserver
import os
import shutil
import signal
import time
from concurrent.futures import wait
from contextlib import contextmanager
from pathlib import Path

from ..course.course import GradingError
from ..grading.cgroups import Cgroup

MARKER = "DGM_FEEDBACK_SERVICE"        # in the environment of this service's graders: "<state dir>#<instance>"


@contextmanager
def hold(path: Path):
    """One service per course: the lock file ``path``, held (and naming this process) while the
    block runs; GradingError, naming the holder, if another service holds it."""
    with open(path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise GradingError(f"another `serve` holds {path} ({lock.read().strip()})") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}\n")
        lock.flush()
        yield


def _children(ppid: int) -> list[int]:
    """The processes whose parent is ``ppid`` (read from ``/proc``)."""
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == ppid:
                out.append(int(pid))
        except (OSError, IndexError, ValueError):
            pass
    return out


def kill_graders(running) -> None:
    """Kill the forkserver's children (the running graders, each with its kernel) until the futures
    ``running`` are done, for 60 s at most."""
    server = getattr(getattr(multiprocessing.forkserver, "_forkserver", None), "_forkserver_pid", None)
    end = time.monotonic() + 60
    while time.monotonic() < end:  # again and again: a grader may be forked in the meantime
        for pid in _children(server) if server else []:
            _kill_group(pid)
        if not wait(running, timeout=0.5).not_done:
            break


def _kill_group(pid: int) -> None:
    """SIGKILL to ``pid``'s process group if it leads one (a grader and its kernel), else to ``pid``."""
    try:
        os.killpg(pid, signal.SIGKILL) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def reap_orphans(state: str, instance: str) -> list[int]:
    """End the graders (and their kernels) that a service on ``state`` left running when it died,
    found by ``MARKER`` in their environment, and remove their scratch folders and cgroups.
    Call it only while holding the service's lock: then no other live service owns them."""
    prefix, current = f"{MARKER}={state}#".encode(), f"{MARKER}={instance}".encode()
    found, roots = [], []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(prefix) and v != current for v in env):
            found.append(int(pid))
            try:
                cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
                if cwd.name.startswith("dgm-grade-") and os.getpgid(int(pid)) == int(pid):
                    roots.append(cwd)
            except OSError:
                pass
    for pid in found:
        _kill_group(pid)
    for root in roots:
        Cgroup(f"dgm/grade/{root.name}").remove()
        shutil.rmtree(root, ignore_errors=True)
    return found
