"""A JupyterHub for the class on one server (``make hub``): Unix accounts from the roster, the
course folder, the exchange and the gradebook, with Unix permissions that keep them apart.

``python -m autograder.hub setup``     groups, service accounts, folders, a PostgreSQL cluster,
                                       the hub's configuration (run again at any time)
``python -m autograder.hub accounts``  one Unix account per person of a roster CSV
``python -m autograder.hub up``        PostgreSQL and JupyterHub, until stopped (Ctrl-C)

The site (default ``/srv/dgm``; names below for the default prefix ``dgm``):

* ``course/``: the nbgrader course (source notebooks, release, submissions, gradebook URL),
  ``dgm-grader:dgm-staff`` mode 2770. Instructors and TAs (group ``dgm-staff``) read and write it;
  students cannot enter it. The formgrader runs there as ``dgm-grader``, a JupyterHub service that
  only ``dgm-staff`` (and hub admins, the instructors) may open.
* ``exchange/``: nbgrader's exchange, 1777 as nbgrader requires. ``exchange/dgm/inbound`` is 3773
  (group ``dgm-staff``, set-group-id, sticky): students can drop submissions in but not list it,
  and a submission's folder (``helpers.exchange.PrivateSubmit``) is open to its author and the staff only.
* ``postgres/``: the gradebook's PostgreSQL cluster, run as ``dgm-db`` (mode 0700), listening on
  127.0.0.1 with password authentication; its URL is in ``course/gradebook_url`` (0640).
  ``setup --db-file PATH`` (a file holding the URL; ``--db URL`` shows its password in ``ps``)
  points at another database instead.
* ``jupyter/student``, ``jupyter/staff``: what each role's JupyterLab reads (``$JUPYTER_CONFIG_PATH``):
  the nbgrader client configuration, and for students the formgrader switched off.
* ``hub/``: JupyterHub's own state (``jupyterhub_config.py``, its database, cookie secret), root only.

Log-in is PAM (the server's own passwords), open to the groups ``dgm-students`` and ``dgm-staff``;
``dgm-instructors`` are hub admins. Servers are started by ``LocalProcessSpawner`` as the person's
own Unix account, so the kernel has exactly that account's rights.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import grp
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from ..course.config import COURSE_ID, REPO, gradebook_url
from ..course.torch_env import torch_env
from .lab import STUDENT_CONFIG

VENV_BIN = Path(sys.executable).parent  # JupyterHub's own programs (run as root)
PROXY = REPO / ".hub" / "node_modules" / ".bin" / "configurable-http-proxy"
ROLES = ("student", "ta", "instructor")
USERNAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
SERVICE = "formgrader"
# JupyterLab without network chores (news feed, update check), for every server the hub starts.
LAB_ARGS = ["--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]


class HubError(RuntimeError):
    """A setup step failed: the message says which and why."""


@dataclass
class Site:
    """Where the class lives on this server and the names and ports it uses (``root/site.json``)."""
    root: Path = Path("/srv/dgm")
    prefix: str = "dgm"                  # Unix names: <prefix>-staff, <prefix>-grader, ...
    ip: str = "0.0.0.0"                  # the hub's public address (put TLS in front, or ssl_*)
    port: int = 8000
    hub_port: int = 8081                 # the hub's internal API (loopback)
    proxy_api_port: int = 8001           # configurable-http-proxy's API (loopback)
    formgrader_port: int = 8002          # the formgrader service (loopback)
    pg_port: int = 5433                  # the local PostgreSQL cluster (loopback)
    local_postgres: bool = True          # False: course/gradebook_url names another database
    data: str = str(REPO / "data")       # $DGM_DATA for the kernels
    ssl_key: str = ""
    ssl_cert: str = ""
    python: str = sys.executable         # what servers and kernels run (``runtime_python``)
    feedback: bool = False               # the grading service (python -m autograder serve) as a hub service
    # Caps of each person's server and all it starts (autograder.server.hubcaps; 0: no cap of that kind).
    server_memory_mb: int = 2048         # RAM, swap and tmpfs pages together
    server_cpus: float = 1.0             # a hard quota, in cores
    server_tasks: int = 512              # processes and threads
    reserve_mb: int = 4096               # kept from all servers together: the hub, PostgreSQL, grading
    # Idle culling (jupyterhub-idle-culler as a hub service; 0: off) and how often activity is reported.
    cull_idle_s: int = 3600
    cull_every_s: int = 300
    activity_s: int = 60

    # --- names and paths ----------------------------------------------------------------
    @property
    def staff(self) -> str:
        return f"{self.prefix}-staff"

    @property
    def students(self) -> str:
        return f"{self.prefix}-students"

    @property
    def instructors(self) -> str:
        return f"{self.prefix}-instructors"

    @property
    def grader(self) -> str:
        return f"{self.prefix}-grader"

    @property
    def db_user(self) -> str:
        return f"{self.prefix}-db"

    @property
    def course(self) -> Path:
        return self.root / "course"

    @property
    def exchange(self) -> Path:
        return self.root / "exchange"

    @property
    def state(self) -> Path:
        return self.root / "hub"

    @property
    def postgres(self) -> Path:
        return self.root / "postgres"

    @property
    def gradebook_url_file(self) -> Path:
        return self.course / "gradebook_url"

    @property
    def executor_socket(self) -> Path:
        """Where the root executor (``autograder.executor``) takes the staff's notebooks to grade."""
        return self.root / "run" / "executor.sock"

    def jupyter(self, role: str) -> Path:
        return self.root / "jupyter" / role

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.ip in ("", "0.0.0.0") else self.ip
        return f"{'https' if self.ssl_cert else 'http'}://{host}:{self.port}"

    # --- persistence --------------------------------------------------------------------
    def save(self) -> None:
        values = {k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()}
        (self.root / "site.json").write_text(json.dumps(values, indent=1) + "\n")

    @classmethod
    def load(cls, root: str | Path) -> Site:
        path = Path(root) / "site.json"
        if not path.is_file():
            raise HubError(f"{path} not found: run `python -m autograder.hub setup --root {root}` first")
        values = json.loads(path.read_text())
        values["root"] = Path(values["root"])
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    def gradebook_url(self) -> str:
        return self.gradebook_url_file.read_text().strip()


# --- small system helpers ---------------------------------------------------------------------

def sh(cmd: list[str], input: str | None = None, check: bool = True, cwd: Path | None = None
       ) -> subprocess.CompletedProcess:
    run = subprocess.run(cmd, input=input, capture_output=True, text=True, cwd=cwd or "/")
    if check and run.returncode != 0:
        raise HubError(f"`{' '.join(cmd)}` failed ({run.returncode}): {(run.stderr or run.stdout).strip()}")
    return run


def as_user(user: str, cmd: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd]


def user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def processes_of(uids: set[int]) -> list[int]:
    """The pids of the processes ``uids`` own (``/proc``)."""
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if d.stat().st_uid in uids:
                    found.append(int(d.name))
            except OSError:
                pass
    return found


def end_processes(users: list[str]) -> None:
    """SIGKILL whatever ``users`` (never root) still run: ``userdel`` refuses an account that runs something."""
    uids = {pwd.getpwnam(u).pw_uid for u in users if user_exists(u)} - {0}
    for pid in processes_of(uids) if uids else []:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def in_group(user: str, group: str) -> bool:
    try:
        return grp.getgrnam(group).gr_gid in os.getgrouplist(user, pwd.getpwnam(user).pw_gid)
    except KeyError:
        return False


def own(path: Path, user: str | None, group: str | None, mode: int) -> None:
    shutil.chown(path, user, group)
    os.chmod(path, mode)


def write(path: Path, text: str, user: str | None = None, group: str | None = None, mode: int = 0o644) -> None:
    path.write_text(text)
    own(path, user or "root", group or "root", mode)


def pg_tool(name: str) -> str:
    """A PostgreSQL program: on the PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"),
                                                   reverse=True)), None)
    if not found:
        raise HubError(f"{name} not found: install PostgreSQL (apt-get install postgresql)")
    return str(found)


def require_root() -> None:
    if os.geteuid() != 0:
        raise HubError("this needs root: it creates Unix accounts and sets owners and permissions")


# --- setup ----------------------------------------------------------------------------------

def setup(site: Site, sources: Path = REPO / "notebooks", db_url: str | None = None,
          lock: bool = True) -> Site:
    """Create (or bring up to date) everything the hub needs; safe to run again.

    ``sources``: the source notebooks copied into the course (assignments the course already has
    are kept, so an instructor's edits survive). ``lock``: close this repository to everyone but
    the staff (``lock_repo``). ``db_url``: the gradebook's database; default a PostgreSQL cluster
    of its own in ``root/postgres``.
    """
    require_root()
    for g in (site.staff, site.students, site.instructors):
        if not group_exists(g):
            sh(["groupadd", "--system", g])
    site.root.mkdir(parents=True, exist_ok=True)
    own(site.root, "root", "root", 0o755)
    if not user_exists(site.grader):
        sh(["useradd", "--system", "--gid", site.staff, "--home-dir", str(site.root / "grader"),
            "--shell", "/usr/sbin/nologin", "--comment", "nbgrader formgrader", site.grader])
    grader_home = site.root / "grader"
    grader_home.mkdir(exist_ok=True)
    own(grader_home, site.grader, site.staff, 0o700)

    # The course: sources, nbgrader's folders, the gradebook; staff only.
    site.course.mkdir(exist_ok=True)
    own(site.course, site.grader, site.staff, 0o2770)
    notebooks = site.course / "notebooks"
    if not notebooks.exists():
        notebooks.mkdir()
    for src in sorted(p for p in Path(sources).iterdir() if (p / f"{p.name}.ipynb").is_file()):
        if not (notebooks / src.name).exists():
            shutil.copytree(src, notebooks / src.name, ignore=shutil.ignore_patterns(
                ".ipynb_checkpoints", "__pycache__", "results", "*.pt"))
    for path in [notebooks, *notebooks.rglob("*")]:
        own(path, site.grader, site.staff, 0o2770 if path.is_dir() else 0o660)
    write(site.course / "nbgrader_config.py", COURSE_CONFIG.format(exchange=site.exchange),
          site.grader, site.staff, 0o660)

    # The exchange, with nbgrader's permissions (plus private submissions).
    site.exchange.mkdir(exist_ok=True)
    own(site.exchange, "root", "root", 0o1777)
    course_x = site.exchange / COURSE_ID
    for path, mode in ((course_x, 0o2775), (course_x / "outbound", 0o2775),
                       (course_x / "inbound", 0o3773), (course_x / "feedback", 0o2771)):
        path.mkdir(exist_ok=True)
        # feedback/ is root's: the grading service (root) releases feedback there, and nbgrader wants
        # it to own the folder; the formgrader (the staff's group, groupshared) writes there too.
        own(path, "root" if path.name == "feedback" else site.grader, site.staff, mode)

    # What each role's JupyterLab reads.
    (site.root / "jupyter").mkdir(exist_ok=True)
    own(site.root / "jupyter", "root", "root", 0o755)
    settings = site.root / "jupyter" / "lab-settings"  # JupyterLab's defaults: no news, no update checks
    settings.mkdir(exist_ok=True)
    own(settings, "root", "root", 0o755)
    write(settings / "overrides.json", json.dumps({"@jupyterlab/apputils-extension:notification": {
        "fetchNews": "false", "checkForUpdates": False}}, indent=1))
    for role in ("student", "staff"):
        folder = site.jupyter(role)
        (folder / "labconfig").mkdir(parents=True, exist_ok=True)
        for path in (folder, folder / "labconfig"):
            own(path, "root", "root", 0o755)
        write(folder / "nbgrader_config.py", STUDENT_CONFIG.read_text() + CLIENT_CONFIG)
        if role == "student":  # no formgrader, course list or assignment creation in students' labs
            write(folder / "jupyter_server_config.json", json.dumps({"ServerApp": {"jpserver_extensions": {
                "nbgrader.server_extensions.formgrader": False,
                "nbgrader.server_extensions.course_list": False}}}, indent=1))
            write(folder / "labconfig" / "page_config.json", json.dumps({"disabledExtensions": {
                "@jupyter/nbgrader:formgrader": True, "@jupyter/nbgrader:course-list": True,
                "@jupyter/nbgrader:create-assignment": True}}, indent=1))

    # The gradebook.
    if db_url:
        site.local_postgres = False
        write(site.gradebook_url_file, db_url + "\n", site.grader, site.staff, 0o640)
    elif site.local_postgres:
        init_postgres(site)

    site.python = str(runtime_python(site))
    if lock:
        lock_repo(site)

    from .hubcaps import install_server_files  # what every server and kernel loads (extension, kernel)
    install_server_files(site.root / "jupyter" / "servers", site.python)

    run = site.executor_socket.parent  # the executor's socket: the staff group may open it, nobody else
    run.mkdir(exist_ok=True)
    own(run, "root", site.staff, 0o750)
    site.state.mkdir(exist_ok=True)
    own(site.state, "root", "root", 0o700)
    write(site.state / "jupyterhub_config.py", HUB_CONFIG.format(root=str(site.root)), mode=0o600)
    site.save()
    return site


OPEN_TO_ALL = {".venv", "helpers", "data"}  # what students' servers and kernels run and read


def lock_repo(site: Site, repo: Path = REPO) -> None:
    """Close the instructor's repository, whose packages students' servers run, to everyone but
    the staff, except ``OPEN_TO_ALL``: the solutions and hidden tests (``notebooks/``), the
    grading code with its answer keys (``autograder/``), the tests, the history, any one-machine
    course files. Each top-level entry gets the staff group and loses its rights for others."""
    for path in sorted(Path(repo).iterdir()):
        if path.name in OPEN_TO_ALL or path.is_symlink():
            continue
        mode = path.stat().st_mode
        shutil.chown(path, group=site.staff)
        os.chmod(path, (mode & 0o7770) | (0o050 if path.is_dir() else 0o040))


def runtime_python(site: Site) -> Path:
    """The Python that everyone's servers and kernels run: this one, if other accounts can run it
    with the course's packages; else ``root/python``, a copy of this interpreter (its standard
    library, not its packages) that every account can run, over this environment's packages. A
    pyenv under /root, say, is out of other accounts' reach; the copy is the same version, so
    every package installed for this one works with it."""
    check = ["-c", "import autograder, helpers, jupyterhub.singleuser"]
    if sh(as_user(site.grader, [sys.executable, *check]), check=False).returncode == 0:
        return Path(sys.executable)
    base, copy = Path(sys.base_prefix), site.root / "python"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if not (copy / "bin" / version).is_file():
        shutil.rmtree(copy, ignore_errors=True)
        (copy / "bin").mkdir(parents=True)
        shutil.copy2(Path(sys._base_executable).resolve(), copy / "bin" / version)
        (copy / "bin" / "python").symlink_to(version)
        shutil.copytree(base / "lib" / version, copy / "lib" / version, symlinks=True, ignore=shutil.ignore_patterns(
            "site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip"))
        for lib in (base / "lib").glob("libpython*"):
            shutil.copy2(lib, copy / "lib" / lib.name, follow_symlinks=False)
        (copy / "lib" / version / "site-packages").mkdir()
        for name in ("share", "etc"):  # Jupyter's data and configuration: extensions, their settings
            (copy / name).symlink_to(Path(sys.prefix) / name)
    (copy / "lib" / version / "site-packages" / "dgm-course.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    for tool in ("jupyter", "nbgrader", "alembic"):  # for terminals in JupyterLab; nbgrader runs alembic
        write(copy / "bin" / tool, f'#!/bin/sh\nexec "{copy}/bin/python" -m {tool} "$@"\n', mode=0o755)
    sh(["chmod", "-R", "a+rX,go-w", str(copy)])
    sh(as_user(site.grader, ["env", f"LD_LIBRARY_PATH={copy / 'lib'}", str(copy / "bin" / "python"), *check]))
    return copy / "bin" / "python"


def runtime_env(site: Site) -> dict[str, str]:
    """The environment of everyone's servers and kernels: the runtime Python first on the PATH,
    and its shared library where a copy's is (``runtime_python``)."""
    bin_dir = Path(site.python).parent
    env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin"}
    if bin_dir == site.root / "python" / "bin":
        env["LD_LIBRARY_PATH"] = str(site.root / "python" / "lib")
    return env


COURSE_CONFIG = '''"""nbgrader configuration of the class on the hub, written by `python -m autograder.hub setup`:
the course's (autograder.course.config) with this folder as its root, the site's exchange and gradebook,
and files shared by the staff group (groupshared). Run nbgrader from this folder."""
from pathlib import Path

from autograder.course.config import apply

here = Path(__file__).resolve().parent
c = get_config()  # noqa: F821 (nbgrader's)
apply(c, here)
c.Exchange.root = "{exchange}"
c.CourseDirectory.groupshared = True
if (here / "gradebook_url").is_file():
    c.CourseDirectory.db_url = (here / "gradebook_url").read_text().strip()
'''

CLIENT_CONFIG = '''
# The hub (`python -m autograder.hub setup` added this): submissions open to their author and the staff only.
c.ExchangeFactory.submit = "helpers.exchange.PrivateSubmit"  # noqa: F821
'''

HUB_CONFIG = '''"""JupyterHub's configuration, written by `python -m autograder.hub setup`: see autograder/hub.py."""
from autograder.server.hub import Site, configure

configure(get_config(), Site.load("{root}"))  # noqa: F821 (JupyterHub's)
'''


# --- PostgreSQL ----------------------------------------------------------------------------

def init_postgres(site: Site) -> None:
    """A cluster of the site's own, run by ``<prefix>-db``: initdb once, then a login role and a
    database for the gradebook, whose URL (with a random password) goes to ``gradebook_url``."""
    if not user_exists(site.db_user):
        sh(["useradd", "--system", "--user-group", "--home-dir", str(site.postgres), "--no-create-home",
            "--shell", "/usr/sbin/nologin", "--comment", "the gradebook's PostgreSQL", site.db_user])
    site.postgres.mkdir(exist_ok=True)
    own(site.postgres, site.db_user, site.db_user, 0o700)
    data = site.postgres / "data"
    if not (data / "PG_VERSION").is_file():
        sh(as_user(site.db_user, [pg_tool("initdb"), "-D", str(data), "-U", site.db_user, "-E", "UTF8",
                                  "--no-locale", "--auth-local=peer", "--auth-host=scram-sha-256"]))
    if site.gradebook_url_file.is_file():
        return
    password = secrets.token_urlsafe(24)
    start_postgres(site)
    try:
        sh(as_user(site.db_user, [pg_tool("psql"), "-h", str(site.postgres), "-p", str(site.pg_port),
                                  "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-f", "-"]),
           input=f"CREATE ROLE {COURSE_ID} LOGIN PASSWORD '{password}';\n"
                 f"CREATE DATABASE {COURSE_ID} OWNER {COURSE_ID};\n")
    finally:
        stop_postgres(site)
    write(site.gradebook_url_file, f"postgresql://{COURSE_ID}:{password}@127.0.0.1:{site.pg_port}/{COURSE_ID}\n",
          site.grader, site.staff, 0o640)


def start_postgres(site: Site) -> None:
    options = f"-c listen_addresses=127.0.0.1 -c port={site.pg_port} -c unix_socket_directories={site.postgres}"
    sh(as_user(site.db_user, [pg_tool("pg_ctl"), "start", "-w", "-t", "60", "-D", str(site.postgres / "data"),
                              "-l", str(site.postgres / "postgres.log"), "-o", options]))


def stop_postgres(site: Site) -> None:
    sh(as_user(site.db_user, [pg_tool("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(site.postgres / "data")]),
       check=False)


# --- accounts --------------------------------------------------------------------------------

def read_roster(path: Path) -> list[dict[str, str]]:
    """Rows of a roster CSV (``id,first_name,last_name,email,role``; role student, ta or instructor,
    default student), checked: ids must be valid Unix user names."""
    with open(path, newline="") as f:
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(f)]
    if not rows or "id" not in rows[0]:
        raise HubError(f"{path}: a roster needs a header row with an 'id' column")
    for row in rows:
        row["role"] = (row.get("role") or "student").lower()
        if not USERNAME.match(row["id"]):
            raise HubError(f"{path}: {row['id']!r} is not a valid Unix user name (lower case, digits, - and _)")
        if row["role"] not in ROLES:
            raise HubError(f"{path}: {row['id']}: role {row['role']!r} is none of {', '.join(ROLES)}")
    return rows


def accounts(site: Site, roster: Path, passwords: Path | None = None) -> dict[str, str]:
    """One Unix account per person of ``roster``, in the groups of their role; returns the initial
    passwords of the accounts it created (also appended to ``passwords``, mode 0600). Existing
    accounts keep their password and home; their role groups are brought in line with the roster.
    Students are added to the gradebook too (now if it is reachable, else when the hub starts)."""
    require_root()
    rows = read_roster(roster)
    created = {}
    for row in rows:
        name, role = row["id"], row["role"]
        if not user_exists(name):
            comment = " ".join(filter(None, [row.get("first_name"), row.get("last_name")]))
            sh(["useradd", "--create-home", "--user-group", "--shell", "/bin/bash", "--comment", comment, name])
            created[name] = secrets.token_urlsafe(12)
            sh(["chpasswd"], input=f"{name}:{created[name]}\n")
        os.chmod(pwd.getpwnam(name).pw_dir, 0o700)
        wanted = {"student": {site.students}, "ta": {site.staff},
                  "instructor": {site.staff, site.instructors}}[role]
        for g in (site.students, site.staff, site.instructors):
            if g in wanted and not in_group(name, g):
                sh(["gpasswd", "--add", name, g])
            elif g not in wanted and in_group(name, g):
                sh(["gpasswd", "--delete", name, g])
    if passwords is not None and created:
        new = not passwords.exists()
        with open(os.open(passwords, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["id", "password"])
            w.writerows(created.items())
    students = [r for r in rows if r["role"] == "student"]
    if students:
        _merge_roster(site, students)
        try:
            import_roster(site)
        except Exception as e:  # the gradebook's server is not running: `up` imports it
            print(f"note: students not yet in the gradebook ({type(e).__name__}); "
                  "they are added when the hub starts", file=sys.stderr)
    return created


def _merge_roster(site: Site, students: list[dict[str, str]]) -> None:
    path = site.course / "roster.csv"
    fields = ["id", "first_name", "last_name", "email"]
    known = {}
    if path.is_file():
        with open(path, newline="") as f:
            known = {r["id"]: r for r in csv.DictReader(f)}
    known.update({r["id"]: {k: r.get(k, "") for k in fields} for r in students})
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(known.values())
    own(path, site.grader, site.staff, 0o660)


def import_roster(site: Site) -> int:
    """Add the students of ``course/roster.csv`` to the gradebook."""
    from ..course import gradebook
    from ..course.course import Course

    path = site.course / "roster.csv"
    if not path.is_file():
        return 0
    url = site.gradebook_url() if site.gradebook_url_file.is_file() else None
    return gradebook.import_roster(Course(site.course, db_url=url).db_url, path)


def remove_accounts(site: Site, roster: Path) -> list[str]:
    """Delete the accounts of ``roster`` and their homes, ending what they still run (end of term, tests)."""
    require_root()
    removed = []
    rows = read_roster(roster)
    end_processes([row["id"] for row in rows])
    for row in rows:
        if user_exists(row["id"]):
            sh(["userdel", "--remove", row["id"]], check=False)
            removed.append(row["id"])
    return removed


def uninstall(site: Site) -> None:
    """Remove the site's service accounts and groups (its folders are left to the caller)."""
    require_root()
    end_processes([site.grader, site.db_user])
    for user in (site.grader, site.db_user):
        if user_exists(user):
            sh(["userdel", user], check=False)
    for g in (site.staff, site.students, site.instructors, site.db_user):
        if group_exists(g):
            sh(["groupdel", g], check=False)


# --- JupyterHub --------------------------------------------------------------------------------

def configure(c, site: Site) -> None:
    """JupyterHub's settings for ``site`` (``hub/jupyterhub_config.py`` calls this)."""
    state = site.state
    c.JupyterHub.ip, c.JupyterHub.port = site.ip, site.port
    c.JupyterHub.hub_ip, c.JupyterHub.hub_port = "127.0.0.1", site.hub_port
    if site.ssl_cert:
        c.JupyterHub.ssl_cert, c.JupyterHub.ssl_key = site.ssl_cert, site.ssl_key
    if not os.access(PROXY, os.X_OK):
        raise HubError(f"{PROXY} not found: run `make hub-deps` (npm install configurable-http-proxy)")
    c.ConfigurableHTTPProxy.command = [str(PROXY)]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{site.proxy_api_port}"
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")

    # Log-in: the server's own passwords (PAM), for the class's groups; instructors administer.
    c.JupyterHub.authenticator_class = "pam"
    c.PAMAuthenticator.allowed_groups = {site.staff, site.students}
    c.PAMAuthenticator.admin_groups = {site.instructors}
    c.Authenticator.manage_groups = True  # hub groups follow the Unix groups at each log-in

    def unix_groups(authenticator, handler, authentication):
        authentication["groups"] = [g for g in (site.staff, site.students) if in_group(authentication["name"], g)]
        return authentication
    c.Authenticator.post_auth_hook = unix_groups

    # Everyone's JupyterLab runs as their own Unix account, in a control group with caps (hubcaps).
    c.JupyterHub.spawner_class = "autograder.server.hubcaps.CappedSpawner"
    c.CappedSpawner.cgroup_prefix = site.prefix
    c.CappedSpawner.memory_mb, c.CappedSpawner.cpus = site.server_memory_mb, site.server_cpus
    c.CappedSpawner.tasks, c.CappedSpawner.reserve_mb = site.server_tasks, site.reserve_mb
    c.CappedSpawner.server_files = str(site.root / "jupyter" / "servers")
    c.CappedSpawner.activity_interval = c.JupyterHub.last_activity_interval = site.activity_s
    c.Spawner.cmd = [site.python, "-m", "jupyterhub.singleuser"]
    lab_args = [*LAB_ARGS, f"--LabApp.app_settings_dir={site.root / 'jupyter' / 'lab-settings'}"]
    c.Spawner.args = lab_args
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = c.Spawner.http_timeout = 180
    env = {"DGM_EXCHANGE": str(site.exchange), "DGM_DATA": site.data, **torch_env(), **runtime_env(site)}
    c.Spawner.environment = env

    def by_role(spawner):
        staff = in_group(spawner.user.name, site.staff)
        spawner.environment = {**env, "JUPYTER_CONFIG_PATH": str(site.jupyter("staff" if staff else "student"))}
        if staff:  # the course folder is shared by the group; the CLI finds the gradebook and the executor
            spawner.popen_kwargs = {**spawner.popen_kwargs, "umask": 0o007}
            spawner.environment["DGM_EXECUTOR"] = str(site.executor_socket)
            if site.gradebook_url_file.is_file():
                spawner.environment["DGM_DB_URL"] = site.gradebook_url()
    c.Spawner.pre_spawn_hook = by_role

    # The formgrader: one server on the course folder, as the grader account, for the staff.
    c.JupyterHub.services = [{
        "name": SERVICE, "url": f"http://127.0.0.1:{site.formgrader_port}", "user": site.grader,
        "cwd": str(site.course), "oauth_no_confirm": True, "display": True,
        "command": [site.python, "-m", "jupyterhub.singleuser", f"--ServerApp.root_dir={site.course}", *lab_args],
        "environment": {**env, "JUPYTERHUB_DEFAULT_URL": "/formgrader", "DGM_EXECUTOR": str(site.executor_socket),
                        "JUPYTER_CONFIG_PATH": str(site.jupyter("staff"))},
    }, {  # the one way into the grading sandbox for the staff's autograding (formgrader, nbgrader, grade)
        "name": "executor", "cwd": "/",
        "command": [site.python, "-I", "-m", "autograder.executor", "--socket", str(site.executor_socket),
                    "--group", site.staff, "--workers", "2"],
        "environment": {k: v for k, v in env.items() if k != "DGM_EXCHANGE"},
    }]
    if site.feedback:  # feedback minutes after submitting (README: "Feedback on submit")
        from ..service.service import hub_service
        c.JupyterHub.services.append(hub_service(site.course, site.exchange, python=site.python, environment=env))
    c.JupyterHub.load_roles = [{
        "name": f"{SERVICE}-users", "description": "open the course's formgrader",
        "scopes": [f"access:services!service={SERVICE}", f"read:services!service={SERVICE}", "list:services"],
        "groups": [site.staff],
    }]
    if site.cull_idle_s:  # stop servers idle that long (a busy kernel is activity: hubcaps)
        from .hubcaps import culler_service
        culler, role = culler_service(site.python, site.cull_idle_s, site.cull_every_s, runtime_env(site))
        c.JupyterHub.services.append(culler)
        c.JupyterHub.load_roles.append(role)


def up(site: Site) -> int:
    """Start the gradebook's PostgreSQL (if the site has its own), then JupyterHub in the
    foreground; on SIGTERM or Ctrl-C stop the hub (which stops the servers and the proxy), then
    PostgreSQL. Returns the hub's exit code."""
    require_root()
    if site.local_postgres:
        start_postgres(site)
    try:
        try:
            import_roster(site)
        except Exception as e:
            print(f"warning: students not added to the gradebook: {e}", file=sys.stderr)
        hub = None

        def stop(signum, frame):
            if hub is not None and hub.poll() is None:
                hub.send_signal(signal.SIGTERM)
        # Handlers before the hub starts: an ignored SIGINT (a job started in the background) would be
        # inherited by the hub's servers and services, which then wait 30 s for SIGTERM when stopped.
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, stop)
        hub = subprocess.Popen([str(VENV_BIN / "jupyterhub"), "-f", str(site.state / "jupyterhub_config.py")],
                               cwd=site.state, start_new_session=True)
        print(f"JupyterHub for the class: {site.url}/hub/login (Ctrl-C to stop)", flush=True)
        try:
            return hub.wait()
        finally:
            if hub.poll() is None:
                hub.kill()
            _stop_proxy(site)
    finally:
        from .hubcaps import remove_groups
        remove_groups(site.prefix)  # the servers' control groups (the hub stopped the servers)
        if site.local_postgres:
            stop_postgres(site)


def _stop_proxy(site: Site) -> None:
    """The proxy the hub started, if the hub left it running (it does when its start fails)."""
    try:
        pid = int((site.state / "proxy.pid").read_text())
        if "configurable-http-proxy" in Path(f"/proc/{pid}/cmdline").read_text():
            os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


# --- command line ----------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder.hub", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    root = argparse.ArgumentParser(add_help=False)
    root.add_argument("--root", type=Path, default=Site.root, help="the site's folder (default: %(default)s)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("setup", parents=[root], help="groups, service accounts, folders, PostgreSQL, the hub's configuration")
    for name in ("prefix", "ip"):
        s.add_argument(f"--{name}")
    for name in ("port", "hub-port", "proxy-api-port", "formgrader-port", "pg-port"):
        s.add_argument(f"--{name}", type=int)
    s.add_argument("--data", help="the data folder kernels read ($DGM_DATA; default: the repository's)")
    s.add_argument("--ssl-key")
    s.add_argument("--ssl-cert")
    db = s.add_mutually_exclusive_group()
    db.add_argument("--db-file", type=Path, metavar="PATH", help="a file whose first line is the gradebook's "
                    "database URL (default: a PostgreSQL cluster of the site's own)")
    db.add_argument("--db", metavar="URL", help="the same as a URL: its password is seen by every user in ps")
    s.add_argument("--sources", type=Path, default=REPO / "notebooks", help="source notebooks to copy in")
    s.add_argument("--feedback", action=argparse.BooleanOptionalAction, default=None,
                   help="run the grading service (feedback on submit) with the hub")
    s.add_argument("--server-memory-mb", type=int, help="memory cap of each server, swap and tmpfs included "
                                                          "(default 2048; 0: none)")
    s.add_argument("--server-cpus", type=float, help="CPU quota of each server in cores (default 1; 0: none)")
    s.add_argument("--server-tasks", type=int, help="processes and threads of each server (default 512; 0: none)")
    s.add_argument("--reserve-mb", type=int, help="memory kept from all servers together (default 4096)")
    s.add_argument("--cull-idle", type=int, dest="cull_idle_s", metavar="S",
                   help="stop servers idle S seconds (default 3600; 0: never)")
    s.add_argument("--cull-every", type=int, dest="cull_every_s", metavar="S", help="check every S s (default 300)")
    s.add_argument("--activity-interval", type=int, dest="activity_s", metavar="S",
                   help="servers report activity every S s (default 60)")
    s.add_argument("--no-lock", action="store_true",
                   help="leave this repository readable by everyone (it holds the solutions)")
    a = sub.add_parser("accounts", parents=[root], help="Unix accounts from a roster CSV: id,first_name,last_name,email,role")
    a.add_argument("roster", type=Path)
    a.add_argument("--passwords", type=Path, help="append the new accounts' initial passwords here (0600)")
    a.add_argument("--remove", action="store_true", help="delete the roster's accounts and homes instead")
    sub.add_parser("up", parents=[root], help="run PostgreSQL and JupyterHub until stopped")
    sub.add_parser("uninstall", parents=[root], help="remove the site's service accounts and groups (not its folders)")
    args = p.parse_args(argv)
    try:
        if args.command == "setup":
            try:
                site = Site.load(args.root)
            except HubError:
                site = Site(root=args.root)
            for key in ("prefix", "ip", "port", "hub_port", "proxy_api_port", "formgrader_port", "pg_port",
                        "data", "ssl_key", "ssl_cert", "feedback", "server_memory_mb", "server_cpus",
                        "server_tasks", "reserve_mb", "cull_idle_s", "cull_every_s", "activity_s"):
                if getattr(args, key) is not None:
                    setattr(site, key, getattr(args, key))
            try:
                url = gradebook_url(args.db, args.db_file, warn=lambda m: print(f"warning: {m}", file=sys.stderr))
            except ValueError as e:
                raise HubError(str(e)) from None
            setup(site, args.sources, url, lock=not args.no_lock)
            print(f"site ready in {site.root}; add people with `python -m autograder.hub accounts ROSTER.csv "
                  f"--root {site.root}`, start with `python -m autograder.hub up --root {site.root}`")
            return 0
        site = Site.load(args.root)
        if args.command == "accounts":
            if args.remove:
                print(f"removed: {' '.join(remove_accounts(site, args.roster)) or 'nobody'}")
                return 0
            created = accounts(site, args.roster, args.passwords)
            print(f"{len(read_roster(args.roster))} accounts in the roster, {len(created)} created"
                  + (f"; initial passwords in {args.passwords}" if created and args.passwords else ""))
            if created and not args.passwords:
                for name, password in created.items():
                    print(f"{name},{password}")
            return 0
        if args.command == "up":
            return up(site)
        if args.command == "uninstall":
            uninstall(site)
            return 0
    except HubError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
