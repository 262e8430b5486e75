"""The course on disk and nbgrader's API over it: release, autograde, scores, export."""
from __future__ import annotations

import csv
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from .config import REPO, course_config
from .schedule import Schedule


class GradingError(RuntimeError):
    """An nbgrader step failed: a one-line reason, with nbgrader's whole log in ``log``."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


def failure_reason(log: str) -> str:
    """The last exception line of an nbgrader log (e.g. ``NotJSONError: ...``), else its last line."""
    lines = [ln.strip() for ln in log.strip().splitlines() if ln.strip()]
    raised = [ln for ln in lines if re.match(r"^[\w.]*(Error|Exception|Exit)\b.*:", ln)
              and "NbGraderException" not in ln]  # nbgrader's own "see the above traceback"
    return (raised or lines or ["no log"])[-1]


@dataclass
class Score:
    """One student's result on one assignment, from the gradebook.

    ``auto``/``auto_max`` count only the autograded test cells; ``score``/``max_score``
    include manually graded cells (0 until a TA grades them).
    """
    assignment: str
    student: str
    auto: float
    auto_max: float
    score: float
    max_score: float
    needs_manual_grade: bool
    late_penalty: float
    timestamp: str


class Course:
    """An nbgrader course rooted at ``root`` whose sources are ``root/notebooks``.

    ``notebooks`` names another source folder to link in as ``root/notebooks``, so a
    throw-away course (tests, selfcheck) grades the real notebooks with its own gradebook.
    ``db_url``: the gradebook's database (default ``$DGM_DB_URL``, else ``root/gradebook.db``).
    """

    def __init__(self, root: Path = REPO, notebooks: Path | None = None,
                 due_dates: dict[str, str] | None = None, db_url: str | None = None):
        self.root = Path(root).resolve()
        self.due_dates = Schedule.load().due_dates() if due_dates is None else due_dates
        if notebooks is not None:
            self.root.mkdir(parents=True, exist_ok=True)
            link = self.root / "notebooks"
            if not link.exists():
                link.symlink_to(Path(notebooks).resolve(), target_is_directory=True)
        self.config = course_config(self.root)
        if db_url:
            self.config.CourseDirectory.db_url = db_url
        self.api = NbGraderAPI(CourseDirectory(config=self.config), config=self.config)
        self.db_url = self.api.coursedir.db_url

    # --- paths ---------------------------------------------------------------
    def assignments(self) -> list[str]:
        """Assignment ids in course order (their ``00_`` … prefixes)."""
        src = self.root / "notebooks"
        return sorted(p.name for p in src.iterdir() if (p / f"{p.name}.ipynb").is_file())

    def source(self, assignment: str) -> Path:
        return self.root / "notebooks" / assignment / f"{assignment}.ipynb"

    def released(self, assignment: str) -> Path:
        return self.root / "release" / assignment / f"{assignment}.ipynb"

    def submitted(self, student: str, assignment: str) -> Path:
        return self.root / "submitted" / student / assignment

    def autograded(self, student: str, assignment: str) -> Path:
        return self.root / "autograded" / student / assignment

    @property
    def grade_log(self) -> Path:
        """CSV of how long each grading took (``autograder.grading.grade.log_times``)."""
        return self.root / "grade-log.csv"

    def check_assignment(self, assignment: str) -> None:
        if assignment not in self.assignments():
            raise GradingError(f"unknown assignment {assignment!r}; the course has "
                               f"{', '.join(self.assignments())}")

    # --- nbgrader steps ---------------------------------------------------------
    @staticmethod
    def _check(result: dict, what: str) -> None:
        if not result["success"]:
            log = "\n".join(filter(None, [result.get("log"), result.get("error")]))
            raise GradingError(f"{what} failed: {failure_reason(log)}", log)

    def release(self, assignment: str) -> Path:
        """Build the student version (solutions stubbed, hidden tests removed) into ``release/``."""
        self.check_assignment(assignment)
        self._check(self.api.generate_assignment(assignment, force=True, create=True),
                    f"generate_assignment {assignment}")
        self._set_due_date(assignment)
        return self.released(assignment)

    def _set_due_date(self, assignment: str) -> None:
        with Gradebook(self.db_url) as gb:
            gb.update_or_create_assignment(assignment, duedate=self.due_dates.get(assignment))

    def ensure_released(self, assignment: str) -> None:
        """Release ``assignment`` unless the gradebook already knows it."""
        with Gradebook(self.db_url) as gb:
            try:
                gb.find_assignment(assignment)
                known = self.released(assignment).is_file()
            except MissingEntry:
                known = False
        if not known:
            self.release(assignment)
        self._set_due_date(assignment)

    def autograde(self, assignment: str, student: str, release: bool = True) -> Score:
        """Autograde ``submitted/<student>/<assignment>`` and return the gradebook's score.

        ``release``: first generate the assignment if the gradebook does not know it yet.
        """
        if release:
            self.ensure_released(assignment)
        self._check(self.api.autograde(assignment, student, force=True, create=True),
                    f"autograde {student}/{assignment}")
        return self.score(assignment, student)

    def feedback(self, assignment: str, student: str) -> Path:
        """Generate the feedback of a graded submission; returns its HTML file."""
        self._check(self.api.generate_feedback(assignment, student, force=True), f"feedback {student}/{assignment}")
        return self.root / "feedback" / student / assignment / f"{assignment}.html"

    # --- gradebook ---------------------------------------------------------------
    def score(self, assignment: str, student: str) -> Score:
        with Gradebook(self.db_url) as gb:
            sub = gb.find_submission(assignment, student)
            grades = [g for nb in sub.notebooks for g in nb.grades]
            auto = [g for g in grades if g.cell.cell_type == "code"]
            return Score(
                assignment=assignment, student=student,
                auto=sum(g.auto_score or 0.0 for g in auto),
                auto_max=sum(g.max_score for g in auto),
                score=sub.score, max_score=sub.max_score,
                needs_manual_grade=sub.needs_manual_grade,
                late_penalty=sub.late_submission_penalty or 0.0,
                timestamp=str(sub.timestamp or ""),
            )

    def cell_scores(self, assignment: str, student: str) -> dict[str, float | None]:
        """``grade_id -> auto_score`` of every graded cell (None for manually graded ones)."""
        with Gradebook(self.db_url) as gb:
            sub = gb.find_submission(assignment, student)
            return {g.name: g.auto_score for nb in sub.notebooks for g in nb.grades}

    def scores(self) -> list[Score]:
        """Every submission in the gradebook, in course order, then by student."""
        with Gradebook(self.db_url) as gb:
            pairs = [(a.name, s.student.id) for a in gb.assignments for s in a.submissions]
        return [self.score(a, s) for a, s in sorted(pairs)]

    def import_roster(self, path: Path) -> int:
        """Add or update the students of a CSV with columns ``id`` and optionally
        ``first_name``, ``last_name``, ``email`` (nbgrader's format). Returns the count."""
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows or "id" not in rows[0]:
            raise GradingError(f"{path}: a roster needs a header row with an 'id' column")
        with Gradebook(self.db_url) as gb:
            for row in rows:
                gb.update_or_create_student(row["id"].strip(), **{
                    k: row[k].strip() or None for k in ("first_name", "last_name", "email") if k in row})
        return len(rows)

    def export(self, path: Path) -> Path:
        """Write ``grades.csv``: one row per student and assignment."""
        fields = list(Score.__dataclass_fields__)
        path = Path(path)
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=fields)
            w.writeheader()
            for s in self.scores():
                w.writerow({k: getattr(s, k) for k in fields})
        return path

    def add_submission(self, folder: Path, student: str, assignment: str,
                       refused: list[str] | None = None) -> Path:
        """Copy a student's assignment folder into ``submitted/`` (replacing an older copy).

        The copy is ``autograder.inbound.intake``'s: regular files only, within its caps; what it leaves
        out (links, FIFOs, devices, files too large, too many) is appended to ``refused``, a reason
        per path, and stays where it was. Raises ``GradingError`` if ``folder`` is not a folder
        (a link to one included) or ``student``/``assignment`` are not plain ids."""
        from ..inbound import intake
        for what, name, pattern in (("student", student, intake.STUDENT_ID), ("assignment", assignment,
                                                                           intake.ASSIGNMENT_ID)):
            if not pattern.fullmatch(name):
                raise GradingError(f"{name!r} is not a {what} id")
        dest = self.submitted(student, assignment)
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
