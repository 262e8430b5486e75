"""What a hostile student hands in (tests of ``autograder.inbound.intake`` through ``grade``, ``serve`` and
``collect``): throw-away Unix accounts as owners, and folders with links, FIFOs, sparse giants and
too many files beside honest ones."""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

FAKE_URL = "postgresql://dgm:NOT-A-REAL-PASSWORD-4711@127.0.0.1:5433/dgm"  # what a link must not leak


def need_root() -> None:
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("needs root and useradd: owners are throw-away Unix accounts")


@contextmanager
def accounts(*roles: str):
    """``{role: (user name, uid)}`` of new Unix accounts (no home, no shell), deleted afterwards."""
    need_root()
    made = {}
    try:
        for role in roles:
            name = f"dgi{os.getpid() % 100000}{role}"
            subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name],
                           check=True, capture_output=True)
            made[role] = (name, pwd.getpwnam(name).pw_uid)
        yield made
    finally:
        for name, _ in made.values():
            subprocess.run(["userdel", name], capture_output=True)


def chown_tree(path: Path, uid: int) -> None:
    """Give ``path`` and all it holds to ``uid`` (links themselves, not what they point to)."""
    for p in [path, *path.rglob("*")] if path.is_dir() and not path.is_symlink() else [path]:
        os.chown(p, uid, uid, follow_symlinks=False)


def hand_in(inbound: Path, claimed: str, assignment: str, stamp: str, notebook: bytes | None, uid: int | None,
            extras=None, secret: bool = True) -> Path:
    """An inbound folder as nbgrader's submit writes it (``<claimed>+<assignment>+<stamp>+<random>``,
    the notebook, ``timestamp.txt``, then the secret), owned by ``uid``; ``extras(folder)`` adds the
    student's tricks before the folder is given to its owner."""
    folder = inbound / f"{claimed}+{assignment}+{stamp}+{secrets.token_urlsafe(6)}"
    folder.mkdir()
    if notebook is not None:
        (folder / f"{assignment}.ipynb").write_bytes(notebook)
    (folder / "timestamp.txt").write_text(stamp)
    if extras:
        extras(folder)
    if secret:
        (folder / "submission_secret.txt").write_text(secrets.token_hex(64))
    if uid is not None:
        chown_tree(folder, uid)
    return folder


def hostile_extras(outside: Path):
    """Links to a file outside (a fake gradebook URL) and to /dev/zero, a FIFO, a 100 GB sparse file,
    a hard link and 400 small files, beside the notebook."""
    outside.write_text(FAKE_URL + "\n")

    def add(folder: Path) -> None:
        (folder / "notes").mkdir()
        (folder / "notes" / "gradebook_url").symlink_to(outside)
        (folder / "zero.bin").symlink_to("/dev/zero")
        os.mkfifo(folder / "pipe")
        with open(folder / "sparse.bin", "wb") as f:
            f.truncate(100 << 30)
        os.link(outside, folder / "hard.txt")
        many = folder / "zz_many"  # last: the walk stops at the cap
        many.mkdir()
        for i in range(400):
            (many / f"f{i:03d}.txt").write_text("x")
    return add


# What each hostile extra leaves in the reasons.
REASONS = ("notes/gradebook_url: a symbolic link, not copied", "zero.bin: a symbolic link, not copied",
           "pipe: a FIFO (named pipe), not copied", "sparse.bin: 100 GB, over the 8 MB a file may have, not copied",
           "hard.txt: a hard link (2 names for one file), not copied", "more than 300 files and folders")
