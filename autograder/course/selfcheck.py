"""Selfcheck: each solution notebook must earn full marks and its stubbed release none.

Full marks but for one kind of cell: a test cell graded on a scale (it ends with the points it
gives, nbgrader's partial credit) may give the solution part of its points, as long as it gives
some. Notebook 04's lab-guide grades are such cells: the generation formula's cap is out of any
model's reach, the reference's included. Every other test cell must give the solution all of
its points.

Runs in a throw-away course (own gradebook) over the real source notebooks.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .cells import grade_id, is_test_cell, points
from .config import REPO
from . import gradebook
from .course import Course
from .gradebook import Score


@dataclass
class Check:
    assignment: str
    solution: Score
    stub: Score
    solution_errors: list[str]  # cells of the solution run that raised
    # test cells that gave the solution part of their points: grade_id -> (earned, points)
    partial: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        shortfall = sum(pts - got for got, pts in self.partial.values())
        return (self.solution.auto_max > 0 and abs(self.solution.auto + shortfall - self.solution.auto_max) < 1e-6
                and all(0 < got < pts for got, pts in self.partial.values())
                and self.stub.auto == 0 and not self.solution_errors)

    def line(self) -> str:
        status = "ok" if self.ok else "FAIL"
        errors = f"; errors in solution run: {', '.join(self.solution_errors)}" if self.solution_errors else ""
        scale = (" (on a scale: " + ", ".join(f"{g} {got:.2f}/{pts:g}" for g, (got, pts) in self.partial.items()) + ")"
                 if self.partial else "")
        return (f"{self.assignment}: solution {self.solution.auto:g}/{self.solution.auto_max:g}{scale}, "
                f"stub {self.stub.auto:g}/{self.stub.auto_max:g} -> {status}{errors}")


def error_cells(notebook: Path) -> list[str]:
    """Ids of the cells whose outputs hold an error in an executed notebook."""
    nb = nbformat.read(notebook, as_version=4)
    return [grade_id(c) or c.get("id", "?")
            for c in nb.cells if c.cell_type == "code"
            and any(o.output_type == "error" for o in c.outputs)]


def partial_credit(course: Course, assignment: str, student: str) -> dict[str, tuple[float, float]]:
    """The test cells that gave ``student`` more than 0 and less than their points, as
    ``grade_id -> (earned, points)``: cells graded on a scale (a pass/fail test gives all or nothing)."""
    earned = gradebook.cell_scores(course.db_url, assignment, student)
    cells = nbformat.read(course.source(assignment), as_version=4).cells
    out = {}
    for cell in cells:
        gid = grade_id(cell)
        if is_test_cell(cell) and earned.get(gid) is not None and 0 < earned[gid] < points(cell):
            out[gid] = (float(earned[gid]), float(points(cell)))
    return out


def selfcheck(workdir: Path, assignments: list[str] | None = None,
              notebooks: Path = REPO / "notebooks", report=print) -> list[Check]:
    """Grade the solution and the stub of each assignment in a course at ``workdir``."""
    course = Course(workdir, notebooks=notebooks)
    checks = []
    for aid in assignments or course.assignments():
        release = course.release(aid)
        scores = {}
        for student, src in (("solution", course.source(aid).parent), ("stub", release.parent)):
            dest = course.submitted(student, aid)
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(src, dest)
            scores[student] = course.autograde(aid, student)
        errors = error_cells(course.autograded("solution", aid) / f"{aid}.ipynb")
        checks.append(Check(aid, scores["solution"], scores["stub"], errors,
                            partial_credit(course, aid, "solution")))
        report(checks[-1].line())
    return checks
