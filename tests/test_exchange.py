"""The instructor's round trip through nbgrader's exchange, for two students:
release -> fetch -> validate -> submit (twice) -> collect -> grade -> feedback -> fetch_feedback."""
from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbgrader.validator import Validator

from autograder import submissions
from autograder.config import REPO

AID = "00_kl_elbo"
NBGRADER = [sys.executable, "-m", "nbgrader"]
WRONG_KL = '''
def kl_normal(qm, qv, pm, pv):
    return 0.5 * (torch.log(pv**2) - torch.log(qv**2) + qv**2 / pv**2 + (qm - pm).pow(2) / pv**2 - 1).sum(-1)
'''


def sh(cmd: list[str], cwd: Path) -> str:
    run = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"{' '.join(cmd)}\n{run.stdout}\n{run.stderr}"
    return run.stdout + run.stderr


def test_release_fetch_submit_collect_grade_feedback(tmp_path):
    root = tmp_path / "course"
    root.mkdir()
    (root / "notebooks").symlink_to(REPO / "notebooks")
    shutil.copy(REPO / "nbgrader_config.py", root)   # the instructor runs nbgrader from the course root
    exchange = root / "exchange"
    course = [sys.executable, "-m", "autograder", "--course", str(root)]

    # Instructor: roster, release (due date from the course config), publish to the exchange.
    assert "2 students" in sh(course + ["roster", str(REPO / "autograder" / "students.example.csv")], tmp_path)
    sh(course + ["release", AID], tmp_path)
    sh(NBGRADER + ["release_assignment", AID], root)
    assert (exchange / "dgm" / "outbound" / AID / f"{AID}.ipynb").is_file()

    def student(name: str, *cmd: str) -> str:
        home = tmp_path / name
        home.mkdir(exist_ok=True)
        return sh(NBGRADER + [*cmd, AID, "--course=dgm", f"--Exchange.root={exchange}",
                              f"--Exchange.cache={home / '.cache'}", f"--student={name}"], home)

    work = {}
    for name in ("alice", "bob"):
        student(name, "fetch_assignment")
        work[name] = tmp_path / name / AID / f"{AID}.ipynb"
        assert work[name].is_file()

    # Work: alice first hands in the untouched stub, then her answers; bob has a wrong kl_normal.
    student("alice", "submit")
    time.sleep(1.1)
    answers = {"alice": None, "bob": {"kl_normal": WRONG_KL}}
    for name, overrides in answers.items():
        nb = submissions.answered(work[name], REPO / "notebooks" / AID / f"{AID}.ipynb", overrides)
        nbformat.write(nb, work[name])
    assert Validator().validate(str(work["alice"])) == {}
    assert Validator().validate(str(work["bob"])).get("failed"), "validate must show bob's failing test"
    student("alice", "submit")
    student("bob", "submit")

    # TA: collect (alice's later submission wins), bob's copy marked as handed in 2 days late.
    sh(NBGRADER + ["collect", AID], root)
    stamps = sorted((exchange / "dgm" / "inbound").iterdir())
    alice_last = max(p.name.split("+")[2] for p in stamps if p.name.startswith("alice+"))
    assert (root / "submitted" / "alice" / AID / "timestamp.txt").read_text().strip() == alice_last
    (root / "submitted" / "bob" / AID / "timestamp.txt").write_text("2027-01-17 10:00:00.000000 UTC")
    sh(course + ["grade", str(root / "submitted"), "--csv", str(tmp_path / "grades.csv")], tmp_path)
    rows = {r["student"]: r for r in csv.DictReader(open(tmp_path / "grades.csv"))}
    assert float(rows["alice"]["auto"]) == float(rows["alice"]["auto_max"]) == 14
    assert float(rows["alice"]["late_penalty"]) == 0
    bob_raw = float(rows["bob"]["auto"])
    assert bob_raw < 14                                           # kl_normal (and elbo) fail
    assert abs(float(rows["bob"]["late_penalty"]) - 0.2 * bob_raw) < 1e-6  # 2 started days x 10 %

    sh(NBGRADER + ["generate_feedback", AID], root)
    sh(NBGRADER + ["release_feedback", AID], root)
    hidden = "kl_divergence(Normal(qm, qv.sqrt()), Normal(pm, pv.sqrt())).sum(-1)"
    for name in ("alice", "bob"):
        student(name, "fetch_feedback")
        [html] = (tmp_path / name / AID / "feedback").glob(f"*/{AID}.html")
        text = html.read_text()
        assert "Score:" in text or "score" in text.lower()
        assert "BEGIN HIDDEN TESTS" not in text and hidden not in text, "feedback leaks hidden tests"
        assert "hidden tests ran here" in text
    bob = next((tmp_path / "bob" / AID / "feedback").glob(f"*/{AID}.html")).read_text()
    assert "differs from 1/2 sum(m^2 + v - 1 - log v)" in bob      # the failing test's message
    assert "Late submission penalty" in bob
