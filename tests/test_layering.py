"""The rooms of ``autograder/`` stay honest: a room imports only from the rooms below it.

Every ``import`` and ``from ... import`` of every module (at any depth: imports inside functions
count) is read with ``ast``, relative ones resolved. The table is the contract; it is repeated in
docs/contributors.md ("Rooms"). A submission passes through the rooms in this order, and the data
never flows back up: inbound -> course -> grading (-> evaluators, inside the kernel) -> feedback ->
reports / service -> server.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKG = REPO / "autograder"

# room -> the rooms of autograder it may import from (besides itself, helpers and third parties)
MAY_IMPORT = {
    "evaluators": set(),                      # trusted evaluation: helpers (and torch) only
    "inbound": set(),                          # taking in what students hand in
    "course": set(),                           # the nbgrader course: settings, calendar, cells, API, gradebook
    "grading": {"course", "inbound"},          # isolation: workers, sandbox, kernel, guard
    "feedback": {"course"},                    # what goes back to students, without hidden tests
    "reports": {"inbound", "course", "grading", "feedback"},              # the staff's views
    "service": {"inbound", "course", "grading", "feedback"},              # feedback on submit
    "server": {"inbound", "course", "grading", "feedback", "service"},    # hub and lab
}
# Modules at the top of autograder/ (the command line, the shims) may import any room.
TOP = {"__init__", "__main__", "hub", "lab", "executor"}
# Imports nothing of the course at all: it runs inside the sandbox, or is copied into a site.
STANDALONE = {"grading/kernel.py", "server/hubserver/dgm_hub_server.py", "server/hubserver/dgm_memory_note.py"}


def imported(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """The absolute dotted names ``path`` (or ``source`` as if it were there) imports (``from a
    import b`` gives ``a.b`` and ``a``)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names] + [(node.lineno, base)]
    return out


def room_of(name: str) -> str | None:
    """The room of a dotted name under autograder (``autograder.grading.workers`` -> ``grading``)."""
    parts = name.split(".")
    if parts[0] != "autograder" or len(parts) < 2:
        return None
    return parts[1] if parts[1] in MAY_IMPORT else "<top>:" + parts[1]


MODULES = sorted(p for p in PKG.rglob("*.py") if "student_repo" not in p.parts)


def test_every_module_is_in_a_room_or_at_the_top():
    rooms = {p.relative_to(PKG).parts[0] for p in MODULES if len(p.relative_to(PKG).parts) > 1}
    assert rooms == set(MAY_IMPORT), "a new folder under autograder/: add it to MAY_IMPORT and the guide"
    assert {p.stem for p in MODULES if p.parent == PKG} == TOP, "new modules go in a room, not at the top"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_room_imports_only_what_it_may(path: Path):
    rel = path.relative_to(PKG)
    if len(rel.parts) == 1:
        return
    room = rel.parts[0]
    bad = []
    for line, name in imported(path):
        target = room_of(name)
        if str(rel) in STANDALONE and name.split(".")[0] in ("autograder", "helpers"):
            bad.append(f"line {line}: {name} (this module imports nothing of the course)")
        elif target is None or target == room:
            continue
        elif target.startswith("<top>") or target not in MAY_IMPORT[room]:
            bad.append(f"line {line}: {name} ({room}/ may import {sorted(MAY_IMPORT[room]) or 'no room'})")
    assert not bad, f"{rel} imports from a room it must not:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", sorted((REPO / "helpers").rglob("*.py")), ids=lambda p: p.name)
def test_helpers_import_nothing_of_the_autograder(path: Path):
    """helpers/ ships to students; the autograder never does."""
    assert not [n for _, n in imported(path) if n.split(".")[0] == "autograder"]


def test_the_check_catches_a_grading_module_that_imports_the_server():
    """The rule table bites: a module of grading/ that imports server/ is named."""
    names = [n for _, n in imported(PKG / "grading" / "probe.py", "from ..server import hub\n")]
    assert "autograder.server.hub" in names and "server" not in MAY_IMPORT["grading"]


def test_the_contributors_guide_states_the_same_rules():
    """docs/contributors.md's table of rooms says what MAY_IMPORT says."""
    guide = (REPO / "docs" / "contributors.md").read_text()
    said = {}
    for room, may in re.findall(r"^\| `(\w+)/` \|.*\| ([^|]*) \|$", guide, re.M):
        said[room] = set(re.findall(r"`(\w+)`", may)) & set(MAY_IMPORT)
    assert said == MAY_IMPORT
