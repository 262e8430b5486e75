"""What students must never hold: the distinctive lines of solutions and hidden tests.

A line is *distinctive* when it would give something away: stripped, at least ``MIN_LINE``
characters, not a comment, and not also in the public text (what students see anyway: given
code, instructions, visible tests). Short or shared lines (``else:``, ``x = 1``,
``return self.decode(z)`` where the template has it too) say nothing. Used by the feedback
(outputs that quote hidden tests are dropped) and by the release tests (no released notebook,
student repository file or ``helpers`` module holds such a line).
"""
from __future__ import annotations

import re

from .cells import is_solution_cell, is_test_cell

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.S)
SOLUTION = re.compile(r"### BEGIN SOLUTION.*?### END SOLUTION", re.S)
MIN_LINE = 24  # shorter lines (`super().__init__()`, `torch.manual_seed(seed)`) are common idiom


def distinctive_lines(secret: str, public: str = "") -> set[str]:
    """Lines of ``secret`` that would give it away (see the module's docstring)."""
    seen = {line.strip() for line in public.splitlines()}
    return {s for line in secret.splitlines() if len(s := line.strip()) >= MIN_LINE
            and not s.startswith("#") and s not in seen}


def _split(nb) -> tuple[str, str, str]:
    """(hidden tests, solutions, public text) of a source notebook."""
    hidden, solutions, public = [], [], []
    for c in nb.cells:
        if c.cell_type == "markdown" and is_solution_cell(c):
            solutions.append(c.source)  # a manually graded answer: the whole cell is the reference
            continue
        if is_test_cell(c):
            hidden += [m.group(0) for m in HIDDEN.finditer(c.source)]
        solutions += [m.group(0) for m in SOLUTION.finditer(c.source)]
        public.append(SOLUTION.sub("", HIDDEN.sub("", c.source)))
    return "\n".join(hidden), "\n".join(solutions), "\n".join(public)


def hidden_lines(nb) -> set[str]:
    """The distinctive lines of a notebook's hidden tests."""
    hidden, _, public = _split(nb)
    return distinctive_lines(hidden, public)


def public_text(nb) -> str:
    """What students see of a source notebook: its text without solutions and hidden tests."""
    return _split(nb)[2]


def secret_lines(nb, public: str = "") -> set[str]:
    """The distinctive lines of a source notebook's hidden tests and solutions; ``public``: more
    text students see anyway (e.g. the other notebooks' public text)."""
    hidden, solutions, own = _split(nb)
    return distinctive_lines(hidden + "\n" + solutions, own + "\n" + public)
