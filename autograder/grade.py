"""Grade a folder of submissions laid out as ``<dir>/<student>/<assignment>/<notebook>.ipynb``."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .course import Course, GradingError, Score


@dataclass
class Result:
    """The outcome of grading one submission: a score, or the reason there is none."""
    student: str
    assignment: str
    score: Score | None = None
    error: str | None = None

    def line(self) -> str:
        if self.score is None:
            return f"{self.student}/{self.assignment}: NOT GRADED: {self.error}"
        s = self.score
        manual = " (+ manual grading pending)" if s.needs_manual_grade else ""
        return f"{self.student}/{self.assignment}: autograded {s.auto:g}/{s.auto_max:g}{manual}"


def find_submissions(folder: Path) -> list[tuple[str, str, Path]]:
    """``(student, assignment, path)`` for every ``<folder>/<student>/<assignment>/`` directory."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GradingError(f"no such folder of submissions: {folder}")
    return [(s.name, a.name, a) for s in sorted(folder.iterdir()) if s.is_dir()
            and not s.name.startswith(".") for a in sorted(s.iterdir()) if a.is_dir()]


def grade_folder(course: Course, folder: Path, assignments: list[str] | None = None,
                 progress: bool = True) -> list[Result]:
    """Autograde every submission in ``folder`` into the course gradebook.

    A submission that cannot be graded (unknown assignment, missing or unreadable
    notebook) becomes a ``Result`` with an error; the others are graded regardless.
    """
    results = []
    subs = [s for s in find_submissions(folder) if assignments is None or s[1] in assignments]
    for student, assignment, path in tqdm(subs, desc="grading", unit="submission", disable=not progress):
        result = Result(student, assignment)
        try:
            course.check_assignment(assignment)
            if not (path / f"{assignment}.ipynb").is_file():
                raise GradingError(f"no {assignment}.ipynb in {path}")
            course.add_submission(path, student, assignment)
            result.score = course.autograde(assignment, student)
        except GradingError as e:
            result.error = str(e)
        results.append(result)
    return results
