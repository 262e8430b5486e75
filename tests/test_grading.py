"""The grading path: selfcheck, planted mistakes, the `grade`/`export` commands, bad submissions."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import nbformat
import pytest
import torch
from nbgrader.api import Gradebook

from autograder.course import submissions
from autograder.course.cells import is_graded, points
from autograder.course.config import DB_ENV, REPO
from autograder.course.solutions import load_solution
from helpers import runtime

ASSIGNMENTS = sorted(p.name for p in (REPO / "notebooks").iterdir() if p.is_dir())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_selfcheck_solution_full_marks_stub_zero(selfchecked, assignment):
    check = selfchecked[0][assignment]
    # full marks, less only what cells graded on a scale (notebook 04's lab-guide grades) hold back
    held_back = sum(pts - got for got, pts in check.partial.values())
    assert check.solution.auto + held_back == pytest.approx(check.solution.auto_max) and check.solution.auto_max > 0, check.line()
    assert check.stub.auto == 0, check.line()
    assert check.ok, check.line()


def test_selfcheck_lets_only_cells_graded_on_a_scale_give_part_of_their_points():
    from autograder.course.gradebook import Score
    from autograder.course.selfcheck import Check

    def score(auto):
        return Score("a", "s", auto, 50.0, auto, 50.0, False, 0.0, "")
    assert Check("a", score(50), score(0), []).ok
    assert Check("a", score(34), score(0), [], {"test_generation": (14.0, 30.0)}).ok
    assert "test_generation 14.00/30" in Check("a", score(34), score(0), [], {"test_generation": (14.0, 30.0)}).line()
    assert not Check("a", score(30), score(0), [], {"test_generation": (14.0, 30.0)}).ok, "another cell failed"
    assert not Check("a", score(47), score(0), []).ok, "a cell failed outright"
    assert not Check("a", score(50), score(3), []).ok, "the stub earned points"
    assert not Check("a", score(50), score(0), ["train"]).ok, "a cell of the solution raised"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_notebook_runs_top_to_bottom_in_grading_mode(selfchecked, assignment):
    checks, course = selfchecked
    assert checks[assignment].solution_errors == []
    nb = nbformat.read(course.autograded("solution", assignment) / f"{assignment}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code), "every code cell must have run"


def test_wrong_kl_normal_loses_its_points(grade_planted):
    variance_as_std = '''
def kl_normal(qm, qv, pm, pv):
    # mistake: treats the variances as standard deviations
    return 0.5 * (torch.log(pv**2) - torch.log(qv**2) + qv**2 / pv**2 + (qm - pm).pow(2) / pv**2 - 1).sum(-1)
'''
    score, cells = grade_planted("00_kl_elbo", "planted_kl_std", {"kl_normal": variance_as_std})
    assert cells["test_kl_normal"] == 0
    assert cells["test_kl_discrete"] == 2 and cells["test_kl_gauss_1d"] == 3
    assert score.auto < score.auto_max


def test_correct_alternative_kl_normal_keeps_full_marks(grade_planted):
    through_distributions = '''
def kl_normal(qm, qv, pm, pv):
    from torch.distributions import Normal, kl_divergence
    pm, pv = torch.broadcast_tensors(pm, pv)
    return kl_divergence(Normal(qm, qv.sqrt()), Normal(pm.expand_as(qm), pv.sqrt().expand_as(qm))).sum(-1)
'''
    score, cells = grade_planted("00_kl_elbo", "alternative_kl", {"kl_normal": through_distributions})
    assert cells["test_kl_normal"] == 3 and score.auto == score.auto_max


def run_cli(*args: str, cwd, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_grade_command_grades_good_and_bad_submissions_and_exports(tmp_path):
    root, inbox = tmp_path / "course", tmp_path / "inbox"
    root.mkdir()
    (root / "notebooks").symlink_to(REPO / "notebooks")
    aid = "00_kl_elbo"
    run = run_cli("--course", str(root), "release", "--force", aid, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    released = root / "release" / aid / f"{aid}.ipynb"
    submissions.write(submissions.answered(released, REPO / "notebooks" / aid / f"{aid}.ipynb"),
                      inbox, "alice", aid)
    (inbox / "bob" / aid).mkdir(parents=True)
    shutil.copy(released, inbox / "bob" / aid)                       # every stub left in
    (inbox / "dave" / aid).mkdir(parents=True)
    (inbox / "dave" / aid / f"{aid}.ipynb").write_text('{"cells": [')  # malformed JSON
    (inbox / "erin" / "99_other").mkdir(parents=True)                  # not an assignment
    shutil.copy(released, inbox / "erin" / "99_other" / "99_other.ipynb")
    (inbox / "frank" / aid).mkdir(parents=True)                        # no notebook
    (inbox / "frank" / aid / "answers.txt").write_text("see attached")

    run = run_cli("--course", str(root), "grade", str(inbox), "--csv", "out.csv", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "alice/00_kl_elbo: autograded 16/16" in run.stdout
    assert "bob/00_kl_elbo: autograded 0/16" in run.stdout
    assert "dave/00_kl_elbo: autograded 0/16 - FAILED: " in run.stdout and "not appear to be JSON" in run.stdout
    assert "erin/99_other: NOT GRADED: unknown assignment" in run.stdout
    assert "frank/00_kl_elbo: NOT GRADED: no 00_kl_elbo.ipynb" in run.stdout
    assert "3 of 5 submissions could not be graded" in run.stderr
    rows = {r["student"]: r for r in csv.DictReader(open(tmp_path / "out.csv"))}
    assert float(rows["alice"]["auto"]) == float(rows["alice"]["auto_max"]) == 16
    source = nbformat.read(REPO / "notebooks" / aid / f"{aid}.ipynb", as_version=4)
    total = sum(points(c) for c in source.cells if is_graded(c))  # autograded and written answers
    assert float(rows["bob"]["score"]) == 0 and float(rows["bob"]["max_score"]) == total > 16
    assert float(rows["dave"]["score"]) == 0
    assert "erin" not in rows and "frank" not in rows
    assert (inbox / "dave" / aid / f"{aid}.ipynb").read_text() == '{"cells": ['  # nothing lost
    log = {r["student"]: r for r in csv.DictReader(open(root / "grade-log.csv"))}  # for the report
    assert sorted(log) == ["alice", "bob", "dave"] and all(float(r["seconds"]) > 0 for r in log.values())
    assert "JSON" in log["dave"]["error"] and log["alice"]["error"] == ""

    (tmp_path / "out.csv").unlink()
    run = run_cli("--course", str(root), "export", "--csv", "again.csv", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    again = {r["student"]: r for r in csv.DictReader(open(tmp_path / "again.csv"))}
    assert again["alice"] == rows["alice"] and again["bob"] == rows["bob"]


def test_gradebook_at_a_database_url_is_used_and_kept_from_student_code(tmp_path):
    """``--db``/``$DGM_DB_URL`` (here a SQLite file outside the course; Postgres or MySQL alike)
    holds the grades; graders work on a scratch copy of one assignment and never see the URL."""
    root, inbox, aid = tmp_path / "course", tmp_path / "inbox", "00_kl_elbo"
    root.mkdir()
    (root / "notebooks").symlink_to(REPO / "notebooks")
    (tmp_path / "db").mkdir()
    url = f"sqlite:///{tmp_path / 'db' / 'dgm.sqlite'}"
    run = run_cli("--course", str(root), "--db", url, "release", "--force", aid, "05_gan", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    nb = submissions.answered(root / "release" / aid / f"{aid}.ipynb", REPO / "notebooks" / aid / f"{aid}.ipynb")
    nb.cells.insert(0, nbformat.v4.new_code_cell("import os\nprint('db:', os.environ.get('DGM_DB_URL'))"))
    submissions.write(nb, inbox, "alice", aid)
    run = run_cli("--course", str(root), "grade", str(inbox), "--workers", "2", cwd=tmp_path,
                  env={**os.environ, DB_ENV: url})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "alice/00_kl_elbo: autograded 16/16" in run.stdout
    assert not (root / "gradebook.db").exists()
    with Gradebook(url) as gb:
        assert gb.find_submission(aid, "alice").score == 16
    graded = nbformat.read(root / "autograded" / "alice" / aid / f"{aid}.ipynb", as_version=4)
    printed = [o.get("text") for c in graded.cells if "DGM_DB_URL" in c.source for o in c.get("outputs", [])]
    assert printed == ["db: None\n"], [c.source[:80] for c in graded.cells[:3]]


def test_assignment_gradebook_holds_one_assignment_and_no_students(course, released, tmp_path):
    from autograder.grading.workers import assignment_gradebook

    released("00_kl_elbo"), released("01_autoencoder")
    with Gradebook(course.db_url) as gb:
        gb.update_or_create_student("someone")
        want = gb.find_assignment("00_kl_elbo")
        cells = {nb.name: sorted((c.name, c.max_score) for c in nb.grade_cells) for nb in want.notebooks}
        sources = sum(len(nb.source_cells) for nb in want.notebooks)
        due = want.duedate
    (tmp_path / "one.db").write_bytes(assignment_gradebook(course.db_url, "00_kl_elbo"))
    with Gradebook(f"sqlite:///{tmp_path / 'one.db'}") as gb:
        assert [a.name for a in gb.assignments] == ["00_kl_elbo"] and gb.students == []
        got = gb.find_assignment("00_kl_elbo")
        assert {nb.name: sorted((c.name, c.max_score) for c in nb.grade_cells) for nb in got.notebooks} == cells
        assert sum(len(nb.source_cells) for nb in got.notebooks) == sources > 0 and got.duedate == due


def test_grade_command_rejects_a_missing_folder(tmp_path):
    run = run_cli("grade", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert run.returncode == 2 and "no such folder of submissions" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("content,says", [(None, "No such file"), ("name,email\nann,a@x\n", "an 'id' column"),
                                          (b"\xff\xfe\x00id", "codec can't decode")],
                         ids=["missing", "no_id_column", "not_text"])
def test_roster_command_refuses_a_bad_roster_with_its_reason(tmp_path, content, says):
    roster = tmp_path / "students.csv"
    if content is not None:
        roster.write_bytes(content.encode() if isinstance(content, str) else content)
    (tmp_path / "course").mkdir()
    run = run_cli("--course", str(tmp_path / "course"), "roster", str(roster), cwd=tmp_path)
    assert run.returncode == 2 and says in run.stderr and "Traceback" not in run.stderr, run.stderr


def test_load_solution_runs_solution_cells_but_not_tests():
    ns = load_solution("00_kl_elbo", until="kl_normal")
    qm, qv = torch.zeros(2, 3), torch.ones(2, 3)
    assert torch.equal(ns["kl_normal"](qm, qv, torch.zeros(1), torch.ones(1)), torch.zeros(2))
    assert "kl3" not in ns, "test cells must not run"  # kl3 is defined by a visible test
    assert "elbo" not in ns, "cells after `until` must not run"
    with pytest.raises(KeyError):
        load_solution("00_kl_elbo", until="no_such_cell")


def test_grading_mode_follows_nbgrader_environment(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert not runtime.grading() and runtime.budget(20_000, 200) == 20_000
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert runtime.grading() and runtime.budget(20_000, 200) == 200


def test_submission_builder_refuses_unknown_cells(released, course):
    with pytest.raises(KeyError, match="no_such_cell"):
        submissions.answered(released("00_kl_elbo"), course.source("00_kl_elbo"), {"no_such_cell": "x = 1"})
    nb = json.loads(nbformat.writes(submissions.answered(released("00_kl_elbo"), course.source("00_kl_elbo"))))
    assert "### BEGIN HIDDEN TESTS" not in json.dumps(nb)
