"""The nbgrader configuration of the course, built in code so every entry point shares it.

``nbgrader_config.py`` at the repository root applies the same settings for the
``nbgrader`` command line and the JupyterLab extensions.
"""
from __future__ import annotations

import os
from pathlib import Path

from traitlets.config import Config

from .schedule import REPO  # one definition: the calendar imports nothing of config (no cycle)
COURSE_ID = "dgm"
CELL_TIMEOUT_ENV = "DGM_CELL_TIMEOUT"
DEFAULT_CELL_TIMEOUT = 600  # seconds; training cells in grading mode stay well under this
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
EXCHANGE_ENV = "DGM_EXCHANGE"
# The gradebook: <root>/gradebook.db (SQLite) unless this names another database nbgrader
# takes (a SQLAlchemy URL, e.g. postgresql://user:password@host/dgm).
DB_ENV = "DGM_DB_URL"
# Release and due dates and the late penalty live in course.toml (autograder.course.schedule).


def apply(c: Config, root: Path = REPO) -> Config:
    """Set the course's nbgrader options on ``c`` for a course rooted at ``root``.

    The source notebooks are ``<root>/notebooks/<assignment>/<assignment>.ipynb``; the
    release, submissions, autograded copies and ``gradebook.db`` sit beside them.
    """
    c.CourseDirectory.root = str(Path(root).resolve())
    c.CourseDirectory.course_id = COURSE_ID
    if os.environ.get(DB_ENV):
        c.CourseDirectory.db_url = os.environ[DB_ENV]
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
    # A flood of output may still be arriving after a cell's reply: wait for it a while, then
    # go on with what came (raising would fail the whole notebook).
    c.Execute.iopub_timeout = 30
    c.Execute.raise_on_iopub_timeout = False
    c.OverwriteCells.add_missing_cells = True
    c.Autograde.sanitize_preprocessors = [
        "nbgrader.preprocessors.ClearOutput", "nbgrader.preprocessors.DeduplicateIds",
        "nbgrader.preprocessors.OverwriteKernelspec", "nbgrader.preprocessors.OverwriteCells",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    # Test cells run in the grading kernel's own runner (autograder.grading.guard explains why).
    c.Autograde.autograde_preprocessors = [
        "autograder.grading.guard.GuardedExecute", "nbgrader.preprocessors.IgnorePattern",
        "nbconvert.preprocessors.ClearMetadataPreprocessor", "nbgrader.preprocessors.LimitOutput",
        "nbgrader.preprocessors.SaveAutoGrades", "nbgrader.preprocessors.AssignLatePenalties",
        "nbgrader.preprocessors.CheckCellMetadata",
    ]
    c.AssignLatePenalties.plugin_class = "autograder.course.late.PerDayPenalty"
    from .schedule import Schedule  # the course file; a bad one stops here with what is wrong
    c.PerDayPenalty.fraction_per_day = Schedule.load().late_penalty_per_day
    # Feedback shows each test's verdict and message, never the hidden tests' code.
    c.GenerateFeedback.preprocessors = [
        "nbgrader.preprocessors.GetGrades",
        "autograder.feedback.redact.RedactHiddenTests",
        "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    ]
    # The exchange through which assignments are released, submitted and returned: a folder
    # shared by instructor and students (JupyterHub: a shared volume; one machine: the default).
    c.Exchange.root = os.environ.get(EXCHANGE_ENV) or str(Path(root).resolve() / "exchange")
    # The staff's collect takes a submission's student from its folder's owner, its time from the
    # system, and copies regular files only (no links, FIFOs, devices; sizes capped): autograder.inbound.collect.
    c.ExchangeFactory.collect = "autograder.inbound.collect.SafeCollect"
    # What a student wrote never runs in the formgrader or the feedback page (both HTMLExporter):
    # markdown, raw cells and HTML outputs cleaned by an allow-list, scripts dropped (autograder.feedback.sanitize).
    c.HTMLExporter.preprocessors = ["autograder.feedback.sanitize.SanitizeHTML"]
    return c


def gradebook_url(url: str | None = None, url_file: str | Path | None = None, warn=None) -> str | None:
    """The gradebook's URL given as ``--db-file PATH`` (its first line) or ``--db URL``; None if
    neither (then ``$DGM_DB_URL`` or the course's SQLite). ``warn(message)`` is told when the URL
    with its password is on the command line (every user of the machine reads it with ``ps``) or
    the file is readable by everyone. Raises ``ValueError`` if the file cannot be used."""
    import urllib.parse
    if url_file is not None:
        try:
            lines = [ln.strip() for ln in Path(url_file).read_text().splitlines() if ln.strip()]
            mode = os.stat(url_file).st_mode
        except OSError as e:
            raise ValueError(f"--db-file {url_file}: {e.strerror}") from None
        if not lines:
            raise ValueError(f"--db-file {url_file}: empty (one line: the database's URL)")
        if mode & 0o004 and warn:
            warn(f"{url_file} is readable by every user: chmod o-r it")
        return lines[0]
    if url and warn and urllib.parse.urlsplit(url).password:
        warn(f"--db puts the database's password on the command line, where every user of this machine "
             f"can read it (ps): use --db-file PATH or ${DB_ENV} instead")
    return url


def course_config(root: Path = REPO) -> Config:
    """A fresh ``Config`` for the course rooted at ``root``."""
    return apply(Config(), root)
