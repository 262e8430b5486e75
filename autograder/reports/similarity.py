"""Similarity between students' submissions of one assignment, by winnowed fingerprints
(``copydetect``).

Only what students wrote is compared: the code cells whose nbgrader metadata has
``solution: true``, taken from the submitted notebooks, less every line the released stub of
that cell already holds (signatures, docstrings, given code, the ``YOUR CODE HERE`` marker);
the stub's fingerprints are also passed to copydetect as boilerplate. Written (markdown)
answers are not compared. copydetect tokenizes the code with Pygments, drops comments and
whitespace, replaces every name by ``V`` (so renaming changes nothing) and fingerprints
k-grams of what is left (so moving whole statements keeps most of them).
"""
from __future__ import annotations

import html
import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
from copydetect import CodeFingerprint, compare_files
from copydetect.utils import highlight_overlap

from ..course.course import Course
from ..course.cells import grade_id, is_solution_cell

# copydetect's defaults: a match must span 25 characters of filtered code (noise threshold),
# every such match is found (guarantee threshold 25, so a winnowing window of 1).
K, WINDOW = 25, 1
# A pair is listed when this share of either side's fingerprinted code is found in the other.
THRESHOLD = 0.5


@dataclass
class Pair:
    """Two students whose solution regions overlap: ``similarity`` is the larger of the two
    shares (0..1) of one side's fingerprinted code found in the other; ``left``/``right`` are
    the two texts as HTML with the shared parts in ``<mark>``."""
    assignment: str
    a: str
    b: str
    similarity: float
    left: str
    right: str


def _is_solution(cell) -> bool:
    return cell.cell_type == "code" and is_solution_cell(cell)


def solution_text(nb, stub) -> str:
    """The code a student wrote in ``nb``'s solution cells, without the lines the same cell of the
    released notebook ``stub`` holds; one ``# <grade_id>`` header per cell with code left."""
    given = {grade_id(c): {ln.strip() for ln in c.source.splitlines()} for c in stub.cells if _is_solution(c)}
    parts = []
    for cell in nb.cells:
        if _is_solution(cell):
            stub_lines = given.get(grade_id(cell), set())
            own = [ln for ln in cell.source.splitlines() if ln.strip() and ln.strip() not in stub_lines]
            if own:
                parts.append(f"# {grade_id(cell)}\n" + "\n".join(own))
    return "\n\n".join(parts)


def _fingerprint(name: str, text: str, boilerplate=None) -> CodeFingerprint:
    return CodeFingerprint(f"{name}.py", K, WINDOW, boilerplate=boilerplate, language="python",
                           fp=io.StringIO(text))


def compare(texts: dict[str, str], stub: str = "", assignment: str = "",
            threshold: float = THRESHOLD) -> list[Pair]:
    """Every pair of ``texts`` (student -> solution text) at or above ``threshold``, most similar
    first. ``stub``: the release's solution cells, whose fingerprints are ignored."""
    boilerplate = np.array(sorted(_fingerprint("stub", stub).hashes)) if stub.strip() else None
    prints = {s: _fingerprint(s, t, boilerplate) for s, t in sorted(texts.items()) if t.strip()}
    pairs = []
    for a, b in itertools.combinations(prints, 2):
        _, sims, slices = compare_files(prints[a], prints[b])
        if max(sims) >= threshold:
            left, right = (_marked(prints[s].raw_code, sl) for s, sl in ((a, slices[0]), (b, slices[1])))
            pairs.append(Pair(assignment, a, b, float(max(sims)), left, right))
    return sorted(pairs, key=lambda p: -p.similarity)


def _marked(code: str, slices) -> str:
    """``code`` as HTML, the ``slices`` (copydetect's 2 x N starts and ends) in ``<mark>``."""
    if not np.size(slices):
        return html.escape(code)
    return highlight_overlap(code, slices, "<mark>", "</mark>", escape_html=True)[0]


def submitted_notebook(course: Course, student: str, assignment: str) -> Path:
    return course.submitted(student, assignment) / f"{assignment}.ipynb"


def similar_pairs(course: Course, assignment: str, threshold: float = THRESHOLD) -> list[Pair]:
    """Pairs of ``submitted/<student>/<assignment>`` notebooks whose solution regions overlap
    by ``threshold`` or more (the release is built first if missing). Unreadable notebooks
    are left out."""
    if not course.released(assignment).is_file():
        course.release(assignment)
    stub = nbformat.read(course.released(assignment), as_version=4)
    texts = {}
    folder = course.root / "submitted"
    for student in sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []:
        try:
            texts[student] = solution_text(nbformat.read(submitted_notebook(course, student, assignment),
                                                         as_version=4), stub)
        except Exception:  # missing or not a notebook: nothing to compare
            continue
    given = "\n\n".join(c.source for c in stub.cells if _is_solution(c))
    return compare(texts, given, assignment, threshold)
