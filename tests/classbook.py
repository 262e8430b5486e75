"""A class of generated submissions of known quality, for tests/test_report.py and test_lms.py.

Written straight into a course's gradebook through nbgrader's API (``Gradebook``), without
grading: 20 students ``s00``..``s19`` submit notebook 00; test cell ``c`` gives student ``i``
its full points if ``PASSES[c](i)``, else 0; the written answers earn 2 points each for even
``i``; ``LATE`` students submit that many started days late (10 % per day off); the last two
could not be graded (0 points, autograded notebook from ``autograder.grading.workers.explain``). The
grade log holds ``30 + 2 i`` seconds for each. Five students also submit notebook 05, with full
marks, no grade log. ``s00`` and ``s01`` hand in the same (reference) answers to notebook 00;
the others submit the release unanswered.
"""
from __future__ import annotations

from datetime import datetime, timedelta

import nbformat
from nbgrader.api import Gradebook

from autograder.course import submissions
from autograder.course.config import REPO
from autograder.course.course import Course
from autograder.grading.grade import Result, log_times
from autograder.course.cells import grade_id, is_test_cell, points
from autograder.grading.workers import Outcome, explain, write_tree

AID, OTHER = "00_kl_elbo", "05_gan"
DUE = datetime(2027, 1, 15, 23, 59)
N, GRADED = 20, 18
STUDENTS = [f"s{i:02d}" for i in range(N)]
PASSES = {
    "test_kl_discrete": lambda i: True,                 # 100 %: flagged
    "test_kl_gauss_1d": lambda i: False,                # 0 %: flagged
    "test_kl_diag_gauss": lambda i: i < 9,              # 50 %
    "test_kl_to_standard_normal": lambda i: i % 3 != 0,  # 66.7 %
    "test_kl_normal": lambda i: i != 5,                 # 94.4 %: just not flagged
    "test_kl_full": lambda i: i % 2 == 0,               # 50 %
    "test_elbo": lambda i: i == 4,                      # 5.6 %: just not flagged
}
WRITTEN = 2.0                                           # points per written answer, for even i
LATE = {0: 1, 1: 2, 2: 3}                               # student -> started days late
REASONS = {18: "grading stopped after the 1800 s limit for one submission",
           19: "the submitted notebook is 25 MB; the course grades notebooks of up to 20 MB"}
OTHER_STUDENTS = 5


def seconds(i: int) -> float:
    return 30.0 + 2 * i


def email(i: int) -> str:
    return f"s{i:02d}@uni.example"


def build(root, db_url: str | None = None) -> Course:
    """The course at ``root`` (notebooks linked from the repository) holding the class, its
    gradebook at ``db_url`` (default: ``root/gradebook.db``)."""
    course = Course(root, notebooks=REPO / "notebooks", db_url=db_url,
                    due_dates={AID: f"{DUE:%Y-%m-%d %H:%M:%S}", OTHER: "2027-02-19 23:59:00"})
    released = course.release(AID)
    course.release(OTHER)
    with Gradebook(course.db_url) as gb:
        for i, student in enumerate(STUDENTS):
            gb.update_or_create_student(student, first_name=f"First{i}", last_name=f"Last{i}", email=email(i))
            late = LATE.get(i)
            when = DUE + timedelta(days=late, hours=-1) if late else DUE - timedelta(hours=i + 1)
            _submit(gb, AID, student, when, lambda g: _points(g, i), penalty=0.1 * (late or 0))
            if i < OTHER_STUDENTS:
                _submit(gb, OTHER, student, DUE + timedelta(days=30), lambda g: g.max_score)
    for i, reason in REASONS.items():
        write_tree(course.autograded(STUDENTS[i], AID), explain(Outcome(AID, STUDENTS[i], error=reason)))
    log_times(course, [Result(s, AID, seconds=seconds(i)) for i, s in enumerate(STUDENTS)])
    for i, student in enumerate(STUDENTS):
        nb = submissions.answered(released, course.source(AID)) if i < 2 else nbformat.read(released, as_version=4)
        submissions.write(nb, course.root / "submitted", student, AID)
    return course


def _points(grade, i: int) -> float:
    if i >= GRADED:
        return 0.0
    if grade.cell.cell_type == "markdown":
        return WRITTEN if i % 2 == 0 else 0.0
    return grade.max_score if PASSES[grade.name](i) else 0.0


def _submit(gb, assignment: str, student: str, when: datetime, points, penalty: float = 0.0) -> None:
    sub = gb.add_submission(assignment, student, timestamp=when)
    for nb in sub.notebooks:
        total = 0.0
        for g in nb.grades:
            score = points(g)
            if g.cell.cell_type == "markdown":
                g.manual_score = score
            else:
                g.auto_score = score
            g.needs_manual_grade = False
            total += score
        nb.late_submission_penalty = penalty * total
    gb.db.commit()


# What the report must show, worked out from the plan above (not from the gradebook).

def expected_score(i: int) -> float:
    """Student i's final score on notebook 00 (points less the late penalty)."""
    if i >= GRADED:
        return 0.0
    points = sum(p for c, p in TEST_POINTS.items() if PASSES[c](i)) + (len(WRITTEN_CELLS) * WRITTEN if i % 2 == 0 else 0)
    return points * (1 - 0.1 * LATE.get(i, 0))


_CELLS = nbformat.read(REPO / "notebooks" / AID / f"{AID}.ipynb", as_version=4).cells
TEST_POINTS = {grade_id(c): points(c) for c in _CELLS if is_test_cell(c)}
WRITTEN_CELLS = [grade_id(c) for c in _CELLS if c.cell_type == "markdown" and points(c)]  # WRITTEN points each
MAX_SCORE = sum(points(c) for c in _CELLS)
