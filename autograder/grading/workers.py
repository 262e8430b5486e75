"""Grading one submission in isolation, so that many can run at once (processes or Dask).

A ``Task`` carries everything as bytes: the submission, the non-notebook files of the
source folder and a gradebook that holds only this assignment. ``run_task`` grades it in a
scratch course in a child process with a wall-clock limit and a memory cap, and returns the
grades and the autograded files; ``merge`` writes them into the course's one gradebook from
the calling process, so workers never share the database.
"""
from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import nbformat

from nbgrader.api import Gradebook

from . import forkserver, sandbox
from ..inbound import intake
from .cgroups import Caps, Cgroup
from ..course.config import DB_ENV
from ..course.torch_env import torch_env
from .kernel import MODULES_ENV

DATA_ENV = "DGM_DATA"
# Modules a notebook's tests score with, imported and guarded by the kernel when the notebook names them.
GUARDED = ("sympy", "mpmath", "helpers.metrics", "helpers.classifier", "autograder.evaluators.evaluate", "autograder.evaluators.probes",
           "autograder.evaluators.conditional")
MAX_NOTEBOOK_MB = intake.NOTEBOOK_MB  # a submitted notebook above this is refused (its outputs are cleared anyway)
from ..course.course import Course, GradingError

WALL_CLOCK_S = 1800.0
MEMORY_MB = 6144


@dataclass
class Task:
    assignment: str
    student: str
    files: dict[str, bytes]               # the student's assignment folder, by relative path
    source_files: dict[str, bytes]        # files the source folder holds besides notebooks
    gradebook: bytes                      # SQLite gradebook with this assignment only
    cell_timeout: int = 600
    wall_clock: float = WALL_CLOCK_S
    memory_mb: int = MEMORY_MB
    threads: int = 1                      # torch/OpenMP threads of the student's kernel
    data: str | None = None               # the data folder the kernel reads (default: the repository's data/)


@dataclass
class Outcome:
    assignment: str
    student: str
    grades: dict[str, tuple[float | None, bool]] = field(default_factory=dict)  # id -> (auto, manual?)
    comments: dict[str, str | None] = field(default_factory=dict)
    penalties: dict[str, float | None] = field(default_factory=dict)  # notebook -> late penalty
    timestamp: datetime | None = None
    files: dict[str, bytes] = field(default_factory=dict)  # the autograded folder
    error: str | None = None


def read_tree(folder: Path, skip_notebooks: bool = False, refused: list[str] | None = None,
              limits: intake.Limits = intake.STUDENT) -> dict[str, bytes]:
    """The regular files of ``folder`` by relative path, taken by ``autograder.inbound.intake`` (no links,
    FIFOs or devices; sizes, entries, depth and time capped by ``limits``). What it refuses is
    appended to ``refused`` (one reason per path), if given. Raises ``GradingError`` if ``folder``
    is not a folder (or is a link)."""
    try:
        taken = intake.read(folder, limits, skip=(lambda rel: rel.endswith(".ipynb")) if skip_notebooks else None)
    except intake.IntakeError as e:
        raise GradingError(str(e)) from None
    if refused is not None:
        refused.extend(taken.reasons())
    return taken.files


def write_tree(folder: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` under ``folder``; a crafted ``../`` name or one through a link is skipped."""
    intake.write(folder, files)


class SubmissionRefused(GradingError):
    """The submitted notebook itself was not taken (a link, a FIFO, too large ...): graded 0 with
    the reason, without running anything."""


def assignment_gradebook(db_url: str, assignment: str) -> bytes:
    """A new SQLite gradebook holding only ``assignment``'s definition (its due date, notebooks
    and cells), copied from the gradebook at ``db_url`` (any database nbgrader takes); no students."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "gradebook.db"
        with Gradebook(db_url) as src:
            a = src.find_assignment(assignment)
            with Gradebook(f"sqlite:///{db}", course_id=a.course_id) as out:
                out.update_or_create_assignment(a.name, duedate=a.duedate)
                for nb in a.notebooks:
                    out.update_or_create_notebook(nb.name, a.name, kernelspec=nb.kernelspec)
                    for c in nb.grade_cells:
                        out.update_or_create_grade_cell(c.name, nb.name, a.name, max_score=c.max_score,
                                                        cell_type=c.cell_type)
                    for c in nb.task_cells:
                        out.update_or_create_task_cell(c.name, nb.name, a.name, max_score=c.max_score,
                                                       cell_type=c.cell_type)
                    for c in nb.solution_cells:
                        out.update_or_create_solution_cell(c.name, nb.name, a.name)
                    for c in nb.source_cells:
                        out.update_or_create_source_cell(c.name, nb.name, a.name, cell_type=c.cell_type,
                                                         locked=c.locked, source=c.source, checksum=c.checksum)
        return db.read_bytes()


def make_task(course: Course, student: str, assignment: str, folder: Path, gradebook: bytes, *,
              refused: list[str] | None = None, timestamp: str | None = None, **limits) -> Task:
    """Snapshot what grading ``folder`` needs. ``gradebook``: the course's
    ``assignment_gradebook`` (built once per assignment by the caller). ``limits``: fields of ``Task``.

    The folder is read by ``autograder.inbound.intake``: what it refuses (links, FIFOs, devices, files
    over their size, too many) is appended to ``refused`` (a reason per path) and left out; if
    the notebook itself is refused, ``SubmissionRefused`` says why. ``timestamp``: nbgrader's
    timestamp to grade with (``timestamp.txt``, which the late penalty reads), replacing the
    student's own."""
    limits.setdefault("cell_timeout", int(course.config.Execute.timeout))
    limits.setdefault("data", os.environ.get(DATA_ENV))
    reasons: list[str] = []
    files = read_tree(folder, refused=reasons)
    earlier = list(refused) if refused is not None else []  # e.g. add_submission's, into this folder
    if refused is not None:
        refused.extend(reasons)
    notebook = f"{assignment}.ipynb"
    mine = [r for r in earlier + reasons if r.startswith(f"{notebook}: ")]
    if mine and notebook not in files:
        raise SubmissionRefused(mine[0])
    if timestamp is not None:
        files["timestamp.txt"] = timestamp.encode()
    return Task(assignment, student, files, read_tree(course.source(assignment).parent, True, limits=intake.STAFF),
                gradebook, **limits)


@dataclass
class Supervised:
    """How a supervised grading process ended: ``failed`` (stopped, or a non-zero exit) and why."""
    error: str | None = None
    failed: bool = False


def supervise(target, root: Path, memory_mb: int, threads: int, wall_clock: float, *, text: str = "",
              cell_timeout: int | None = None, data: str | None = None, args: tuple = ()) -> Supervised:
    """Run ``target(str(root), memory_mb, env, cgroup, *args)`` (``forkserver.grade`` or ``.execute``)
    in a fresh fork of the grading server and watch it: its kernel's cgroup (``memory_mb`` with
    tmpfs, ``threads`` cores, ``sandbox.NPROC`` tasks) is made here, the grader is stopped as soon
    as a fork bomb hits the task cap or ``wall_clock`` seconds have passed, and nothing it started
    outlives it. ``text``: the notebook's text (the evaluators it names are guarded)."""
    (root / "runtime").mkdir(mode=0o700, exist_ok=True)
    group = Cgroup(f"dgm/grade/{root.name}")
    problems = group.create(Caps(memory_mb=memory_mb, cpus=threads, tasks=sandbox.NPROC)) if sandbox.available() else []
    env = {k: v for k, v in os.environ.items() if k != DB_ENV}  # the course's database stays out of sight
    env.update(**torch_env(), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONUNBUFFERED="1",
               JUPYTER_RUNTIME_DIR=str(root / "runtime"),
               **{MODULES_ENV: ",".join(m for m in GUARDED if m.rsplit(".", 1)[-1] in text)},
               **({"DGM_CELL_TIMEOUT": str(cell_timeout)} if cell_timeout else {}),
               **({DATA_ENV: data} if data else {}))
    if problems:
        group.remove()
        return Supervised(f"the kernel's caps cannot be set: {'; '.join(problems)}", True)
    child = forkserver.context().Process(target=target, daemon=False, args=(str(root), memory_mb, env, group.name, *args))
    child.start()
    stopped = None
    try:
        end = time.monotonic() + wall_clock
        while child.is_alive() and stopped is None:
            child.join(0.25)
            if group.tasks_capped():  # a fork bomb: its outcome is known, stop it now
                stopped = f"the submission started more than {sandbox.NPROC} processes (a fork bomb?)"
            elif time.monotonic() > end and child.is_alive():
                stopped = f"grading stopped after the {wall_clock:g} s limit for one submission"
    finally:
        try:
            os.killpg(child.pid, signal.SIGKILL)  # the grader, the kernel and anything they started
        except ProcessLookupError:
            pass
        child.join()
        oom = group.oom_kills()
        group.remove()  # and whatever left the process group
    log_file = root / forkserver.LOG
    log = log_file.read_text(errors="replace")[-(64 << 10):] if log_file.exists() else ""
    error = stopped
    if not stopped and child.exitcode != 0:
        error = log.strip().splitlines()[-1] if log.strip() else f"grader exited with {child.exitcode}"
    if oom:
        error = (f"{error}; " if error else "") + \
            f"the submission went over its memory cap of {memory_mb} MiB (tmpfs included): the kernel's OOM killer " \
            f"stopped {oom} of its processes"
    return Supervised(error, bool(stopped) or child.exitcode != 0)


def run_task(task: Task) -> Outcome:
    """Grade ``task`` in a scratch course (runs in a worker: a thread, a process or Dask).

    The kernel runs in ``autograder.grading.sandbox``: the course and the scratch gradebook are out of
    its sight or read-only, its processes are capped, and it writes in ``autograded/`` and
    ``home/`` of the scratch folder.
    """
    out = Outcome(task.assignment, task.student)
    size = max((len(b) for n, b in task.files.items() if n.endswith(".ipynb")), default=0)
    if size > MAX_NOTEBOOK_MB << 20:
        out.error = (f"the submitted notebook is {size / 2**20:.0f} MB; the course grades notebooks of up to "
                     f"{MAX_NOTEBOOK_MB} MB (clear large outputs and submit again)")
        return out
    with tempfile.TemporaryDirectory(prefix="dgm-grade-") as tmp:
        root = Path(tmp)
        db = root / forkserver.DB
        db.write_bytes(task.gradebook)
        (root / "notebooks" / task.assignment).mkdir(parents=True)
        write_tree(root / "notebooks" / task.assignment, task.source_files)
        submitted = root / "submitted" / task.student / task.assignment
        write_tree(submitted, task.files)
        text = b"".join(task.files.values()).decode(errors="replace")
        run = supervise(forkserver.grade, root, task.memory_mb, task.threads, task.wall_clock, text=text,
                        cell_timeout=task.cell_timeout, data=task.data, args=(task.assignment, task.student))
        out.error = run.error
        if run.failed:
            return out
        with Gradebook(f"sqlite:///{db}") as gb:
            sub = gb.find_submission(task.assignment, task.student)
            out.timestamp = sub.timestamp
            for nb in sub.notebooks:
                out.penalties[nb.name] = nb.late_submission_penalty
                out.grades.update({g.name: (g.auto_score, g.needs_manual_grade) for g in nb.grades})
                out.comments.update({c.name: c.auto_comment for c in nb.comments})
        out.files = read_tree(root / "autograded" / task.student / task.assignment)
    return out


def merge(course: Course, outcome: Outcome) -> None:
    """Write a worker's grades and autograded files into the course (one writer: the caller)."""
    with Gradebook(course.db_url) as gb:
        gb.update_or_create_student(outcome.student)
        sub = gb.update_or_create_submission(outcome.assignment, outcome.student,
                                             **({"timestamp": outcome.timestamp} if outcome.timestamp else {}))
        for nb in sub.notebooks:
            nb.late_submission_penalty = outcome.penalties.get(nb.name)
            for g in nb.grades:
                auto, manual = outcome.grades.get(g.name, (0.0, False))
                g.auto_score, g.needs_manual_grade = auto, manual
            for c in nb.comments:
                c.auto_comment = outcome.comments.get(c.name)
        gb.db.commit()
    dest = course.autograded(outcome.student, outcome.assignment)
    if dest.exists():
        shutil.rmtree(dest)
    write_tree(dest, outcome.files or explain(outcome))


def explain(outcome: Outcome) -> dict[str, bytes]:
    """An autograded folder for a submission that could not be graded: a notebook whose first
    cell gives the reason (so the feedback says why the score is 0)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        f"**This submission could not be graded: {outcome.error}** All its tests count as failed.")])
    return {f"{outcome.assignment}.ipynb": nbformat.writes(nb).encode()}
