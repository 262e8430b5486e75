"""The nbgrader configuration of the course, built in code so every entry point shares it.

``nbgrader_config.py`` at the repository root applies the same settings for the
``nbgrader`` command line and the JupyterLab extensions.
"""
from __future__ import annotations

import os
from pathlib import Path

from traitlets.config import Config

REPO = Path(__file__).resolve().parents[1]
COURSE_ID = "dgm"
CELL_TIMEOUT_ENV = "DGM_CELL_TIMEOUT"
DEFAULT_CELL_TIMEOUT = 600  # seconds; training cells in grading mode stay well under this
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"


def apply(c: Config, root: Path = REPO) -> Config:
    """Set the course's nbgrader options on ``c`` for a course rooted at ``root``.

    The source notebooks are ``<root>/notebooks/<assignment>/<assignment>.ipynb``; the
    release, submissions, autograded copies and ``gradebook.db`` sit beside them.
    """
    c.CourseDirectory.root = str(Path(root).resolve())
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.source_directory = "notebooks"
    # Files a notebook run leaves next to a source notebook never ship to students.
    c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback",
                                "results", "out_*", "*.pt", "*.ckpt"]
    c.ClearSolutions.code_stub = {"python": CODE_STUB}
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    # Grading: a known kernel, a per-cell limit that fits the short grading budgets,
    # and deleted test cells put back so they are graded (to 0) rather than skipped.
    c.Execute.timeout = int(os.environ.get(CELL_TIMEOUT_ENV, DEFAULT_CELL_TIMEOUT))
    c.Execute.kernel_name = "python3"
    c.OverwriteCells.add_missing_cells = True
    return c


def course_config(root: Path = REPO) -> Config:
    """A fresh ``Config`` for the course rooted at ``root``."""
    return apply(Config(), root)
