"""Source notebooks are well-formed nbgrader notebooks; their release gives nothing away."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbgrader.nbgraderformat import MetadataValidator

from autograder.course.cells import grade_id, is_solution_cell, is_test_cell, meta
from autograder.course.config import CODE_STUB, REPO
from autograder.course.course import Course
from autograder.feedback.leaks import secret_lines

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


# --- what the text says: nothing students cannot read, no claim that is false ------------------
# Documents the course draws on but does not hand out: a student cannot look them up, so the
# notebook must say what it means itself (CS236, a public course, may be named).
ELSEWHERE = re.compile(r"Project 3|lab guide|the guide's|guide §|manifold report|footnote|\bTask [ABC]\b|the homework's",
                       re.IGNORECASE)
EQUALITY = re.compile(r"`([^`\n]*==[^`\n]*)`")  # `0.3 / 0.1 == 2.9999999999999996`
IS_VALUE = re.compile(r"`([^`\n]+)`\s+is\s+`([^`\n]+)`")  # `torch.sigmoid(torch.tensor(-120.))` is `0`


def public_markdown(path: Path) -> list[tuple[str, str]]:
    """``(grade_id or position, source)`` of the markdown cells students see (not reference answers)."""
    nb = nbformat.read(path, as_version=4)
    return [(grade_id(c) or str(i), c.source) for i, c in enumerate(nb.cells)
            if c.cell_type == "markdown" and not is_solution_cell(c)]


def arithmetic(expr: str):
    """The value of an expression of number literals and + - * / ** (None if it is anything else)."""
    import ast
    tree = ast.parse(expr, mode="eval")
    allowed = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Compare, ast.Add, ast.Sub, ast.Mult,
               ast.Div, ast.Pow, ast.USub, ast.UAdd, ast.Eq)
    if not all(isinstance(n, allowed) for n in ast.walk(tree)):
        return None
    return eval(compile(tree, "<claim>", "eval"), {"__builtins__": {}})


@pytest.mark.parametrize("path", SOURCES, ids=ASSIGNMENTS)
def test_text_names_no_document_that_is_not_part_of_the_course(path):
    for gid, source in public_markdown(path):
        found = ELSEWHERE.findall(source)
        assert not found, f"{gid} refers to {found}: say what is meant in the notebook itself"


def test_numeric_claims_in_the_text_hold():
    """Every `a == b` of number literals in a notebook's text is true in Python, and every
    `expression` is `value` that runs without the notebook's own names gives that value."""
    import math

    import torch
    checked = 0
    for path in SOURCES:
        for gid, source in public_markdown(path):
            for claim in EQUALITY.findall(source):
                value = arithmetic(claim)
                if value is not None:
                    assert value is True, f"{path.stem} {gid}: `{claim}` is false in Python"
                    checked += 1
            for expr, want in IS_VALUE.findall(source):
                try:
                    got = eval(expr, {"torch": torch, "math": math})  # the course's own text, not a student's
                except NameError:
                    continue  # uses the notebook's own functions (its tests check those)
                got = got.tolist() if isinstance(got, torch.Tensor) else got
                assert got == arithmetic(want), f"{path.stem} {gid}: `{expr}` is {got}, the text says {want}"
                checked += 1
    assert checked >= 3, "the claims this test is for were not found"
