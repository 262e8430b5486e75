"""Source notebooks are well-formed nbgrader notebooks; their release gives nothing away."""
from __future__ import annotations

import re

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator

from autograder.config import CODE_STUB, REPO
from autograder.course import Course

SOURCES = sorted((REPO / "notebooks").glob("*/*.ipynb"))
ASSIGNMENTS = [p.stem for p in SOURCES]
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def between(text: str, begin: str, end: str) -> list[str]:
    """The meaningful lines between each begin/end marker pair."""
    blocks = re.findall(re.escape(begin) + r"(.*?)" + re.escape(end), text, flags=re.S)
    return [ln.strip() for b in blocks for ln in b.splitlines() if len(ln.strip()) > 12]


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
    ids = [meta(c)["grade_id"] for c in nb.cells if meta(c)]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    for cell in nb.cells:
        m = meta(cell)
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "commit with outputs cleared"
        if m.get("solution") and cell.cell_type == "code":
            assert cell.source.count(BEGIN_SOLUTION) == cell.source.count(END_SOLUTION) >= 1, m["grade_id"]
        if m.get("grade"):
            assert m["points"] > 0, m["grade_id"]
        if m.get("grade") and not m.get("solution"):
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
    secret = [ln for c in source.cells for ln in between(c.source, BEGIN_SOLUTION, END_SOLUTION)
              + between(c.source, BEGIN_HIDDEN, END_HIDDEN)]
    assert secret, "the source should have solutions and hidden tests"
    public = "\n".join(re.sub(rf"{BEGIN_SOLUTION}.*?{END_SOLUTION}|{BEGIN_HIDDEN}.*?{END_HIDDEN}", "",
                               c.source, flags=re.S) for c in source.cells)
    leaked = [ln for ln in secret if ln in text and ln not in public]  # a line may also be visible
    assert not leaked, f"release shows solution/hidden-test lines: {leaked[:3]}"
    for cell in student.cells:
        if meta(cell).get("solution"):
            assert (CODE_STUB.splitlines()[-1] in cell.source if cell.cell_type == "code"
                    else cell.source == "YOUR ANSWER HERE")
