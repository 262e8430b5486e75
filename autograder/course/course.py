"""The course on disk and nbgrader's steps over it: release, autograde, feedback (its gradebook: ``gradebook``)."""
from __future__ import annotations

import re
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

from . import gradebook
from .config import REPO, course_config
from .gradebook import Score
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
        return gradebook.score(self.db_url, assignment, student)

    def feedback(self, assignment: str, student: str) -> Path:
        """Generate the feedback of a graded submission; returns its HTML file."""
        self._check(self.api.generate_feedback(assignment, student, force=True), f"feedback {student}/{assignment}")
        return self.root / "feedback" / student / assignment / f"{assignment}.html"
