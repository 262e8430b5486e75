"""Build student submissions from the release: answered with the reference solution,
with planted mistakes, or left as stubs. Used by tests and benchmarks."""
from __future__ import annotations

from pathlib import Path

import nbformat

from .cells import grade_id, is_solution_cell


def answered(released: Path, source: Path, overrides: dict[str, str] | None = None):
    """The released notebook with every solution cell filled from ``source``.

    ``overrides`` maps a solution cell's grade_id to the text a student wrote instead
    (a planted mistake). Returns a ``NotebookNode``.
    """
    overrides = dict(overrides or {})
    reference = {grade_id(c): c.source for c in nbformat.read(source, as_version=4).cells if grade_id(c)}
    nb = nbformat.read(released, as_version=4)
    for cell in nb.cells:
        gid = grade_id(cell)
        if is_solution_cell(cell):
            cell.source = overrides.pop(gid, reference[gid])
    if overrides:
        raise KeyError(f"no solution cells named {sorted(overrides)}")
    return nb


def write(nb, folder: Path, student: str, assignment: str) -> Path:
    """Save ``nb`` as ``folder/<student>/<assignment>/<assignment>.ipynb``."""
    path = Path(folder) / student / assignment / f"{assignment}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
