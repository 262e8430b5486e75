"""The one loader of reference solutions: they live only in the source notebooks.

Tests and benchmarks that need a reference implementation run the source notebook's
code cells (test cells skipped) and take names from the resulting namespace. Cells are compiled
as a kernel compiles them: without this module's ``from __future__ import annotations`` (with
it, a notebook's ``@dataclass`` would look for its module in ``sys.modules``).
"""
from __future__ import annotations

import os
import textwrap
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat

from .cells import grade_id, is_test_cell, points
from .config import REPO


@contextmanager
def _env(**values: str):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def load_solution(assignment: str, until: str | None = None, grading: bool = True,
                  notebooks: Path = REPO / "notebooks") -> dict[str, Any]:
    """Execute the source notebook of ``assignment`` and return its global namespace.

    Test cells are skipped. ``until`` stops after the cell with that grade_id (so a test
    that needs an early function does not pay for later training). With ``grading``,
    ``NBGRADER_EXECUTION`` is set as nbgrader sets it, so training budgets are short.
    """
    path = Path(notebooks) / assignment / f"{assignment}.ipynb"
    nb = nbformat.read(path, as_version=4)
    ns: dict[str, Any] = {"__name__": f"solution_{assignment}"}
    env = {"NBGRADER_EXECUTION": "autograde", "MPLBACKEND": "Agg"} if grading else {"MPLBACKEND": "Agg"}
    with _env(**env):
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and not is_test_cell(cell):
                exec(compile(cell.source, f"<{assignment} cell {grade_id(cell) or i}>", "exec", dont_inherit=True), ns)
            if until is not None and grade_id(cell) == until:
                return ns
    if until is not None:
        raise KeyError(f"{assignment} has no cell with grade_id {until!r}")
    return ns


def cell_source(assignment: str, gid: str, notebooks: Path = REPO / "notebooks") -> str:
    """The source of the cell with grade_id ``gid`` in the source notebook."""
    nb = nbformat.read(Path(notebooks) / assignment / f"{assignment}.ipynb", as_version=4)
    try:
        return next(c.source for c in nb.cells if grade_id(c) == gid)
    except StopIteration:
        raise KeyError(f"{assignment} has no cell with grade_id {gid!r}") from None


def cell_order(assignment: str, notebooks: Path = REPO / "notebooks") -> dict[str, int]:
    """``grade_id -> position`` of the cells in the source notebook (empty if it is missing)."""
    path = Path(notebooks) / assignment / f"{assignment}.ipynb"
    cells = nbformat.read(path, as_version=4).cells if path.is_file() else []
    return {gid: i for i, c in enumerate(cells) if (gid := grade_id(c))}


def with_answer(ns: dict[str, Any], source: str) -> dict[str, Any]:
    """A copy of ``ns`` in which a student's cell ``source`` has run."""
    ns = dict(ns)
    exec(compile(textwrap.dedent(source), "<student cell>", "exec", dont_inherit=True), ns)
    return ns


def grade_in_process(assignment: str, ns: dict[str, Any], answer: str | None = None,
                     tests: list[str] | None = None, notebooks: Path = REPO / "notebooks"
                     ) -> dict[str, float]:
    """Run the test cells (hidden tests included) of the source notebook against ``ns``,
    after the student's cell ``answer`` if given: ``{test grade_id: points earned}``.

    As in nbgrader, a test cell earns its points if it raises nothing; each runs in its own
    copy of the namespace. ``tests`` limits the run to those grade_ids. For tests of the
    tests (planted mistakes), not for grading students: student code runs in this process.
    """
    student = with_answer(ns, answer) if answer is not None else ns
    nb = nbformat.read(Path(notebooks) / assignment / f"{assignment}.ipynb", as_version=4)
    earned = {}
    for cell in nb.cells:
        gid = grade_id(cell)
        if is_test_cell(cell) and (tests is None or gid in tests):
            try:
                exec(compile(cell.source, f"<{assignment} {gid}>", "exec", dont_inherit=True), dict(student))
                earned[gid] = points(cell)
            except Exception:
                earned[gid] = 0.0
    return earned


def assert_graded(assignment: str, ns: dict[str, Any], gid: str, answer: str, right: bool) -> None:
    """Tests of the tests: test cell ``gid`` must give the student's cell ``answer`` its points
    if ``right`` (another correct implementation) and none if not (a planted mistake)."""
    earned = grade_in_process(assignment, ns, answer, tests=[gid])[gid]
    assert (earned > 0) == right, f"{gid}: {'a correct answer lost' if right else 'a mistake kept'} its points"
