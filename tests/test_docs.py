"""The guides stay true: every shell command in a fenced ``bash`` block of README.md and docs/*.md
is run here, or is on ``ELSEWHERE`` with the test that runs it or why it cannot run here.

- ``test_a_term_by_the_guides`` runs the instructors', students' and TAs' commands (``TERM``) as
  the guides write them, in a term's order, on a scratch course and exchange: roster, release,
  bundle, publish, fetch, validate, submit, the grading service, collect, grade, feedback both
  ways, export in every format, the report; after each, what the guide says it does is checked.
- Every line: ``python -m autograder[.hub] SUB``: ``SUB --help`` runs and every ``--option`` the
  guide writes is in it; ``nbgrader SUB``: ``nbgrader SUB --help`` runs; ``make TARGET``: the
  Makefile has the target.
"""
from __future__ import annotations

import csv
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GUIDES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
AID = "00_kl_elbo"
# Run by test_a_term_by_the_guides, in this order: (guide, how the line starts once ".venv/bin/" is dropped)
TERM = [
    ("instructors.md", "python -m autograder roster"),
    ("instructors.md", "python -m autograder release"),
    ("instructors.md", "python -m autograder bundle"),
    ("instructors.md", "for a in $(ls release)"),
    ("students.md", "nbgrader fetch_assignment"),
    ("students.md", "nbgrader validate"),
    ("students.md", "nbgrader submit"),
    ("instructors.md", "python -m autograder serve --workers"),
    ("instructors.md", "python -m autograder serve --status"),
    ("tas.md", "nbgrader collect"),
    ("tas.md", "python -m autograder grade"),
    ("tas.md", "nbgrader generate_feedback"),
    ("tas.md", "nbgrader release_feedback"),
    ("students.md", "nbgrader fetch_feedback"),
    ("tas.md", "python -m autograder export --csv"),
    ("tas.md", "python -m autograder report"),
    ("tas.md", "python -m autograder export --format canvas"),
    ("tas.md", "python -m autograder export --format moodle"),
    ("tas.md", "python -m autograder export --format csv"),
]
# The other lines, by how they start: the test that runs them, or why they do not run here.
ELSEWHERE = {
    "make lab": "opens JupyterLab: tests/test_browser.py runs the lab it starts (python -m autograder.lab)",
    "make test": "this run",
    "make hub": "starts a hub in the foreground: tests/test_hub.py runs its three steps on a scratch site",
    "python -m autograder selfcheck": "trains every notebook: tests/conftest.py's selfchecked fixture runs it "
                                      "(tests/test_grading.py)",
    "python -m autograder.hub setup": "root, a site: tests/test_hub.py's fixture and bench/class_load.py run it",
    "python -m autograder.hub accounts": "root, Unix accounts: tests/test_hub.py and bench/class_load.py run it",
    "python -m autograder.hub up": "the hub in the foreground: tests/test_hub.py and bench/class_load.py run it",
    "pytest": "the tests themselves",
}


def plain(line: str) -> str:
    """The line without the ``.venv/bin/`` before a command."""
    return re.sub(r"(^|\s)\.venv/bin/", r"\1", line)


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


def test_every_line_is_run_or_says_where():
    lines = commands()
    term = [(g, l) for g, l in lines if any(g == tg and plain(l).startswith(t) for tg, t in TERM)]
    rest = [(g, l) for g, l in lines if (g, l) not in term and not any(plain(l).startswith(p) for p in ELSEWHERE)]
    assert rest == [], "add these lines to TERM (and run them) or to ELSEWHERE (with the reason)"
    assert len(term) == len(TERM), "each entry of TERM names one guide line"


@pytest.mark.parametrize("guide,line", commands(), ids=lambda v: v if len(v) < 60 else v[:57] + "...")
def test_command(guide: str, line: str):
    if plain(line).startswith("for a in") or plain(line).startswith("pytest"):
        return  # a loop over nbgrader release_assignment (run in the term); the tests themselves
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


class Term:
    """A scratch course (``course/``, with this repository's notebooks, ``.venv`` and
    ``nbgrader_config.py``), its exchange (``$DGM_EXCHANGE``) and a student's folder (the student:
    the account running this, added to the sample roster), where the
    guides' lines run as written, with three changes said where they are made: ``python -m
    autograder`` gets ``--course`` (this scratch course; ``--no-sandbox`` where the sandbox cannot
    run), ``release`` and ``bundle`` get ``--now`` (00's release date), and the student's
    exchange commands the ``--Exchange.root`` their guide says to add."""

    def __init__(self, tmp: Path):
        from autograder.course.schedule import Schedule
        from autograder.grading import sandbox

        self.course, self.exchange, self.home = tmp / "course", tmp / "exchange", tmp / "student"
        for folder in (self.course, self.exchange, self.home):
            folder.mkdir()
        for name in ("notebooks", ".venv"):
            (self.course / name).symlink_to(REPO / name)
        shutil.copy(REPO / "nbgrader_config.py", self.course)
        # the sample roster, and the account that runs this as the student (nbgrader's name for them)
        self.student = pwd.getpwuid(os.getuid()).pw_name
        sample = (REPO / "autograder" / "students.example.csv").read_text()
        (self.course / "students.csv").write_text(sample.rstrip("\n") + f"\n{self.student},Stu,Dent,\n")
        self.now = Schedule.load().assignments[AID].release.strftime("%Y-%m-%d %H:%M")
        self.no_sandbox = [] if sandbox.available() else ["--no-sandbox"]
        venv_bin = str(REPO / ".venv" / "bin")
        self.env = {**os.environ, "DGM_EXCHANGE": str(self.exchange), "PATH": f"{venv_bin}:{os.environ['PATH']}"}
        self.env.pop("DGM_DB_URL", None)
        self.lines = {(g, plain(l)): l for g, l in commands()}

    def line(self, guide: str, start: str) -> str:
        """The guide's line (optional ``[...]`` parts left out, comments dropped) as it will run."""
        [line] = [l for (g, p), l in self.lines.items() if g == guide and p.startswith(start)]
        line = re.sub(r"\s*\[[^\]]*\]", "", line)
        line = line.replace("-m autograder ", f"-m autograder --course {self.course} {' '.join(self.no_sandbox)} ")
        if re.search(r"-m autograder .*\b(release|bundle)\b", line):
            line += f" --now '{self.now}'"
        if guide == "students.md" and " --course dgm" in line:
            line += f" --Exchange.root={self.exchange}"
        return line

    def run(self, guide: str, start: str, timeout: float = 600) -> str:
        line = self.line(guide, start)
        student = guide == "students.md"
        r = subprocess.run(["bash", "-c", line], cwd=self.home if student else self.course, env=self.env,
                           capture_output=True, text=True, timeout=timeout)
        assert r.returncode == 0, f"{guide}: {line}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        return r.stdout + r.stderr

    def start(self, guide: str, start: str) -> subprocess.Popen:
        line = self.line(guide, start)
        return subprocess.Popen(["bash", "-c", f"exec {line}"], cwd=self.course, env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_a_term_by_the_guides(tmp_path: Path):
    """The guides' commands in a term's order (``TERM``), each checked for what its guide says."""
    import nbformat

    from autograder.course.submissions import answered

    t = Term(tmp_path)
    c, ex, me = t.course, t.exchange / "dgm", t.student
    assert "3 students in the gradebook" in t.run("instructors.md", "python -m autograder roster")
    assert f"{AID}: released to" in t.run("instructors.md", "python -m autograder release")
    assert sorted(p.name for p in (c / "release").iterdir()) == [AID], "only what the calendar let out"
    t.run("instructors.md", "python -m autograder bundle")
    assert (tmp_path / "dgm-student" / "assignments" / AID / f"{AID}.ipynb").is_file()
    t.run("instructors.md", "for a in $(ls release)")
    assert (ex / "outbound" / AID / f"{AID}.ipynb").is_file()

    # a student fetches, answers (the reference solutions), validates and submits
    t.run("students.md", "nbgrader fetch_assignment")
    mine = t.home / AID / f"{AID}.ipynb"
    nbformat.write(answered(mine, REPO / "notebooks" / AID / f"{AID}.ipynb"), mine)
    assert "Success! Your notebook passes all the tests." in t.run("students.md", "nbgrader validate")
    t.run("students.md", "nbgrader submit")
    [inbound] = list((ex / "inbound").iterdir())
    assert inbound.name.startswith(f"{me}+{AID}+")

    # the grading service, until the submission's early feedback is out; then it stops on SIGTERM
    service = t.start("instructors.md", "python -m autograder serve --workers")
    try:
        deadline = time.monotonic() + 600
        while ": graded" not in (status := t.run("instructors.md", "python -m autograder serve --status")):
            assert service.poll() is None and time.monotonic() < deadline, status + (service.stdout.read() or "")
            time.sleep(2)
    finally:
        service.send_signal(signal.SIGTERM)
        out, _ = service.communicate(timeout=120)
    assert re.search(rf"^{me}/{AID} .*: graded (\S+)/\1$", status, re.M), status
    assert service.returncode == 0 and f"graded {inbound.name}: " in out and "feedback released" in out, out
    assert list((ex / "feedback").iterdir()), "the early feedback is in the exchange"

    # the TA: collect, grade, feedback
    t.run("tas.md", "nbgrader collect")
    assert (c / "submitted" / me / AID / f"{AID}.ipynb").is_file()
    out = t.run("tas.md", "python -m autograder grade")
    got = re.search(rf"^{me}/{AID}: autograded (\S+)/(\S+)", out, re.M)
    assert got and got[1] == got[2] and "grades written to" in out, out
    t.run("tas.md", "nbgrader generate_feedback")
    assert (c / "feedback" / me / AID / f"{AID}.html").is_file()
    t.run("tas.md", "nbgrader release_feedback")
    t.run("students.md", "nbgrader fetch_feedback")
    [page] = [p.read_text() for p in (t.home / AID / "feedback").glob(f"*/{AID}.html")]
    assert f"Score: {float(got[1])} / " in page, "the TA's grade"
    assert "Early feedback" not in page, "the TA's feedback replaces the service's for the same submission"

    # grades out: our CSV, the report, the LMS files
    t.run("tas.md", "python -m autograder export --csv")
    [row] = list(csv.DictReader(open(c / "grades.csv")))
    assert (row["student"], row["assignment"], float(row["auto"])) == (me, AID, float(row["auto_max"])), row
    t.run("tas.md", "python -m autograder report")
    assert (c / "report" / "index.html").is_file()
    for fmt in ("canvas", "moodle"):
        t.run("tas.md", f"python -m autograder export --format {fmt}")
        assert me in (c / f"grades-{fmt}.csv").read_text()
    t.run("tas.md", "python -m autograder export --format csv")


def test_the_names_and_paths_the_guides_give_exist():
    """Every dotted ``autograder.…`` name resolves (a module, then attributes) and every path of
    this repository a guide names (``autograder/…``, ``tests/…``, ``bench/…``, ``helpers/…``) is there."""
    import importlib

    text = "\n".join(g.read_text() for g in GUIDES)
    missing = []
    for name in sorted(set(re.findall(r"\bautograder(?:\.\w+)+", text))):
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
                break
            except ImportError:
                continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            missing.append(name)
    for path in sorted(set(re.findall(r"\b((?:autograder|tests|bench|helpers|docs|notebooks)/[\w./*-]*[\w*])", text))):
        if not (REPO / path).exists() and not any(REPO.glob(path)):
            missing.append(path)
    assert missing == []
