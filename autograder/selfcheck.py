"""Selfcheck: each solution notebook must earn full marks and its stubbed release none.

Runs in a throw-away course (own gradebook) over the real source notebooks.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .cells import grade_id
from .config import REPO
from .course import Course, Score


@dataclass
class Check:
    assignment: str
    solution: Score
    stub: Score
    solution_errors: list[str]  # cells of the solution run that raised

    @property
    def ok(self) -> bool:
        return (self.solution.auto == self.solution.auto_max > 0 and self.stub.auto == 0
                and not self.solution_errors)

    def line(self) -> str:
        status = "ok" if self.ok else "FAIL"
        errors = f"; errors in solution run: {', '.join(self.solution_errors)}" if self.solution_errors else ""
        return (f"{self.assignment}: solution {self.solution.auto:g}/{self.solution.auto_max:g}, "
                f"stub {self.stub.auto:g}/{self.stub.auto_max:g} -> {status}{errors}")


def error_cells(notebook: Path) -> list[str]:
    """Ids of the cells whose outputs hold an error in an executed notebook."""
    nb = nbformat.read(notebook, as_version=4)
    return [grade_id(c) or c.get("id", "?")
            for c in nb.cells if c.cell_type == "code"
            and any(o.output_type == "error" for o in c.outputs)]


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
        checks.append(Check(aid, scores["solution"], scores["stub"], errors))
        report(checks[-1].line())
    return checks
