"""The guides stay true: every shell command in a fenced ``bash`` block of README.md and docs/*.md
is checked here, or is on ``NOT_RUN`` with the reason.

- ``python -m autograder SUB ...`` and ``python -m autograder.hub SUB ...``: ``SUB --help`` runs,
  and every ``--option`` the guide writes is in that help; ``roster`` runs for real on the sample
  roster in a scratch course;
- ``nbgrader SUB ...``: ``nbgrader SUB --help`` runs;
- ``make TARGET``: the Makefile has the target (running it is ``make test`` itself, or a hub).
"""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GUIDES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Commands not run, by how they start, and why.
NOT_RUN = {
    "for a in": "publishes every release to the exchange: its nbgrader command is checked on its own line",
    ".venv/bin/pytest": "the tests themselves",
}


def commands() -> list[tuple[str, str]]:
    out = []
    for guide in GUIDES:
        for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", guide.read_text(), re.S):
            for line in block.splitlines():
                line = re.sub(r"\s+#.*$", "", line).strip()
                if line and not line.startswith("#"):
                    out.append((guide.name, line))
    return out


def run(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_the_guides_have_commands():
    names = {g for g, _ in commands()}
    assert {"README.md", "instructors.md", "tas.md", "students.md", "contributors.md"} <= names


@pytest.mark.parametrize("guide,line", commands(), ids=lambda v: v if len(v) < 60 else v[:57] + "...")
def test_command(guide: str, line: str, tmp_path: Path):
    if any(line.startswith(p) for p in NOT_RUN):
        pytest.skip(next(r for p, r in NOT_RUN.items() if line.startswith(p)))
    words = shlex.split(re.sub(r"\[([^\]]*)\]", r"\1", line))  # [--option X]: optional, still checked
    if words[0] == "make":
        target = words[1]
        assert re.search(rf"^{re.escape(target)}:", (REPO / "Makefile").read_text(), re.M), line
        return
    if words[0].endswith("nbgrader"):
        r = run([str(Path(sys.executable).with_name("nbgrader")), words[1], "--help"], REPO)
        assert r.returncode == 0, f"{guide}: {line}\n{r.stderr[-2000:]}"
        return
    assert words[0].endswith("python") and words[1] == "-m", f"{guide}: no rule checks {line!r}"
    module, sub = words[2], words[3]
    assert module in ("autograder", "autograder.hub"), line
    r = run([sys.executable, "-m", module, sub, "--help"], REPO)
    assert r.returncode == 0, f"{guide}: {line}\n{r.stderr[-2000:]}"
    for option in [w for w in words[4:] if w.startswith("--")]:
        assert option.split("=")[0] in r.stdout, f"{guide}: {line}: {option} is not an option of {module} {sub}"
    if module == "autograder" and sub == "roster":
        course = tmp_path / "course"
        course.mkdir()
        (course / "notebooks").symlink_to(REPO / "notebooks")
        r = run([sys.executable, "-m", "autograder", "--course", str(course), "roster",
                 str(REPO / "autograder" / "students.example.csv")], tmp_path)
        assert r.returncode == 0 and "students" in r.stdout, r.stdout + r.stderr
