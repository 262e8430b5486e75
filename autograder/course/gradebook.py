"""The course's gradebook as the staff read and fill it: a submission's ``Score``, the scores of
every graded cell, the roster in, our CSV of grades out. Each function takes the gradebook's
SQLAlchemy URL (``Course.db_url``: the course's SQLite, or the class's PostgreSQL)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook


class RosterError(ValueError):
    """A roster file that cannot be read as one."""


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


def score(db_url: str, assignment: str, student: str) -> Score:
    with Gradebook(db_url) as gb:
        return _score(gb.find_submission(assignment, student))


def _score(sub) -> Score:
    """The ``Score`` of nbgrader's ``SubmittedAssignment`` ``sub`` (its gradebook still open)."""
    grades = [g for nb in sub.notebooks for g in nb.grades]
    auto = [g for g in grades if g.cell.cell_type == "code"]
    return Score(
        assignment=sub.assignment.name, student=sub.student.id,
        auto=sum(g.auto_score or 0.0 for g in auto),
        auto_max=sum(g.max_score for g in auto),
        score=sub.score, max_score=sub.max_score,
        needs_manual_grade=sub.needs_manual_grade,
        late_penalty=sub.late_submission_penalty or 0.0,
        timestamp=str(sub.timestamp or ""),
    )


def cell_scores(db_url: str, assignment: str, student: str) -> dict[str, float | None]:
    """``grade_id -> auto_score`` of every graded cell (None for manually graded ones)."""
    with Gradebook(db_url) as gb:
        sub = gb.find_submission(assignment, student)
        return {g.name: g.auto_score for nb in sub.notebooks for g in nb.grades}


def scores(db_url: str) -> list[Score]:
    """Every submission in the gradebook, in course order, then by student."""
    with Gradebook(db_url) as gb:  # one session for the whole class
        found = [_score(s) for a in gb.assignments for s in a.submissions]
    return sorted(found, key=lambda s: (s.assignment, s.student))


def import_roster(db_url: str, path: Path) -> int:
    """Add or update the students of a CSV with columns ``id`` and optionally ``first_name``,
    ``last_name``, ``email`` (nbgrader's format). Returns the count; raises ``RosterError``."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise RosterError(f"{path}: {getattr(e, 'strerror', None) or e}") from None
    if not rows or "id" not in rows[0]:
        raise RosterError(f"{path}: a roster needs a header row with an 'id' column")
    with Gradebook(db_url) as gb:
        for row in rows:
            gb.update_or_create_student(row["id"].strip(), **{
                k: row[k].strip() or None for k in ("first_name", "last_name", "email") if k in row})
    return len(rows)


def export(db_url: str, path: Path) -> Path:
    """Write our CSV of grades (``grades.csv``): one row per student and assignment, ``Score``'s fields."""
    fields = list(Score.__dataclass_fields__)
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for s in scores(db_url):
            w.writerow({k: getattr(s, k) for k in fields})
    return path
