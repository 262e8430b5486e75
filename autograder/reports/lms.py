"""Grades for a learning management system: the gradebook as the CSV file Canvas or Moodle imports.

Both sheets have one row per student of the gradebook (its roster) and one column per assignment
with submissions, in course order, holding the final score (the score less the late penalty;
blank where the student submitted nothing). With ``per_question``, each assignment's column is
followed by one column per graded cell, ``"<assignment>: <grade_id>"``, holding that cell's
points (before the late penalty).

- ``canvas``: Canvas's Gradebook import CSV. Header ``Student, ID, SIS User ID, SIS Login ID,
  Section, <columns>``; then a ``Points Possible`` row with each column's maximum; then the
  students: ``Student`` is "Last, First" (the id without names), ``ID`` (Canvas's own number)
  is left blank, ``SIS User ID`` is the nbgrader student id, ``SIS Login ID`` the e-mail.
- ``moodle``: Moodle's grade import from a CSV file. Header ``ID number, Email address,
  First name, Last name, <columns>``; map users by "ID number" (the nbgrader student id) or
  "Email address" in Moodle's import form, and each column to a grade item.
- ``csv``: ``Course.export``, one row per student and assignment.
"""
from __future__ import annotations

import csv
from pathlib import Path

from nbgrader.api import Gradebook

from ..course import gradebook
from ..course.course import Course
from ..course.solutions import cell_order

FORMATS = ("csv", "canvas", "moodle")
CANVAS_IDS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_IDS = ["ID number", "Email address", "First name", "Last name"]
DEFAULT_OUT = {"csv": "grades.csv", "canvas": "grades-canvas.csv", "moodle": "grades-moodle.csv"}


def _number(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def table(course: Course, per_question: bool = False
          ) -> tuple[list[tuple[str, float]], list[dict[str, str]], dict[tuple[str, str], float]]:
    """``(columns, students, values)``: ``columns`` are ``(title, maximum)`` in order; ``students``
    are dicts with ``id, first_name, last_name, email`` (strings, '' when unknown), by id;
    ``values`` maps ``(student id, title)`` to points (absent: no submission)."""
    columns, values = [], {}
    with Gradebook(course.db_url) as gb:
        students = [{"id": s.id, "first_name": s.first_name or "", "last_name": s.last_name or "",
                     "email": s.email or ""} for s in sorted(gb.students, key=lambda s: s.id)]
        for a in sorted(gb.assignments, key=lambda a: a.name):
            if not a.submissions:
                continue
            columns.append((a.name, a.max_score))
            order = cell_order(a.name, course.root / "notebooks")
            cells = sorted((c for nb in a.notebooks for c in [*nb.grade_cells, *nb.task_cells]),
                           key=lambda c: (order.get(c.name, len(order)), c.name))
            if per_question:
                columns += [(f"{a.name}: {c.name}", c.max_score) for c in cells]
            for sub in a.submissions:
                values[sub.student.id, a.name] = sub.score - (sub.late_submission_penalty or 0.0)
                if per_question:
                    values.update({(sub.student.id, f"{a.name}: {g.name}"): g.score
                                   for nb in sub.notebooks for g in nb.grades})
    return columns, students, values


def _name(s: dict[str, str]) -> str:
    names = ", ".join(n for n in (s["last_name"], s["first_name"]) if n)
    return names or s["id"]


def write(course: Course, fmt: str, path: Path, per_question: bool = False) -> Path:
    """Write the gradebook in format ``fmt`` (one of ``FORMATS``) to ``path``."""
    if fmt == "csv":
        return gradebook.export(course.db_url, path)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    columns, students, values = table(course, per_question)
    titles = [t for t, _ in columns]
    path = Path(path)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if fmt == "canvas":
            w.writerow(CANVAS_IDS + titles)
            w.writerow(["Points Possible", "", "", "", ""] + [_number(m) for _, m in columns])
            ids = lambda s: [_name(s), "", s["id"], s["email"], ""]  # noqa: E731
        else:
            w.writerow(MOODLE_IDS + titles)
            ids = lambda s: [s["id"], s["email"], s["first_name"], s["last_name"]]  # noqa: E731
        for s in students:
            w.writerow(ids(s) + [_number(values[s["id"], t]) if (s["id"], t) in values else "" for t in titles])
    return path
