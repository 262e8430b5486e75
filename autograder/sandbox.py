"""The student's kernel in a sandbox: ``bubblewrap`` namespaces and a process cap.

Every grading kernel is started as ``python -m autograder.sandbox {connection_file}``
(``GradingKernelManager``); this launcher prepares the sandbox that ``$DGM_SANDBOX`` describes
and then becomes the kernel (``exec``). As root with ``bwrap`` (Debian's ``bubblewrap``):

* its own pid, network, mount, IPC and UTS namespaces, all capabilities dropped and
  ``--die-with-parent``: the kernel sees no other process, has no network (its messages go
  through Unix sockets in the scratch folder), and everything it starts, double-forked or
  not, dies with the namespace when grading ends;
* the whole file system read-only, an empty private ``/tmp`` (so no other grader's scratch
  course, connection file or socket is in sight) and ``/root`` hidden; the paths in ``hide``
  (source notebooks, gradebooks, everyone's submissions, the exchange) are empty; only the
  scratch folder being graded and its ``home/`` can be written;
* a ``pids`` cgroup capped at ``NPROC`` tasks, joined before ``bwrap`` starts: a fork bomb fails
  with ``BlockingIOError`` instead of filling the machine (root ignores ``RLIMIT_NPROC``).

Why ``bwrap`` rather than our own ``unshare``/``mount`` calls: it sets up the pid and network
namespaces and the death signal that a hand-written launcher would need a forking init for, it
is small and audited (Flatpak's sandbox), and the launcher shrinks to building its argument list.

Not root, or no ``bwrap``: no namespaces (the kernel has the grader's rights on files; grade as
root where that matters) and the cap is ``RLIMIT_NPROC`` above the processes the user already
has. What cannot be set up is reported on the kernel's stderr (the grading log).
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sys
import time
from pathlib import Path

SPEC_ENV = "DGM_SANDBOX"
NPROC = 256  # processes and threads of one kernel and its children
PIDS_V1, CGROUP_V2 = Path("/sys/fs/cgroup/pids"), Path("/sys/fs/cgroup")
KERNEL = [sys.executable, "-m", "autograder.kernel", "-f"]


def spec_env(hide: list[str], readonly: list[str], writable: list[str], home: Path, cgroup: str) -> dict[str, str]:
    """The environment variable that tells this launcher how to sandbox the next kernel."""
    return {SPEC_ENV: json.dumps({"hide": [str(p) for p in hide], "readonly": [str(p) for p in readonly],
                                  "writable": [str(p) for p in writable], "home": str(home), "cgroup": cgroup})}


def available() -> bool:
    """Whether kernels get namespaces here (root and ``bwrap`` on the PATH)."""
    return os.geteuid() == 0 and shutil.which("bwrap") is not None


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


def bwrap_args(spec: dict, cwd: str) -> list[str]:
    """``bwrap``'s arguments for the sandbox ``spec`` (see the module's docstring)."""
    args = ["bwrap", "--die-with-parent", "--unshare-all", "--cap-drop", "ALL", "--ro-bind", "/", "/",
            "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/root", "--tmpfs", "/run"]
    for p in spec.get("readonly", []):  # what the kernel needs from under /root or /tmp, read-only
        if os.path.exists(p):
            args += ["--ro-bind", p, p]
    for p in spec.get("writable", []):
        args += ["--bind", p, p]
    for p in spec.get("hide", []):
        if os.path.isdir(p):
            args += ["--tmpfs", p, "--remount-ro", p]
        elif os.path.lexists(p):
            args += ["--ro-bind", "/dev/null", p]
    return args + ["--chdir", cwd, "--"]


def launch(argv: list[str]) -> None:
    """Prepare the sandbox described by ``$DGM_SANDBOX`` and exec the grading kernel with
    ``argv`` (the connection file, then the kernel's extra arguments)."""
    spec = json.loads(os.environ.pop(SPEC_ENV, "{}"))
    home = Path(spec.get("home") or os.environ.get("HOME", "/tmp"))
    for var, sub in (("HOME", ""), ("IPYTHONDIR", ".ipython"), ("MPLCONFIGDIR", ".matplotlib"),
                     ("XDG_CACHE_HOME", ".cache")):
        os.environ[var] = str(home / sub)
    command = KERNEL + argv
    if not spec:
        os.execv(command[0], command)
    if available():
        problem = join_cgroup(spec["cgroup"]) if spec.get("cgroup") else "no cgroup name"
        if problem:
            print(f"autograder sandbox: {problem}", file=sys.stderr)
        os.environ.pop("JPY_PARENT_PID", None)  # its parent in the pid namespace is bwrap, not the grader
        os.execvp("bwrap", bwrap_args(spec, os.getcwd()) + command)
    print("autograder sandbox: no namespaces (needs root and bwrap)", file=sys.stderr)
    limit = _tasks_of(os.getuid()) + NPROC
    resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
    os.execv(command[0], command)


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


if __name__ == "__main__":
    launch(sys.argv[1:])
