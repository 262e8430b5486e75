"""Feedback that tells students which tests failed and why, without showing hidden tests."""
from __future__ import annotations

import ast
import re

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool

from .leaks import HIDDEN, hidden_lines
from ..course.cells import is_test_cell

NOTE = "# (hidden tests ran here)"
REMOVED = "[output removed: it quoted the hidden tests]\n"


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


# --- the feedback service's early feedback: hidden tests' messages masked (autograder.service) ----

def visible_messages(source: str) -> list[re.Pattern]:
    """Patterns of the messages the visible asserts of a test cell can raise (an f-string's
    fields match anything)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assert) or node.msg is None:
            continue
        if isinstance(node.msg, ast.Constant) and isinstance(node.msg.value, str):
            out.append(re.compile(re.escape(node.msg.value), re.S))
        elif isinstance(node.msg, ast.JoinedStr):
            out.append(re.compile("".join(re.escape(v.value) if isinstance(v, ast.Constant) else ".*"
                                          for v in node.msg.values), re.S))
    return out


def mask_hidden_messages(nb) -> int:
    """Replace the failure message of every test cell with hidden tests by ``failed``, unless a
    visible assert of the cell carries it. Returns how many were replaced."""
    count = 0
    for cell in nb.cells:
        if not is_test_cell(cell) or not HIDDEN.search(cell.source):
            continue
        visible = visible_messages(cell.source.split("### BEGIN HIDDEN TESTS", 1)[0])
        for out in cell.get("outputs", []):
            if out.output_type == "error" and not any(p.fullmatch(str(out.get("evalue", ""))) for p in visible):
                out.evalue, out.traceback = "failed", [f"{out.get('ename', 'Error')}: failed"]
                count += 1
    return count
