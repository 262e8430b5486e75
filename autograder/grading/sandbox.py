"""The student's kernel in a sandbox: an account of its own, an allow-list of files, caps.

Every grading kernel is started as ``python -I -m autograder.grading.sandbox {connection_file}``
(``GradingKernelManager``); ``-I`` keeps the working directory, ``$PYTHONPATH`` and the user's
site folder off ``sys.path``, so nothing a student submitted is imported by this launcher or by
the kernel. The launcher reads the sandbox that ``$DGM_SANDBOX`` describes (written by the
grader, ``spec_env``) and then becomes ``bwrap`` (Debian's ``bubblewrap``), which becomes the
kernel. As root with ``bwrap``:

* **Nobody in particular.** The kernel runs as a uid of its own (``UID_BASE`` + n, one per
  concurrent kernel, taken with a lock file and unknown to ``/etc/passwd``), with a group of the
  same number and no other group, no capabilities and ``no_new_privs`` (``setpriv``): never as
  root or as a staff account, and RLIMIT_NPROC counts its processes alone.
* **An allow-list, not a deny-list.** Its file system is a new, empty root with, read-only: the
  system's programs and libraries (``/usr`` and the links to it), a few files of ``/etc`` (the
  dynamic linker's cache, fonts, time zone, ``passwd``/``group``: no ``shadow``), the Python
  environment (the launcher's ``sys.path`` minus this repository), ``helpers/``, the data, and
  of ``autograder/`` the kernel and the evaluators that tests call (``KERNEL_MODULES``). Not the
  source notebooks, the tests, the history, the gradebook, the hub's secrets or anyone's home.
* **Writable: tmpfs only**, each with a size (``TMPFS_MB``): ``/tmp``, ``/dev/shm``, its home and
  its working directory (where the notebook runs); and the folder of its sockets, which the
  grader made a 4 MiB tmpfs (``autograder.grading.forkserver``). Their pages count against the memory cap.
* **Caps** (``autograder.grading.cgroups``, made by the grader, joined here before ``bwrap``): memory with
  swap and tmpfs, a CPU quota and weight, ``NPROC`` tasks; the grader stops the kernel as soon as
  a cap was hit (``workers.run_task``). Its own pid, network, IPC and UTS namespaces, a new
  session and ``--die-with-parent``: it sees no other process, has no network (its messages go
  through Unix sockets), and everything it starts dies with it.

Why ``bwrap`` rather than our own ``unshare``/``mount`` calls: it sets up the pid and network
namespaces and the death signal that a hand-written launcher would need a forking init for, it
is small and audited (Flatpak's sandbox), and the launcher shrinks to building its argument list.

Not root, or no ``bwrap``: the kernel would run with the grader's own rights, so the launcher
refuses unless ``$DGM_NO_SANDBOX=1`` (``--no-sandbox``: one person grading their own work on a
laptop, ``make lab``). Staff accounts reach the sandbox through the root executor
(``autograder.executor``).
"""
from __future__ import annotations

import fcntl
import json
import os
import pwd
import resource
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .cgroups import Caps, Cgroup

SPEC_ENV = "DGM_SANDBOX"
NO_SANDBOX_ENV = "DGM_NO_SANDBOX"
NPROC = 256  # processes and threads of one kernel and its children
UID_BASE, UID_POOL = 61000, 128  # the kernels' own uids (none may be in /etc/passwd)
BASE = Path("/dev/shm/dgm-sandbox")  # a tmpfs: what a kernel writes in its socket folder counts in its cap
LOCKS = BASE / "locks"
TMPFS_MB = {"/tmp": 512, "/dev/shm": 256, "home": 256, "work": 512}
REPO = Path(__file__).resolve().parents[2]
# Bound read-only into the sandbox: the kernel, the evaluators that tests call, and every package
# __init__.py on their way (paths under autograder/).
KERNEL_MODULES = ("__init__.py", "grading/__init__.py", "grading/kernel.py", "evaluators/__init__.py",
                  "evaluators/evaluate.py", "evaluators/probes.py", "evaluators/conditional.py")
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "fonts", "localtime", "passwd", "group", "nsswitch.conf",
       "alternatives", "mime.types", "matplotlibrc")
KERNEL = ["-I", "-m", "autograder.grading.kernel", "-f"]
HOME = "/home/student"


class SandboxError(RuntimeError):
    """The sandbox cannot be set up, and grading without one was not asked for."""


def available() -> bool:
    """Whether kernels get the sandbox here (root and ``bwrap`` on the PATH)."""
    return os.geteuid() == 0 and shutil.which("bwrap") is not None and shutil.which("setpriv") is not None


def unsandboxed_allowed() -> bool:
    return os.environ.get(NO_SANDBOX_ENV) == "1"


@dataclass
class Prepared:
    """A kernel's sandbox before it starts: the folder of its connection file and sockets and its
    cgroup (``prepare``); ``close`` ends whatever is left of it."""
    runtime: Path
    group: Cgroup | None = None
    owns_group: bool = False

    def env(self, data: str | None, threads: int) -> dict[str, str]:
        """The environment variable that tells the launcher how to sandbox the kernel."""
        if self.group is None:
            return {}
        return {SPEC_ENV: json.dumps({"cgroup": self.group.name, "runtime": str(self.runtime), "data": data,
                                      "threads": threads})}

    def close(self) -> None:
        if self.group is not None and self.owns_group:
            self.group.remove()
        elif self.group is not None:
            self.group.kill()
        shutil.rmtree(self.runtime, ignore_errors=True)


def _base() -> Path:
    """``BASE``, made by root for root (a link or someone else's folder there is refused)."""
    BASE.mkdir(mode=0o711, exist_ok=True)
    st = os.lstat(BASE)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != 0:
        raise SandboxError(f"{BASE} is not root's own folder")
    os.chmod(BASE, 0o711)
    return BASE


def prepare(cgroup: str | None, caps: Caps) -> Prepared:
    """Set up a kernel's sandbox: a fresh socket folder under ``BASE`` and the cgroup ``cgroup``
    (made with ``caps``; a name of its own when None, removed by ``close``). Without root and
    ``bwrap`` it raises ``SandboxError`` unless grading without a sandbox was asked for."""
    if not available():
        if unsandboxed_allowed():
            return Prepared(Path(tempfile.mkdtemp(prefix="dgm-kernel-")))
        raise SandboxError("refused to run a submission without the grading sandbox, which needs root, bwrap and "
                           "setpriv (staff accounts grade through the root executor, autograder.executor); to grade "
                           f"your own work on this machine, set {NO_SANDBOX_ENV}=1 (--no-sandbox)")
    runtime = Path(tempfile.mkdtemp(prefix="k-", dir=_base()))
    group = Cgroup(cgroup or f"dgm/kernel/{runtime.name}")
    problems = group.create(caps)
    prepared = Prepared(runtime, group, owns_group=cgroup is None)
    if problems:
        prepared.close()
        raise SandboxError(f"the kernel's caps cannot be set: {'; '.join(problems)}")
    return prepared


def allowed_paths(data: str | None) -> list[str]:
    """What the kernel may read besides the system: the Python environment (this process's
    ``sys.path`` under ``-I``, less this repository), ``helpers/``, the data, the kernel's modules."""
    keep = []
    venv = REPO / ".venv"
    for entry in sys.path:
        p = Path(entry or ".").resolve()
        if not p.exists() or (p.is_relative_to(REPO) and not p.is_relative_to(venv)):
            continue
        keep.append(str(p))
    prefixes = [sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent.parent)]
    keep += [p for p in prefixes if not Path(p).resolve().is_relative_to(REPO) or Path(p).resolve().is_relative_to(venv)]
    keep += [str(REPO / "helpers"), data or str(REPO / "data")]
    keep += [str(REPO / "autograder" / m) for m in KERNEL_MODULES]
    return [p for p in dict.fromkeys(keep) if os.path.exists(p)]


def take_uid() -> tuple[int, int]:
    """A free kernel uid and the fd of the lock that holds it (inherited by ``bwrap``, so the uid
    stays taken for the kernel's life)."""
    _base()
    LOCKS.mkdir(mode=0o700, exist_ok=True)
    for uid in range(UID_BASE, UID_BASE + UID_POOL):
        try:
            pwd.getpwuid(uid)
            continue  # a real account: never hand its uid to a kernel
        except KeyError:
            pass
        fd = os.open(LOCKS / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        os.set_inheritable(fd, True)
        return uid, fd
    raise SandboxError(f"all {UID_POOL} kernel uids from {UID_BASE} are in use")


def bwrap_args(spec: dict, cwd: str, uid: int) -> list[str]:
    """``bwrap``'s arguments for the sandbox ``spec`` (see the module's docstring); the kernel's
    working directory ``cwd`` is an empty tmpfs at the same path."""
    args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--hostname", "grading"]
    for top in ("bin", "lib", "lib32", "lib64", "libx32", "sbin"):
        host = Path("/") / top
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    args += ["--ro-bind", "/usr", "/usr", "--dev", "/dev", "--proc", "/proc"]
    runtime, mounts = spec["runtime"], {"/", "/tmp", "/dev", "/dev/shm", HOME}
    # The tmpfs mounts before the binds: mounted after, /tmp's would hide an allowed path under /tmp
    # (a site's copied Python in /tmp/..., the data), and the kernel could not even start.
    for path, size in (("/tmp", TMPFS_MB["/tmp"]), ("/dev/shm", TMPFS_MB["/dev/shm"]), (HOME, TMPFS_MB["home"])):
        args += ["--perms", "1777", "--size", str(size << 20), "--tmpfs", path]
    binds = [f"/etc/{name}" for name in ETC if os.path.lexists(f"/etc/{name}")] + allowed_paths(spec.get("data"))
    parents = sorted({str(q) for p in binds for q in Path(p).parents} - mounts, key=len)
    for parent in parents:  # bwrap would make them 0700, out of the kernel's reach
        args += ["--perms", "0755", "--dir", parent]
    for path in binds:
        args += ["--ro-bind", path, path]
    for parent in sorted({str(q) for p in (cwd, runtime) for q in Path(p).parents} - mounts - set(parents), key=len):
        args += ["--perms", "0755", "--dir", parent]
    args += ["--perms", "1777", "--size", str(TMPFS_MB["work"] << 20), "--tmpfs", cwd]
    args += ["--bind", runtime, runtime, "--chdir", cwd, "--setenv", "HOME", HOME]
    return args + ["--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                   "--bounding-set=-all", "--no-new-privs", "--"]


def kernel_env(home: str, threads: int) -> dict[str, str]:
    """The kernel's environment: the grader's, less anything secret or naming its folders."""
    drop = ("DGM_DB_URL", "DGM_FEEDBACK_SERVICE", "JPY_PARENT_PID", "SUDO_COMMAND", "SUDO_USER", "MAIL")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith(("PG", "JUPYTERHUB_"))}
    env.update(HOME=home, USER="student", LOGNAME="student", IPYTHONDIR=f"{home}/.ipython",
               MPLCONFIGDIR=f"{home}/.matplotlib", XDG_CACHE_HOME=f"{home}/.cache", TMPDIR="/tmp",
               PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def launch(argv: list[str]) -> None:
    """Prepare the sandbox described by ``$DGM_SANDBOX`` and exec the grading kernel with
    ``argv`` (the connection file, then the kernel's extra arguments)."""
    raw = os.environ.pop(SPEC_ENV, "")
    if not available():
        if not unsandboxed_allowed():
            print("autograder sandbox: refused to run a submission without the sandbox (it needs root, bwrap "
                  f"and setpriv); to grade your own work on this machine set {NO_SANDBOX_ENV}=1", file=sys.stderr)
            sys.exit(3)
        print("autograder sandbox: no sandbox (asked for with --no-sandbox)", file=sys.stderr)
        os.execv(sys.executable, [sys.executable, *KERNEL, *argv])
    if not raw:
        print("autograder sandbox: no sandbox description ($DGM_SANDBOX)", file=sys.stderr)
        sys.exit(3)
    spec = json.loads(raw)
    from .cgroups import Cgroup
    problems = Cgroup(spec["cgroup"]).add()
    if problems:
        print(f"autograder sandbox: {'; '.join(problems)}", file=sys.stderr)
    uid, _lock = take_uid()
    runtime = spec["runtime"]
    if Path(runtime).parent != BASE or os.path.islink(runtime):
        print(f"autograder sandbox: {runtime} is not a socket folder of {BASE}", file=sys.stderr)
        sys.exit(3)
    os.chown(runtime, uid, uid)
    os.chmod(runtime, 0o700)
    for arg in argv:  # the connection file: the kernel reads its key
        if os.path.dirname(os.path.abspath(arg)) == os.path.abspath(runtime):
            os.chown(arg, uid, uid)
    # A backstop for the kernel's own uid, above the cgroup's cap (which the grader watches for)
    resource.setrlimit(resource.RLIMIT_NPROC, (2 * NPROC, 2 * NPROC))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    env = kernel_env(HOME, int(spec.get("threads") or 1))
    command = bwrap_args(spec, os.getcwd(), uid) + [sys.executable, *KERNEL, *argv]
    os.execvpe("bwrap", command, env)


if __name__ == "__main__":
    launch(sys.argv[1:])
