"""Source notebooks are well-formed nbgrader notebooks; their release gives nothing away."""
from __future__ import annotations

import re

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator

from autograder.cells import grade_id, is_solution_cell, is_test_cell, meta
from autograder.config import CODE_STUB, REPO
from autograder.course import Course
from autograder.leaks import secret_lines

SOURCES = sorted((REPO / "notebooks").glob("*/*.ipynb"))
ASSIGNMENTS = [p.stem for p in SOURCES]
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def test_course_has_notebook_00_and_ordered_names():
    assert ASSIGNMENTS[0] == "00_kl_elbo"
    for p in SOURCES:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+", p.stem) and p.parent.name == p.stem


@pytest.mark.parametrize("path", SOURCES, ids=ASSIGNMENTS)
def test_source_notebook_is_clean_nbgrader_source(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    MetadataValidator().validate_nb(nb)
    assert nb.metadata.kernelspec.name == "python3"
    ids = [grade_id(c) for c in nb.cells if meta(c)]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    for cell in nb.cells:
        m = meta(cell)
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "commit with outputs cleared"
        if is_solution_cell(cell) and cell.cell_type == "code":
            assert cell.source.count(BEGIN_SOLUTION) == cell.source.count(END_SOLUTION) >= 1, m["grade_id"]
        if m.get("grade"):
            assert m["points"] > 0, m["grade_id"]
        if is_test_cell(cell):
            assert m["locked"], f"test cell {m['grade_id']} must be locked"
        assert cell.source.count(BEGIN_HIDDEN) == cell.source.count(END_HIDDEN)
    assert any(meta(c).get("grade") and c.cell_type == "code" for c in nb.cells), "no autograded tests"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_contains_no_solution_and_no_hidden_test(course: Course, released, assignment):
    source = nbformat.read(course.source(assignment), as_version=4)
    student = nbformat.read(released(assignment), as_version=4)
    text = "\n".join(c.source for c in student.cells)
    for marker in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN):
        assert marker not in text
    secret = secret_lines(source)
    assert secret, "the source should have solutions and hidden tests"
    leaked = secret & {line.strip() for line in text.splitlines()}
    assert not leaked, f"release shows solution/hidden-test lines: {sorted(leaked)[:3]}"
    for cell in student.cells:
        if is_solution_cell(cell):
            assert (CODE_STUB.splitlines()[-1] in cell.source if cell.cell_type == "code"
                    else cell.source == "YOUR ANSWER HERE")
