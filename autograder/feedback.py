"""Feedback that tells students which tests failed and why, without showing hidden tests."""
from __future__ import annotations

import re

from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool

from .solutions import is_test_cell

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.S)
NOTE = "# (hidden tests ran here)"


class RedactHiddenTests(NbGraderPreprocessor):
    """In test cells: drop the hidden-test code, and cut error tracebacks (which quote the
    failing line) down to the exception's name and message."""

    enabled = Bool(True).tag(config=True)  # nbconvert skips preprocessors that are not enabled

    def preprocess_cell(self, cell, resources, index):
        if is_test_cell(cell) and HIDDEN.search(cell.source):
            cell.source = HIDDEN.sub(NOTE, cell.source)
            for out in cell.get("outputs", []):
                if out.output_type == "error":
                    out.traceback = [f"{out.ename}: {out.evalue}"]
        return cell, resources
