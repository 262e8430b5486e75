"""The one loader of reference solutions: they live only in the source notebooks.

Tests and benchmarks that need a reference implementation run the source notebook's
code cells (test cells skipped) and take names from the resulting namespace. Cells are compiled
as a kernel compiles them: without this module's ``from __future__ import annotations`` (with
it, a notebook's ``@dataclass`` would look for its module in ``sys.modules``).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat

from .cells import grade_id, is_test_cell
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
