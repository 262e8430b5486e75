"""nbgrader's cell metadata (``cell.metadata["nbgrader"]``, schema 3), read in one place.

| cell | grade | solution | locked |
|---|---|---|---|
| given code or text | false | false | true |
| answer (code), autograded by tests | false | true | false |
| test (code) with ``points`` | true | false | true |
| written answer (markdown), graded by hand, with ``points`` | true | true | false |
"""
from __future__ import annotations


def meta(cell) -> dict:
    """The cell's nbgrader metadata (empty for a plain cell)."""
    return cell.metadata.get("nbgrader", {})


def grade_id(cell) -> str | None:
    return meta(cell).get("grade_id")


def is_test_cell(cell) -> bool:
    """A code cell of tests (its points are autograded)."""
    m = meta(cell)
    return cell.cell_type == "code" and bool(m.get("grade")) and not m.get("solution")


def is_solution_cell(cell) -> bool:
    """A cell the student writes in (code answers and written answers)."""
    return bool(meta(cell).get("solution"))


def is_graded(cell) -> bool:
    """A cell that carries points or an answer: a test, an answer or a written answer."""
    m = meta(cell)
    return bool(m.get("grade") or m.get("solution"))


def points(cell) -> float:
    """The points of a graded cell (0 for the others)."""
    return float(meta(cell).get("points", 0))
