"""Grade a folder of submissions laid out as ``<dir>/<student>/<assignment>/<notebook>.ipynb``.

Each submission is graded in isolation (``autograder.grading.workers``): by ``workers`` local
processes, or as tasks on a Dask cluster (``scheduler``: an address, or a ``Client``). The
results are merged into the course's one gradebook by this process alone. How long each took
is appended to the course's grade log (``Course.grade_log``, read by ``autograder.reports.report``).
"""
from __future__ import annotations

import csv
import os
import shutil
import stat
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from tqdm.auto import tqdm

from ..course.cells import grade_id, is_graded
from ..course import gradebook
from ..course.course import Course, GradingError
from ..course.gradebook import Score
from . import forkserver
from ..inbound import intake
from .workers import Outcome, SubmissionRefused, assignment_gradebook, make_task, merge, run_task


@dataclass
class Result:
    """The outcome of grading one submission: a score, and the reason if it could not run."""
    student: str
    assignment: str
    score: Score | None = None
    error: str | None = None
    seconds: float | None = None  # wall-clock time of its grading (None: not graded)

    def line(self) -> str:
        if self.score is None:
            return f"{self.student}/{self.assignment}: NOT GRADED: {self.error}"
        s = self.score
        manual = " (+ manual grading pending)" if s.needs_manual_grade else ""
        failed = f" - FAILED: {self.error}" if self.error else ""
        return f"{self.student}/{self.assignment}: autograded {s.auto:g}/{s.auto_max:g}{manual}{failed}"


def add_submission(course: Course, folder: Path, student: str, assignment: str,
                   refused: list[str] | None = None) -> Path:
    """Copy a student's assignment folder into the course's ``submitted/`` (replacing an older copy).

    The copy is ``autograder.inbound.intake``'s: regular files only, within its caps; what it leaves
    out (links, FIFOs, devices, files too large, too many) is appended to ``refused``, a reason
    per path, and stays where it was. Raises ``GradingError`` if ``folder`` is not a folder
    (a link to one included) or ``student``/``assignment`` are not plain ids."""
    for what, name, pattern in (("student", student, intake.STUDENT_ID), ("assignment", assignment,
                                                                         intake.ASSIGNMENT_ID)):
        if not pattern.fullmatch(name):
            raise GradingError(f"{name!r} is not a {what} id")
    dest = course.submitted(student, assignment)
    if Path(folder).resolve() == dest.resolve():
        return dest
    try:
        taken = intake.read(folder)
    except intake.IntakeError as e:
        raise GradingError(str(e)) from None
    if dest.is_symlink() or dest.exists():
        if dest.is_symlink() or not dest.is_dir():
            dest.unlink()
        else:
            shutil.rmtree(dest)
    dest.mkdir(parents=True)
    intake.write(dest, taken.files)
    if refused is not None:
        refused.extend(taken.reasons())
    return dest


def find_submissions(folder: Path, refused: list[tuple[str, str, str]] | None = None) -> list[tuple[str, str, Path]]:
    """``(student, assignment, path)`` for every ``<folder>/<student>/<assignment>/`` directory.

    Folders are looked at with ``lstat``: a student's or assignment's entry that is a link (or a
    FIFO, a device ...) is not followed but appended to ``refused`` as ``(student, assignment,
    reason)`` (assignment ``-`` for a student's entry); plain files and hidden entries are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GradingError(f"no such folder of submissions: {folder}")
    found = []
    for s in sorted(os.listdir(folder)):
        mode = _lmode(folder / s)
        if s.startswith(".") or stat.S_ISREG(mode):
            continue  # hidden, or a stray file beside the students' folders
        if not stat.S_ISDIR(mode):
            if refused is not None:
                refused.append((s, "-", f"{s}: {intake.describe(mode)}, not graded"))
            continue
        for a in sorted(os.listdir(folder / s)):
            mode = _lmode(folder / s / a)
            if stat.S_ISDIR(mode):
                found.append((s, a, folder / s / a))
            elif not stat.S_ISREG(mode) and not a.startswith(".") and refused is not None:
                refused.append((s, a, f"{s}/{a}: {intake.describe(mode)}, not graded"))
    return found


def _lmode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0


def grade_folder(course: Course, folder: Path, assignments: list[str] | None = None, workers: int = 1,
                 scheduler=None, progress: bool = True, **limits) -> list[Result]:
    """Autograde every submission in ``folder`` into the course gradebook.

    A submission with an unknown assignment or without its notebook is not graded (a
    ``Result`` with the reason). One that breaks or exceeds its limits while grading gets 0
    for its tests, and the reason is kept in the Result and in its feedback notebook.
    Submissions are taken by ``autograder.inbound.intake``: what it leaves out (links, FIFOs, devices,
    files over their size, too many files) is named with its reason in the Result's error and in
    a note at the top of the feedback; a notebook it refuses gets 0 with the reason, unrun. A
    student's or assignment's folder that is a link is not graded (a Result with the reason).
    ``limits``: ``wall_clock``, ``memory_mb``, ``threads`` of ``workers.Task``.
    Graders are forked from a multiprocessing forkserver, so a script that calls this must
    guard its entry point with ``if __name__ == "__main__":``.
    """
    if scheduler is None:
        forkserver.warm_up()
    results, tasks, gradebooks, notes = [], [], {}, {}
    links: list[tuple[str, str, str]] = []
    for student, assignment, path in find_submissions(folder, links):
        if assignments is not None and assignment not in assignments:
            continue
        result = Result(student, assignment)
        reasons: list[str] = []
        try:
            course.check_assignment(assignment)
            if not os.path.lexists(path / f"{assignment}.ipynb"):
                raise GradingError(f"no {assignment}.ipynb in {path}")
            course.ensure_released(assignment)
            if assignment not in gradebooks:
                gradebooks[assignment] = assignment_gradebook(course.db_url, assignment)
            dest = add_submission(course, path, student, assignment, refused=reasons)
            reasons += earlier_refusals(dest)
            tasks.append(make_task(course, student, assignment, dest, gradebooks[assignment], refused=reasons,
                                   **limits))
        except SubmissionRefused as e:  # its notebook: 0 with the reason, nothing run
            merge(course, Outcome(assignment, student, error=str(e)))
            result.score, result.error = gradebook.score(course.db_url, assignment, student), _join([str(e)] + reasons)
        except GradingError as e:
            result.error = str(e)
        notes[student, assignment] = list(dict.fromkeys(reasons))
        results.append(result)
    results += [Result(s, a, error=why) for s, a, why in links if assignments is None or a in assignments or a == "-"]
    by_key = {(r.student, r.assignment): r for r in results}
    foreign = {(t.student, t.assignment) for t in tasks if _foreign(course, t.assignment, t.files)}
    bar = tqdm(total=len(tasks), desc="grading", unit="submission", disable=not progress)
    for outcome, seconds in _run(tasks, workers, scheduler):
        merge(course, outcome)
        result = by_key[outcome.student, outcome.assignment]
        result.score, result.error = gradebook.score(course.db_url, outcome.assignment, outcome.student), outcome.error
        result.seconds = seconds
        if result.error and (outcome.student, outcome.assignment) in foreign:
            result.error = (f"the notebook holds none of {outcome.assignment}'s graded cells "
                            f"(another assignment's notebook?); {result.error}")
        left_out = notes.get((outcome.student, outcome.assignment))
        if left_out:
            note_refusals(course, outcome.student, outcome.assignment, left_out)
            result.error = _join(([result.error] if result.error else []) + left_out)
        if seconds is not None:
            log_times(course, [result])
        bar.update()
    bar.close()
    return results


NOTE_KEY = "dgm_intake"  # metadata of the note cell that names what was left out


def _join(reasons: list[str]) -> str:
    return "; ".join(reasons)


def earlier_refusals(folder: Path) -> list[str]:
    """What a safe ``collect`` left out of ``folder`` (``intake.REFUSED_FILE``, a reason a line)."""
    try:
        text = intake.read_file(folder, intake.REFUSED_FILE, 64 << 10).decode(errors="replace")
    except intake.IntakeError:
        return []
    return [line.strip() for line in text.splitlines() if line.strip()]


def note_refusals(course: Course, student: str, assignment: str, reasons: list[str]) -> None:
    """A note at the top of each autograded notebook (so of the feedback): what was left out and why."""
    text = ("**Not every file of this submission was taken** (the course takes regular files only, "
            "within size limits):\n\n" + "\n".join(f"- {intake.markdown_text(r)}" for r in reasons))
    for path in sorted(course.autograded(student, assignment).glob("*.ipynb")):
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 -- an unreadable notebook keeps its own reason
            continue
        if nb.cells and nb.cells[0].metadata.get(NOTE_KEY):
            nb.cells.pop(0)
        cell = nbformat.v4.new_markdown_cell(text)
        cell.metadata[NOTE_KEY] = True
        nb.cells.insert(0, cell)
        nbformat.write(nb, path)


LOG_FIELDS = ["assignment", "student", "seconds", "finished", "error"]


def log_times(course: Course, results: list[Result]) -> None:
    """Append a row per result to ``course.grade_log`` (CSV, ``LOG_FIELDS``; ``finished``: now, UTC,
    ISO 8601); ``grade_folder`` logs each submission as it is merged. A submission graded again
    gets another row: the last counts."""
    path = course.grade_log
    new = not path.exists()
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with open(path, "a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(LOG_FIELDS)
        w.writerows([r.assignment, r.student, f"{r.seconds:.1f}", now, r.error or ""] for r in results)


def read_times(course: Course) -> dict[tuple[str, str], float]:
    """``(assignment, student) -> seconds`` of the latest grading in the grade log (empty if none)."""
    if not course.grade_log.exists():
        return {}
    with open(course.grade_log, newline="") as f:
        return {(r["assignment"], r["student"]): float(r["seconds"]) for r in csv.DictReader(f)}


def _foreign(course: Course, assignment: str, files: dict[str, bytes]) -> bool:
    """True if the submitted notebook is readable but has none of the assignment's cell ids."""
    try:
        nb = nbformat.reads(files[f"{assignment}.ipynb"].decode(), as_version=4)
    except Exception:
        return False
    def graded(cells) -> set[str]:
        return {grade_id(c) for c in cells if grade_id(c) and is_graded(c)}
    return not graded(nbformat.read(course.source(assignment), as_version=4).cells) & graded(nb.cells)


def _run(tasks, workers: int, scheduler):
    """Yield ``(Outcome, seconds)`` of each task as it finishes (seconds None if its worker died)."""
    if scheduler is not None:
        from dask.distributed import Client, as_completed as dask_completed

        client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
        try:
            futures = [client.submit(_timed, t, pure=False) for t in tasks]
            for future in dask_completed(futures):
                yield _outcome(future, tasks[futures.index(future)])
        finally:
            if client is not scheduler:
                client.close()
        return
    # Threads suffice: each task grades in its own child process.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(_timed, t): t for t in tasks}
        for future in as_completed(futures):
            yield _outcome(future, futures[future])


def _timed(task) -> tuple[Outcome, float]:
    """``run_task`` and how long it took, in seconds (measured where it runs)."""
    start = time.perf_counter()
    outcome = run_task(task)
    return outcome, time.perf_counter() - start


def _outcome(future, task) -> tuple[Outcome, float | None]:
    try:
        return future.result()
    except Exception as e:  # a worker that died (e.g. lost Dask worker) grades as a failure
        return Outcome(task.assignment, task.student, error=f"grading worker failed: {e!r}"), None
