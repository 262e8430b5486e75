"""What students must never hold: the distinctive lines of solutions and hidden tests.

A line is *distinctive* when it would give something away: stripped, at least ``MIN_LINE``
characters, not a comment, not a signature (``def f(x: torch.Tensor) -> torch.Tensor:`` says what to
write, which the notebook's text says anyway, not how), and not also in the public text (what students see anyway: given
code, instructions, visible tests). Short or shared lines (``else:``, ``x = 1``,
``return self.decode(z)`` where the template has it too) say nothing. Used by the feedback
(outputs that quote hidden tests are dropped) and by the release tests (no released notebook,
student repository file or ``helpers`` module holds such a line).
"""
from __future__ import annotations

import re

from ..course.cells import is_solution_cell, is_test_cell

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.S)
SOLUTION = re.compile(r"### BEGIN SOLUTION.*?### END SOLUTION", re.S)
SIGNATURE = re.compile(r"(async\s+)?(def|class)\s+\w+\s*(\(.*\))?\s*(->\s*.+)?:")
MIN_LINE = 24  # shorter lines (`super().__init__()`, `torch.manual_seed(seed)`) are common idiom


def distinctive_lines(secret: str, public: str = "") -> set[str]:
    """Lines of ``secret`` that would give it away (see the module's docstring)."""
    seen = {line.strip() for line in public.splitlines()}
    return {s for line in secret.splitlines() if len(s := line.strip()) >= MIN_LINE
            and not s.startswith("#") and not SIGNATURE.fullmatch(s) and s not in seen}


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


def calendar_secrets(sources: dict, release: dict) -> dict[str, set[str]]:
    """``assignment -> its distinctive lines``, counting as public only what students had when it
    went out: its own public text and that of the notebooks released no later than it, by the
    calendar (``release``: assignment -> release date). A notebook released later is not public
    for it: a line of its solution in a later notebook's given code is a leak while it is open."""
    return {aid: secret_lines(nb, "\n".join(public_text(sources[b]) for b in sources
                                            if b != aid and release[b] <= release[aid]))
            for aid, nb in sources.items()}


def open_leaks(sources: dict, release: dict, closes: dict) -> dict[tuple[str, str], list[str]]:
    """``(answered, giver) -> lines``: the distinctive lines of assignment ``answered``
    (``calendar_secrets``) that the public text of notebook ``giver`` holds, where ``giver`` is
    released before ``answered`` is closed (``closes``: the date after which a late submission
    earns nothing). Empty when no notebook gives away an open assignment's answers."""
    secrets = calendar_secrets(sources, release)
    found = {}
    for answered in sources:
        for giver, nb in sources.items():
            if giver != answered and release[giver] < closes[answered]:
                hits = sorted(secrets[answered] & {line.strip() for line in public_text(nb).splitlines()})
                if hits:
                    found[answered, giver] = hits
    return found
