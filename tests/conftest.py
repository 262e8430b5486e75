"""Shared fixtures: a scratch nbgrader course over the real notebooks, grading helpers, and for
the notebook test modules the reference namespace (`solution`) and one CPU thread (`one_thread`)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

from autograder.course import submissions  # noqa: E402
from autograder.course.config import REPO  # noqa: E402
from autograder.course import gradebook  # noqa: E402
from autograder.course.course import Course  # noqa: E402
from autograder.course.gradebook import Score  # noqa: E402
from autograder.grading.grade import add_submission  # noqa: E402
from autograder.course.selfcheck import selfcheck  # noqa: E402
from autograder.course.solutions import load_solution  # noqa: E402
from helpers import runtime  # noqa: E402
from autograder.grading import sandbox  # noqa: E402

if not sandbox.available():  # a contributor's own machine, not root: the course's own tests, unsandboxed
    os.environ.setdefault(sandbox.NO_SANDBOX_ENV, "1")


@pytest.fixture(scope="session")
def course(tmp_path_factory) -> Course:
    """A throw-away course (own gradebook) whose sources are the repository's notebooks."""
    return Course(tmp_path_factory.mktemp("course"), notebooks=REPO / "notebooks")


@pytest.fixture(scope="session")
def released(course):
    """``released(assignment) -> Path`` of the student notebook, built once per session."""
    done: dict[str, Path] = {}

    def release(assignment: str) -> Path:
        if assignment not in done:
            done[assignment] = course.release(assignment)
        return done[assignment]
    return release


@pytest.fixture(scope="session")
def grade_planted(course, released, tmp_path_factory):
    """``grade_planted(assignment, student, overrides) -> (Score, {grade_id: auto_score})``.

    The student answers every solution cell with the reference solution, except the
    cells named in ``overrides`` (grade_id -> the student's text).
    """
    inbox = tmp_path_factory.mktemp("inbox")

    def grade(assignment: str, student: str, overrides: dict[str, str] | None = None
              ) -> tuple[Score, dict[str, float | None]]:
        nb = submissions.answered(released(assignment), course.source(assignment), overrides)
        path = submissions.write(nb, inbox, student, assignment)
        add_submission(course, path.parent, student, assignment)
        return course.autograde(assignment, student), gradebook.cell_scores(course.db_url, assignment, student)
    return grade


@pytest.fixture(scope="session")
def selfchecked(tmp_path_factory):
    """Selfcheck of every assignment, run once: ``{assignment: Check}``, plus the course."""
    root = tmp_path_factory.mktemp("selfcheck")
    checks = selfcheck(root, report=lambda line: None)
    return {c.assignment: c for c in checks}, Course(root)


@pytest.fixture(scope="module")
def one_thread():
    """torch on one CPU thread for the module's tests (as under grading); the old count after."""
    with runtime.threads(1):
        yield


@pytest.fixture(scope="module")
def solution(request, one_thread):
    """The reference namespace of a notebook test module: its notebook (``AID``) run up to the
    cell ``UNTIL`` (test cells skipped, grading budgets), on one thread, seeded."""
    module = request.module
    runtime.seed(0)
    return load_solution(module.AID, until=module.UNTIL)
