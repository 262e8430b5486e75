"""Feedback that tells students which tests failed and why, without showing hidden tests."""
from __future__ import annotations

import re

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool

from .solutions import is_test_cell

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.S)
NOTE = "# (hidden tests ran here)"
REMOVED = "[output removed: it quoted the hidden tests]\n"
MIN_LINE = 12  # shorter lines (``else:``, ``x = 1``) say nothing about a test


def distinctive_lines(secret: str, public: str = "") -> set[str]:
    """Lines of ``secret`` that would give it away: stripped, at least ``MIN_LINE`` characters,
    not comments, and not also in ``public`` (what students see anyway)."""
    seen = {line.strip() for line in public.splitlines()}
    return {s for line in secret.splitlines() if len(s := line.strip()) >= MIN_LINE
            and not s.startswith("#") and s not in seen}


def hidden_lines(nb) -> set[str]:
    """The distinctive lines of a notebook's hidden tests."""
    secret = "\n".join(m.group(0) for c in nb.cells if is_test_cell(c) for m in HIDDEN.finditer(c.source))
    public = "\n".join(HIDDEN.sub("", c.source) for c in nb.cells)
    return distinctive_lines(secret, public)


def _text(out) -> str:
    parts = [out.get("text", ""), out.get("evalue", ""), *out.get("traceback", [])]
    parts += [v if isinstance(v, str) else str(v) for v in out.get("data", {}).values()]
    return "\n".join(p if isinstance(p, str) else "".join(p) for p in parts)


class RedactHiddenTests(NbGraderPreprocessor):
    """Drop the hidden-test code from test cells and cut their tracebacks (which quote the
    failing line) to the exception's name and message; in every cell, replace any output that
    quotes a line of the hidden tests."""

    enabled = Bool(True).tag(config=True)  # nbconvert skips preprocessors that are not enabled

    def preprocess(self, nb, resources):
        self._lines = hidden_lines(nb)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        hidden = is_test_cell(cell) and HIDDEN.search(cell.source)
        if hidden:
            cell.source = HIDDEN.sub(NOTE, cell.source)
        outputs = []
        for out in cell.get("outputs", []):
            if hidden and out.output_type == "error":
                out.traceback = [f"{out.ename}: {out.evalue}"]
            if any(line in _text(out) for line in self._lines):
                if out.output_type == "error":
                    out.evalue, out.traceback = "(message removed)", [f"{out.ename}: (message removed)"]
                else:
                    out = nbformat.from_dict({"output_type": "stream", "name": "stderr", "text": REMOVED})
            outputs.append(out)
        if "outputs" in cell:
            cell.outputs = outputs
        return cell, resources
