"""The student's kernel in a sandbox: the course hidden or read-only, and a process cap.

``autograder.workers`` grades each submission with a ``python3`` kernelspec whose command is
``python -m autograder.sandbox {connection_file} ...``. This launcher, started by nbgrader,
prepares the kernel and then becomes it (``exec``).

As root (a grading server or container), in a mount namespace of its own:

* each path in ``hide`` (source notebooks, gradebook, everyone's submissions and feedback, the
  exchange) is covered by an empty read-only ``tmpfs`` (a file by ``/dev/null``): student code
  cannot read hidden tests or other students' work, even by absolute path;
* each path in ``readonly`` (the course folder, the course's code and Python) is bind-mounted
  read-only: only the scratch copy being graded can be written;
* ``CAP_SYS_ADMIN`` is dropped, so the kernel cannot undo those mounts;
* the kernel joins a ``pids`` cgroup capped at ``NPROC`` tasks: a fork bomb fails with
  ``BlockingIOError`` instead of filling the machine (root ignores ``RLIMIT_NPROC``).

Not root: no namespace (the kernel has the grader's rights on files; grade as root in a
container where that matters) and the cap is ``RLIMIT_NPROC``, set above the number of
processes the grader's user already has. Whatever cannot be set up is reported on the
kernel's stderr (the grading log) and grading goes on.
"""
from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path

SPEC_ENV = "DGM_SANDBOX"
NPROC = 256  # processes and threads of one kernel and its children
PIDS_V1, CGROUP_V2 = Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")
_CLONE_NEWNS, _MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20000, 1, 32, 4096, 0x4000, 0x40000
_PR_CAPBSET_DROP, _CAP_SYS_ADMIN = 24, 21


def kernelspec(folder: Path, hide: list[str], readonly: list[str], home: Path, cgroup: str) -> dict[str, str]:
    """Write a ``python3`` kernelspec into ``folder/kernels`` that starts kernels through this
    launcher; returns the environment variables that make nbgrader use it."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "autograder.sandbox", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": argv, "display_name": "Python 3 (grading sandbox)", "language": "python"}))
    return {"JUPYTER_PATH": str(folder), SPEC_ENV: json.dumps(
        {"hide": [str(p) for p in hide], "readonly": [str(p) for p in readonly], "home": str(home),
         "cgroup": cgroup})}


def _cgroup_base() -> Path | None:
    """Where pids cgroups are made: cgroup v1's ``pids`` hierarchy, or the v2 root."""
    if PIDS_V1.is_dir():
        return PIDS_V1
    controllers = CGROUP_V2 / "cgroup.controllers"
    return CGROUP_V2 if controllers.exists() and "pids" in controllers.read_text().split() else None


def join_cgroup(name: str, limit: int = NPROC) -> str | None:
    """Move this process into a new pids cgroup ``name`` capped at ``limit``; why not, or None."""
    base = _cgroup_base()
    if base is None:
        return "no pids cgroup on this machine"
    try:
        group = base / name
        group.mkdir(exist_ok=True)
        (group / "pids.max").write_text(str(limit))
        (group / "cgroup.procs").write_text(str(os.getpid()))
    except OSError as e:
        return f"no pids cgroup ({e.strerror})"
    return None


def remove_cgroup(name: str) -> bool:
    """Kill whatever is left in cgroup ``name`` and remove it (called by the grader).
    Returns True if its tasks ever hit the cap (a fork bomb)."""
    base = _cgroup_base()
    group = base / name if base else None
    if group is None or not group.is_dir():
        return False
    for _ in range(100):
        pids = [int(p) for p in (group / "cgroup.procs").read_text().split()]
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    events = (group / "pids.events").read_text().split() if (group / "pids.events").exists() else []
    try:
        group.rmdir()
    except OSError:
        pass
    return "max" in events and events[events.index("max") + 1] != "0"


def _mounts(hide: list[str], readonly: list[str]) -> str | None:
    """In a new mount namespace, hide and make read-only; returns why it could not, or None."""
    libc = ctypes.CDLL(None, use_errno=True)

    def mount(src, target, fstype, flags, data=None) -> bool:
        return libc.mount(src and src.encode(), target.encode(), fstype and fstype.encode(), flags,
                          data and data.encode()) == 0

    if libc.unshare(_CLONE_NEWNS) != 0 or not mount("none", "/", None, _MS_REC | _MS_PRIVATE):
        return f"no mount namespace ({os.strerror(ctypes.get_errno())})"
    for p in readonly:  # first, so that what is hidden inside stays hidden
        p = os.path.realpath(p)
        if os.path.isdir(p) and not (mount(p, p, None, _MS_BIND | _MS_REC)
                                     and mount(None, p, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY)):
            return f"cannot make {p} read-only ({os.strerror(ctypes.get_errno())})"
    for p in hide:
        if not os.path.lexists(p):
            continue
        p = os.path.realpath(p)
        ok = (mount("tmpfs", p, "tmpfs", _MS_RDONLY, "size=4k,mode=000") if os.path.isdir(p)
              else mount("/dev/null", p, None, _MS_BIND))
        if not ok:
            return f"cannot hide {p} ({os.strerror(ctypes.get_errno())})"
    if libc.prctl(_PR_CAPBSET_DROP, _CAP_SYS_ADMIN, 0, 0, 0) != 0:
        return "cannot drop CAP_SYS_ADMIN"
    return None


def _tasks_of(uid: int) -> int:
    """Processes and threads of ``uid`` (what RLIMIT_NPROC counts)."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid == uid:
                count += int(Path(f"/proc/{pid}/status").read_text().split("Threads:")[1].split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return count


def launch(argv: list[str]) -> None:
    """Prepare the sandbox described by ``$DGM_SANDBOX`` and exec the kernel with ``argv``
    (the connection file, then ipykernel's extra arguments)."""
    spec = json.loads(os.environ.pop(SPEC_ENV, "{}"))
    problems = []
    if os.geteuid() == 0:
        problems += [join_cgroup(spec["cgroup"]) if spec.get("cgroup") else "no cgroup name",
                     _mounts(spec.get("hide", []), spec.get("readonly", []))]
    else:
        limit = _tasks_of(os.getuid()) + NPROC
        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    for problem in filter(None, problems):
        print(f"autograder sandbox: {problem}", file=sys.stderr)
    home = Path(spec.get("home") or os.environ.get("HOME", "/tmp"))
    for var, sub in (("HOME", ""), ("IPYTHONDIR", ".ipython"), ("MPLCONFIGDIR", ".matplotlib"),
                     ("XDG_CACHE_HOME", ".cache")):
        os.environ[var] = str(home / sub)
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", *argv])


if __name__ == "__main__":
    launch(sys.argv[1:])
