"""The student's JupyterLab: a workspace built from the release, and the server that opens it.

``make workspace`` and ``make lab`` run ``python -m autograder.lab``; tests/test_browser.py
starts its servers with ``running`` below, so both use the same command.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..course.config import EXCHANGE_ENV, REPO
from ..course.torch_env import torch_env

STUDENT_CONFIG = Path(__file__).with_name("student_nbgrader_config.py")


def workspace(release_dir: str | Path, dest: str | Path) -> list[Path]:
    """Copy the release into the student's workspace ``dest``; return the files added.

    A file that exists in ``dest`` is never overwritten (a student's edits survive a rebuild);
    files new in the release (a new notebook) are added. ``dest/nbgrader_config.py`` is the
    students' nbgrader configuration (``student_nbgrader_config.py``), refreshed every time:
    JupyterLab's Validate button and Assignments tab, and ``nbgrader`` commands run in
    ``dest``, read it from there.
    """
    release_dir, dest = Path(release_dir), Path(dest)
    if not release_dir.is_dir():
        raise FileNotFoundError(f"{release_dir} does not exist: build the release first (make release)")
    added = []
    for src in sorted(release_dir.rglob("*")):
        target = dest / src.relative_to(release_dir)
        if src.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
            added.append(target)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(STUDENT_CONFIG, dest / "nbgrader_config.py")
    return added


def lab_command(root: str | Path, port: int | None = None, token: str | None = None,
                open_browser: bool = True, args: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The ``jupyter lab`` command serving ``root`` (run it with ``root`` as working directory).

    ``port``: listen on 127.0.0.1 at exactly that port; ``token``: the login token (default:
    Jupyter picks one and prints the URL). JupyterLab's news feed and update check are off
    (no network at run time); ``--allow-root`` is added when running as root.
    """
    cmd = [sys.executable, "-m", "jupyter", "lab", f"--ServerApp.root_dir={Path(root).resolve()}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if port is not None:
        cmd += ["--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if token is not None:
        cmd.append(f"--IdentityProvider.token={token}")
    if not open_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd + list(args)


def lab_env(extra: dict[str, str | None] | None = None) -> dict[str, str]:
    """The server's environment: ours, with ``torch_env()`` for its kernels, the course's
    exchange (``$DGM_EXCHANGE``, default ``<repo>/exchange``, as the instructor's config) for
    the Assignments tab, then ``extra`` (a value None removes that variable)."""
    env = dict(os.environ, **torch_env())
    env.setdefault(EXCHANGE_ENV, str(REPO / "exchange"))
    # One person's own lab: what it autogrades (the formgrader of `make lab`) is that person's own
    # work, run with their rights when no grading sandbox can be made here (autograder.grading.sandbox).
    env.setdefault("DGM_NO_SANDBOX", "1")
    for key, value in (extra or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Lab:
    """A running JupyterLab: ``url("lab/tree/x.ipynb")`` is a link with the token."""
    base: str
    token: str
    process: subprocess.Popen
    log: Path

    def url(self, path: str = "lab") -> str:
        return f"{self.base}/{path.lstrip('/')}{'&' if '?' in path else '?'}token={self.token}"


@contextmanager
def running(root: str | Path, state: str | Path, env: dict[str, str | None] | None = None,
            timeout: float = 120) -> Iterator[Lab]:
    """Start JupyterLab on ``root`` (loopback, a free port, a random token, no browser) in its
    own process group, wait until ``/api/status`` answers, and stop the group on exit.

    ``state``: a folder for the server's log (``jupyterlab.log``, quoted if the server fails to
    start), its own JupyterLab settings and layouts (the news notification turned off) and its
    Jupyter data folder (nbgrader's submission cache), so the user's are neither read nor
    written. ``env``: extra environment for the server and its kernels (see ``lab_env``).
    """
    root, state = Path(root).resolve(), Path(state).resolve()
    news = state / "user-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    log = state / "jupyterlab.log"
    port, token = free_port(), secrets.token_hex(16)
    cmd = lab_command(root, port, token, open_browser=False, args=[
        f"--LabApp.user_settings_dir={state / 'user-settings'}",
        f"--LabApp.workspaces_dir={state / 'workspaces'}"])
    env = lab_env({"JUPYTER_DATA_DIR": str(state / "data"), **(env or {})})
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, proc, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(lab.url("api/status"), timeout=5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"JupyterLab did not start (exit code {proc.poll()}):\n{tail}")
                time.sleep(0.25)
        yield lab
    finally:
        stop(proc)


def stop(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM the process group of ``proc`` (the server shuts its kernels down), then SIGKILL."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m autograder.lab",
        description="Update the student workspace from the release (never overwriting a file), "
                    "then open JupyterLab on it. Other arguments go to `jupyter lab`.",
        allow_abbrev=False)
    p.add_argument("--release", type=Path, default=REPO / "release")
    p.add_argument("--workspace", type=Path, default=REPO / "workspace")
    p.add_argument("--no-start", action="store_true", help="only build the workspace")
    args, jupyter_args = p.parse_known_args(argv)
    try:
        added = workspace(args.release, args.workspace)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.workspace}: {len(added)} new file(s) from {args.release}; existing files kept")
    if args.no_start:
        return 0
    env = lab_env()
    if EXCHANGE_ENV not in os.environ:  # one machine: the course's own exchange, empty until a release
        Path(env[EXCHANGE_ENV]).mkdir(exist_ok=True)
    cmd = lab_command(args.workspace, args=jupyter_args)
    os.chdir(args.workspace)  # nbgrader's extensions read nbgrader_config.py from here
    os.execve(cmd[0], cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
