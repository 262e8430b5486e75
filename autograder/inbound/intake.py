"""Taking in what a student hands in, trusting nothing about it: files, who, when.

Everything the course reads out of a student's folder (the exchange's inbound, ``submitted/``, a
folder of downloads to ``grade``) goes through ``read`` or ``copy``. They walk the folder through
directory file descriptors, never through a path twice: each entry is looked at with ``lstat``
relative to its folder's descriptor, a folder is entered with ``O_DIRECTORY | O_NOFOLLOW`` (one
swapped for a link while we walk is not followed), a file is opened with ``O_NOFOLLOW |
O_NONBLOCK`` and ``fstat`` must show the same regular file before a byte is read. Sizes are
checked before reading (per file, in all), and so are the number of entries, the depth and the
time spent. What is not taken is listed with a reason per path (``Refusal``) for the student's
feedback and the staff; the rest is taken and the original stays where it was.

Who handed a folder in is its owner (``st_uid`` by ``lstat``), never the name it carries
(``identify``), and when is the latest ``st_ctime`` of the folder and its entries (``Intake.changed``):
the kernel sets it on every change and ``utime`` cannot move it back, so a backdated name buys
nothing.
"""
from __future__ import annotations

import csv
import errno
import fnmatch
import os
import pwd
import re
import stat
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

MB = 1 << 20
NOTEBOOK_MB = 20           # a notebook above this is refused (autograder.grading.workers.MAX_NOTEBOOK_MB)
REFUSED_FILE = "intake-refused.txt"  # what a safe collect did not copy, one reason a line (autograder.inbound.collect)
# A student id as the course takes it (roster ids, Unix user names); never ".", "..", a glob or a path.
STUDENT_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]{0,63}")
ASSIGNMENT_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
STAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d")  # how nbgrader's timestamps begin
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


@dataclass(frozen=True)
class Limits:
    """What one submission may hold; beyond it, entries are refused (with the reason)."""
    notebook_bytes: int = NOTEBOOK_MB * MB   # each .ipynb
    file_bytes: int = 8 * MB                 # each other file
    total_bytes: int = 60 * MB               # all files together
    entries: int = 300                       # files and folders looked at
    depth: int = 8                           # folders inside folders
    seconds: float = 30.0                    # the whole walk

    def cap(self, name: str) -> int:
        return self.notebook_bytes if name.endswith(".ipynb") else self.file_bytes


STUDENT = Limits()
# The staff's own folders (source notebooks, a grader's output): no links or special files either,
# but room for what a notebook run writes (checkpoints).
STAFF = Limits(notebook_bytes=256 * MB, file_bytes=256 * MB, total_bytes=1024 * MB, entries=20000, depth=32,
               seconds=300.0)


class IntakeError(OSError):
    """The folder itself cannot be taken (missing, a link, not a folder): the reason is the message."""


@dataclass(frozen=True)
class Refusal:
    path: str    # relative to the submission's folder
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}, not copied"


@dataclass
class Intake:
    """What was taken from a folder: its files, what was refused, when it last changed, whose it is."""
    files: dict[str, bytes] = field(default_factory=dict)   # relative path -> content (empty unless read)
    names: list[str] = field(default_factory=list)          # relative paths of the regular files taken
    refused: list[Refusal] = field(default_factory=list)
    changed: float = 0.0      # the latest st_ctime of the folder and of every entry looked at (epoch s)
    owner: int = -1           # st_uid of the folder

    def reasons(self) -> list[str]:
        return [str(r) for r in self.refused]


# --- what a thing is ---------------------------------------------------------------------------------

def describe(mode: int) -> str:
    """``a symbolic link``, ``a FIFO`` ... for a refusal."""
    for test, what in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return what
    return "not a regular file"


def _mb(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.0f} GB"
    return f"{n / MB:.0f} MB" if n >= MB else f"{n} bytes"


def open_folder(path: Path | str, dir_fd: int | None = None) -> int:
    """A descriptor of the folder ``path`` (its last component not followed if a link)."""
    try:
        return os.open(path, _DIR, dir_fd=dir_fd)
    except FileNotFoundError:
        raise IntakeError(f"{path}: no such folder") from None
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            try:
                what = describe(os.stat(path, dir_fd=dir_fd, follow_symlinks=False).st_mode)
            except OSError:
                what = "not a folder"
            raise IntakeError(f"{path}: {what}, not a folder: not taken") from None
        raise


# --- the walk ------------------------------------------------------------------------------------

class _Walk:
    def __init__(self, limits: Limits, read: bool, skip, ignore):
        self.limits, self.read, self.skip, self.ignore = limits, read, skip, tuple(ignore)
        self.out = Intake()
        self.total = self.seen = 0
        self.deadline = time.monotonic() + limits.seconds
        self.stopped = False

    def refuse(self, rel: str, reason: str) -> None:
        self.out.refused.append(Refusal(rel, reason))

    def folder(self, fd: int, prefix: str, depth: int) -> None:
        try:
            names = sorted(os.listdir(fd))
        except OSError as e:
            self.refuse(prefix.rstrip("/") or ".", f"cannot be listed ({e.strerror})")
            return
        for name in names:
            rel = prefix + name
            if self.stopped:
                return
            self.seen += 1
            if self.seen > self.limits.entries:
                self.refuse(rel, f"the folder holds more than {self.limits.entries} files and folders: "
                                 "this one and the rest")
                self.stopped = True
                return
            if time.monotonic() > self.deadline:
                self.refuse(rel, f"reading the submission took over {self.limits.seconds:g} s: this one and the rest")
                self.stopped = True
                return
            if any(fnmatch.fnmatch(name, p) for p in self.ignore):
                continue
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError as e:
                self.refuse(rel, f"cannot be looked at ({e.strerror})")
                continue
            self.out.changed = max(self.out.changed, st.st_ctime)
            if stat.S_ISDIR(st.st_mode):
                if depth >= self.limits.depth:
                    self.refuse(rel, f"folders nested deeper than {self.limits.depth}")
                    continue
                try:
                    sub = os.open(name, _DIR, dir_fd=fd)
                except OSError as e:
                    self.refuse(rel, "a folder that changed while it was read" if e.errno in (errno.ELOOP, errno.ENOTDIR)
                                else f"cannot be opened ({e.strerror})")
                    continue
                try:
                    if (os.fstat(sub).st_dev, os.fstat(sub).st_ino) != (st.st_dev, st.st_ino):
                        self.refuse(rel, "a folder that changed while it was read")
                        continue
                    self.folder(sub, rel + "/", depth + 1)
                finally:
                    os.close(sub)
            elif stat.S_ISREG(st.st_mode):
                if self.skip is not None and self.skip(rel):
                    continue
                self.file(fd, name, rel, st)
            else:
                self.refuse(rel, describe(st.st_mode))

    def file(self, fd: int, name: str, rel: str, st: os.stat_result) -> None:
        cap = self.limits.cap(name)
        if st.st_nlink > 1:
            self.refuse(rel, f"a hard link ({st.st_nlink} names for one file)")
            return
        if st.st_size > cap:
            self.refuse(rel, f"{_mb(st.st_size)}, over the {_mb(cap)} a {'notebook' if name.endswith('.ipynb') else 'file'} "
                             "may have")
            return
        if self.total + st.st_size > self.limits.total_bytes:
            self.refuse(rel, f"over the {_mb(self.limits.total_bytes)} a submission may hold in all")
            return
        if not self.read:
            self.total += st.st_size
            self.out.names.append(rel)
            return
        try:
            f = os.open(name, _FILE, dir_fd=fd)
        except OSError as e:
            self.refuse(rel, "a file that changed while it was read" if e.errno == errno.ELOOP
                        else f"cannot be opened ({e.strerror})")
            return
        try:
            fs = os.fstat(f)
            if not stat.S_ISREG(fs.st_mode) or (fs.st_dev, fs.st_ino) != (st.st_dev, st.st_ino):
                self.refuse(rel, f"{describe(fs.st_mode) if not stat.S_ISREG(fs.st_mode) else 'a file'} "
                                 "that changed while it was read")
                return
            chunks, size = [], 0
            while size <= cap:
                if time.monotonic() > self.deadline:
                    self.refuse(rel, f"reading the submission took over {self.limits.seconds:g} s")
                    self.stopped = True
                    return
                chunk = os.read(f, min(1 << 20, cap + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            if size > cap or self.total + size > self.limits.total_bytes:
                self.refuse(rel, f"grew past the {_mb(cap)} allowed while it was read")
                return
            self.out.changed = max(self.out.changed, os.fstat(f).st_ctime)
        except OSError as e:
            self.refuse(rel, f"cannot be read ({e.strerror})")
            return
        finally:
            os.close(f)
        self.total += size
        self.out.files[rel] = b"".join(chunks)
        self.out.names.append(rel)


def read(folder: Path | str, limits: Limits = STUDENT, *, contents: bool = True, skip=None,
         ignore: tuple[str, ...] | list[str] = (), dir_fd: int | None = None) -> Intake:
    """Take the regular files of ``folder`` (``Intake.files``, by relative path) within ``limits``;
    everything else is in ``Intake.refused`` with its reason. ``contents=False`` only looks (names,
    sizes, owner, ``changed``). ``skip(rel)``: files to leave out silently; ``ignore``: glob patterns
    of names (files or folders) to leave out silently. Raises ``IntakeError`` if ``folder`` itself is
    not a folder (a link to one included)."""
    fd = open_folder(folder, dir_fd)
    try:
        st = os.fstat(fd)
        walk = _Walk(limits, contents, skip, ignore)
        walk.out.owner, walk.out.changed = st.st_uid, st.st_ctime
        walk.folder(fd, "", 0)
        walk.out.changed = max(walk.out.changed, os.fstat(fd).st_ctime)
        return walk.out
    finally:
        os.close(fd)


def write(dest: Path | str, files: dict[str, bytes]) -> None:
    """Write ``files`` (relative path -> bytes) under ``dest``, a folder of ours; names that would
    leave it (``..``, absolute) or go through a link are skipped."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    for rel, data in files.items():
        parts = Path(rel).parts
        if not parts or Path(rel).is_absolute() or any(p in ("..", ".") for p in parts):
            continue
        path = dest.joinpath(*parts)
        if not path.parent.resolve().is_relative_to(root):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.parent.resolve() != root.joinpath(*parts[:-1]):
            continue  # a link on the way
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)


def copy(folder: Path | str, dest: Path | str, limits: Limits = STUDENT, *, ignore=()) -> Intake:
    """``read`` ``folder`` and write what was taken into ``dest`` (created; it must not exist)."""
    taken = read(folder, limits, ignore=ignore)
    Path(dest).mkdir(parents=True)
    write(dest, taken.files)
    return taken


def read_file(folder: Path | str, name: str, max_bytes: int = 4096) -> bytes:
    """One small regular file directly in ``folder`` (e.g. ``submission_secret.txt``), by the same
    rules; raises ``IntakeError`` with the reason (missing, a link, a FIFO, too big)."""
    fd = open_folder(folder)
    try:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            raise IntakeError(f"{name}: missing") from None
        if not stat.S_ISREG(st.st_mode):
            raise IntakeError(f"{name}: {describe(st.st_mode)}, not read")
        if st.st_size > max_bytes:
            raise IntakeError(f"{name}: {_mb(st.st_size)}, over the {_mb(max_bytes)} allowed")
        f = os.open(name, _FILE, dir_fd=fd)
        try:
            fs = os.fstat(f)
            if not stat.S_ISREG(fs.st_mode):
                raise IntakeError(f"{name}: {describe(fs.st_mode)}, not read")
            data = os.read(f, max_bytes + 1)
        finally:
            os.close(f)
        if len(data) > max_bytes:
            raise IntakeError(f"{name}: over the {_mb(max_bytes)} allowed")
        return data
    finally:
        os.close(fd)


def markdown_text(text: str) -> str:
    """``text`` (a path a student chose, a reason) as literal text inside Markdown: no HTML, no markup."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_{}\[\]()#+!|~-])", r"\\\1", text)


# --- who and when ----------------------------------------------------------------------------------

class Refused(ValueError):
    """A submission the course does not take; the message is the reason (for the staff's log)."""


def parse_name(name: str) -> tuple[str, str, str] | None:
    """``(student, assignment, timestamp)`` claimed by an inbound folder's name
    ``<student>+<assignment>+<timestamp>[+<random>]`` (nbgrader's), or None if it is not one.
    Raises ``Refused`` for a name shaped like one whose student or assignment could name
    something else than one person's or one assignment's folder (``.``, ``..``, ``*``, a path)."""
    from nbgrader.utils import parse_utc
    parts = name.split("+")
    for n_extra in (1, 0):  # nbgrader adds the random part by default
        head = parts[:len(parts) - n_extra]
        if len(head) < 3 or not STAMP.match(head[-1]):
            continue
        try:
            parse_utc(head[-1])
        except (ValueError, OverflowError):
            continue
        student, assignment = "+".join(head[:-2]), head[-2]
        if not student or not assignment:
            continue
        if not STUDENT_ID.fullmatch(student):
            raise Refused(f"{student!r} is not a student id")
        if not ASSIGNMENT_ID.fullmatch(assignment):
            raise Refused(f"{assignment!r} is not an assignment id")
        return student, assignment, head[-1]
    return None


def user_name(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def trusted_uids() -> set[int]:
    """Owners whose folders may carry any roster id: root and the account this runs as (tests,
    a course on one machine, where students' submissions are all the instructor's own files)."""
    return {0, os.geteuid()}


def identify(uid: int, claimed: str, roster: set[str] | None, trusted: set[int] | None = None) -> str:
    """The student who handed in a folder owned by ``uid`` whose name claims ``claimed``.

    A student's own folder: the owner's user name, which must be the name claimed (and on the
    roster, if there is one). A folder of root or of this account (``trusted_uids``): the name
    claimed, if it is on the roster (without a roster, any well-formed id). Raises ``Refused``."""
    if not STUDENT_ID.fullmatch(claimed):
        raise Refused(f"{claimed!r} is not a student id")
    if uid in (trusted_uids() if trusted is None else trusted):
        if roster is not None and claimed not in roster:
            raise Refused(f"{claimed!r} is not on the course's roster")
        return claimed
    owner = user_name(uid)
    if owner is None:
        raise Refused(f"named for {claimed} but owned by uid {uid}, which has no account")
    if owner != claimed:
        raise Refused(f"named for {claimed} but handed in by {owner} (the folder's owner)")
    if roster is not None and owner not in roster:
        raise Refused(f"{owner} is not on the course's roster")
    return owner


def load_roster(course_root: Path | str, db_url: str | None) -> set[str] | None:
    """The student ids the course knows: its gradebook's students and ``<course>/roster.csv`` (the
    hub's). None when neither names anyone (a course on one machine without a roster)."""
    ids: set[str] = set()
    path = Path(course_root) / "roster.csv"
    try:
        with open(path, newline="") as f:
            ids |= {row["id"].strip() for row in csv.DictReader(f) if (row.get("id") or "").strip()}
    except (OSError, KeyError, csv.Error):
        pass
    if db_url and not (db_url.startswith("sqlite:///") and not Path(db_url.removeprefix("sqlite:///")).is_file()):
        try:
            from nbgrader.api import Gradebook
            with Gradebook(db_url) as gb:
                ids |= {s.id for s in gb.students}
        except Exception:  # noqa: BLE001 -- an unreachable gradebook names nobody; the file may
            pass
    return ids or None


def stamp(t: float) -> str:
    """nbgrader's timestamp format (``timestamp.txt``) of the epoch time ``t``, in UTC."""
    return f"{datetime.fromtimestamp(t, timezone.utc):%Y-%m-%d %H:%M:%S.%f} UTC"
