"""Tests of the tests: implementations of graded cells, held back from students, graded in
this process by a source notebook's test cells (hidden tests included).

One shape for every notebook's table: ``{test grade_id: {name: (right, answer)}}``, where
``answer`` is the full text of the student's cell and ``name`` says what it does (for a
wrong one, the mistake it makes). A right answer must keep the test's points; a wrong one
must lose them. ``answers(template, {name: (right, body)})`` fills a template, ``edited`` changes a solution
cell, ``own_solution`` is the notebook's own answer; ``params``
turns a table into pytest parameters; ``assert_graded`` is the one check.

Student code runs in this process: for tests of the tests only, never for grading students.
"""
from __future__ import annotations

import contextlib
import io
import textwrap
import warnings
from pathlib import Path
from typing import Any

import nbformat
import pytest

from autograder.course.cells import grade_id, is_test_cell, points
from autograder.course.config import REPO
from autograder.course.solutions import cell_source

Table = dict[str, dict[str, tuple[bool, str]]]


def answers(template: str, bodies: dict[str, tuple[bool, str]]) -> dict[str, tuple[bool, str]]:
    """``{name: (right, template.format(body))}``."""
    return {name: (right, template.format(body)) for name, (right, body) in bodies.items()}


def own_solution(assignment: str, gid: str) -> dict[str, tuple[bool, str]]:
    """The source notebook's own solution cell ``gid`` as a right answer, a table's first entry."""
    return {"the notebook's solution": (True, cell_source(assignment, gid))}


def edited(source: str, *swaps: tuple[str, str]) -> str:
    """``source`` (e.g. a notebook's solution cell) with each ``(old, new)`` replaced; every
    ``old`` must occur, so a planted edit cannot silently miss."""
    for old, new in swaps:
        assert old in source, f"the planted edit must apply: {old!r}"
        source = source.replace(old, new)
    return source


def params(table: Table) -> list:
    """pytest parameters ``(test, right, answer)``, one per held-back answer, named
    ``test-name``."""
    return [pytest.param(test, right, answer, id=f"{test}-{name}")
            for test, cases in table.items() for name, (right, answer) in cases.items()]


def with_answer(ns: dict[str, Any], source: str) -> dict[str, Any]:
    """A copy of ``ns`` in which a student's cell ``source`` has run."""
    ns = dict(ns)
    exec(compile(textwrap.dedent(source), "<student cell>", "exec", dont_inherit=True), ns)
    return ns


def grade_in_process(assignment: str, ns: dict[str, Any], answer: str | None = None,
                     tests: list[str] | None = None, notebooks: Path = REPO / "notebooks"
                     ) -> dict[str, float]:
    """Run the test cells of the source notebook against ``ns``, after the student's cell
    ``answer`` if given: ``{test grade_id: points earned}``.

    As in nbgrader, a test cell earns its points if it raises nothing; each runs in its own
    copy of the namespace. ``tests`` limits the run to those grade_ids.
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
    if tests is not None and set(tests) - set(earned):
        raise KeyError(f"{assignment} has no test cells {sorted(set(tests) - set(earned))}")
    return earned


def assert_graded(assignment: str, ns: dict[str, Any], test: str, answer: str, right: bool) -> None:
    """Test cell ``test`` gives the student's cell ``answer`` its points if ``right`` (a
    correct implementation) and none if not (a planted mistake)."""
    earned = grade_in_process(assignment, ns, answer, tests=[test])[test]
    assert (earned > 0) == right, f"{test}: {'a correct answer lost' if right else 'a mistake kept'} its points"


def stderr_of(assignment: str, ns: dict[str, Any], test: str) -> str:
    """What test cell ``test`` writes to stderr or warns about when run against ``ns`` (empty if
    nothing): nbgrader scores a test cell 0 if it wrote to stderr."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(cell_source(assignment, test), f"<{assignment} {test}>", "exec", dont_inherit=True), dict(ns))
    return err.getvalue() + "".join(f"{w.category.__name__}: {w.message}\n" for w in caught)
