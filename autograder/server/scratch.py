"""A throwaway class hub on loopback, as root (``tests/test_hub.py``, ``bench/class_load.py``):
``setup`` on free ports with its own PostgreSQL, Unix accounts from a roster, ``up``, then
``remove`` undoes all of it (accounts, processes, control groups, folders, and the modes that
``setup`` gave this repository's top-level entries).
"""
from __future__ import annotations

import csv
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from ..course.config import REPO
from . import hub as hubmod
from . import hubcaps
from .hubclient import Person
from .lab import free_port


def cli(*args: str, timeout: float = 900) -> str:
    """``python -m autograder.hub ARGS``; its output, or ``RuntimeError`` with it."""
    run = subprocess.run([sys.executable, "-m", "autograder.hub", *args], capture_output=True, text=True,
                         timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"autograder.hub {' '.join(args)}:\n{run.stdout}\n{run.stderr}")
    return run.stdout


class ScratchHub:
    """A hub whose people are ``roles`` (who -> ``instructor``, ``ta``, ``student`` or "" for the
    default), each the Unix account ``<prefix>-<who>``; ``setup_args``: more options of ``setup``
    (caps, ``--feedback`` ...). ``start()`` brings it up; ``remove()`` returns what it could not remove."""

    def __init__(self, tag: str, roles: dict[str, str], setup_args: list[str] = ()):
        self.prefix = tag + secrets.token_hex(3)
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-", dir="/tmp"))
        self.root.chmod(0o755)  # the site's folder: every account must reach its exchange and Python
        self.roles, self.setup_args = roles, list(setup_args)
        self.names = {who: self.name(who) for who in roles}
        self.roster = self.root / "roster.csv"
        self.passwords: dict[str, str] = {}
        self.people: dict[str, Person] = {}
        self.proc: subprocess.Popen | None = None
        self.repo_modes = {p: p.stat() for p in REPO.iterdir() if not p.is_symlink()}
        self.setup_s = self.up_s = 0.0

    def name(self, who: str) -> str:
        return f"{self.prefix}-{who}"

    def start(self, timeout: float = 180) -> "ScratchHub":
        ports = set()
        while len(ports) < 5:
            ports.add(free_port())
        self.port, hub_port, api_port, fg_port, pg_port = sorted(ports)
        started = time.perf_counter()
        cli("setup", "--root", str(self.root), "--prefix", self.prefix, "--ip", "127.0.0.1", "--port", str(self.port),
            "--hub-port", str(hub_port), "--proxy-api-port", str(api_port), "--formgrader-port", str(fg_port),
            "--pg-port", str(pg_port), *self.setup_args)
        self.setup_s = time.perf_counter() - started
        with open(self.roster, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "first_name", "last_name", "email", "role"])
            for who, name in self.names.items():
                w.writerow([name, who.title(), "Test", f"{who}@example.org", self.roles[who]])
        cli("accounts", str(self.roster), "--root", str(self.root), "--passwords", str(self.root / "passwords.csv"))
        with open(self.root / "passwords.csv", newline="") as f:
            self.passwords = {r["id"]: r["password"] for r in csv.DictReader(f)}
        started = time.perf_counter()
        log = self.root / "up.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "autograder.hub", "up", "--root", str(self.root)],
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                if requests.get(f"{self.base}/hub/login", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the hub did not come up (exit code {self.proc.poll()}):\n"
                                   + log.read_text(errors="replace")[-4000:])
            time.sleep(0.25)
        self.up_s = time.perf_counter() - started
        self.site = hubmod.Site.load(self.root)
        return self

    def login(self, who: str) -> Person:
        """``who`` logged in through the login form (once; later calls give the same person)."""
        if who not in self.people:
            self.people[who] = Person(self.names[who], self.base).log_in(self.passwords[self.names[who]])
        return self.people[who]

    def servers(self, admin: str = "instructor") -> dict[str, dict]:
        """Account -> its default server's model (empty: none), as the hub's API tells an admin."""
        users = self.login(admin).ok("get", "/hub/api/users")
        return {u["name"]: (u.get("servers") or {}).get("", {}) for u in users}

    def hub_pid(self) -> int | None:
        """The pid of the ``jupyterhub`` process of this site."""
        for pid in hubmod.processes_of({0}):
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(c.endswith(b"/jupyterhub") for c in cmd[:2]) and str(self.root).encode() in b" ".join(cmd):
                return pid
        return None

    def remove(self) -> list[str]:
        """Stop the hub and remove everything the site made; what is left behind (accounts, groups)."""
        for path, st in self.repo_modes.items():  # setup closes the repository: open it as it was
            if path.exists():
                os.chown(path, st.st_uid, st.st_gid)
                os.chmod(path, st.st_mode & 0o7777)
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGTERM)  # `up` stops the hub (servers, proxy), then PostgreSQL
            try:
                self.proc.wait(timeout=180)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        site = hubmod.Site(root=self.root, prefix=self.prefix)  # whatever setup got to make
        accounts = [*self.names.values(), site.grader, site.db_user]
        left = []
        if self.roster.exists():
            try:  # as the guide says to, at the end of term (it ends what they still run)
                cli("accounts", str(self.roster), "--root", str(self.root), "--remove", timeout=120)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                left.append(f"`accounts --remove` failed: {e}")
                hubmod.remove_accounts(site, self.roster)
        hubmod.uninstall(site)
        hubcaps.remove_groups(self.prefix)  # `up` removes them; this is for an `up` that was killed
        shutil.rmtree(self.root, ignore_errors=True)
        for name in accounts:  # torch's compile cache, per account
            shutil.rmtree(f"/tmp/torchinductor_{name}", ignore_errors=True)
        return left + ([f"account {n}" for n in accounts if hubmod.user_exists(n)]
                + [f"control group {f}" for f in hubcaps.Cgroup(self.prefix).folders().values() if f.exists()])
