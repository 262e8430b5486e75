"""Grades into an LMS (``python -m autograder export --format canvas|moodle|csv``) on the class of
tests/classbook.py: the files parse with the columns each system documents, identify students as
it matches them, and hold the scores the plan implies."""
from __future__ import annotations

import csv
import subprocess
import sys

import pytest
from nbgrader.api import Gradebook

import classbook as cb
from autograder.course.gradebook import Score


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = cb.build(tmp_path_factory.mktemp("course"))
    with Gradebook(course.db_url) as gb:
        gb.update_or_create_student("zoe")            # on the roster, submitted nothing
    return course


def export(course, tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", "--course", str(course.root), "export", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


def read(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def number(text: str) -> float | None:
    return None if text == "" else float(text)


def test_canvas_gradebook_import(course, tmp_path):
    run = export(course, tmp_path, "--format", "canvas")
    assert run.returncode == 0, run.stderr
    head, possible, *students = read(tmp_path / "grades-canvas.csv")
    assert head == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", cb.AID, cb.OTHER]
    assert possible[0] == "Points Possible" and possible[1:5] == ["", "", "", ""]
    assert [number(v) for v in possible[5:]] == [cb.MAX_SCORE, 13]
    by_sis = {row[2]: row for row in students}
    assert sorted(by_sis) == sorted(cb.STUDENTS + ["zoe"])
    for i, s in enumerate(cb.STUDENTS):
        name, canvas_id, sis, login, section, first, other = by_sis[s]
        assert (name, canvas_id, login, section) == (f"Last{i}, First{i}", "", cb.email(i), "")
        assert number(first) == pytest.approx(cb.expected_score(i), abs=0.005)
        assert number(other) == (13 if i < cb.OTHER_STUDENTS else None)   # blank: nothing submitted
    assert by_sis["zoe"] == ["zoe", "", "zoe", "", "", "", ""]


def test_canvas_per_question_columns(course, tmp_path):
    run = export(course, tmp_path, "--format", "canvas", "--per-question", "--out", "q.csv")
    assert run.returncode == 0, run.stderr
    head, possible, *students = read(tmp_path / "q.csv")
    columns = dict(zip(head, range(len(head))))
    tests = [c for c in head if c.startswith(f"{cb.AID}: test_")]
    assert tests == [f"{cb.AID}: {c}" for c in cb.TEST_POINTS]        # the notebook's order
    assert head.index(cb.AID) < columns[tests[0]] and f"{cb.AID}: kl_nonneg_proof" in head
    for cell, points in cb.TEST_POINTS.items():
        assert number(possible[columns[f"{cb.AID}: {cell}"]]) == points
    for i, row in enumerate(r for r in students if r[2] in cb.STUDENTS):
        for cell, rule in cb.PASSES.items():
            earned = cb.TEST_POINTS[cell] if i < cb.GRADED and rule(i) else 0
            assert number(row[columns[f"{cb.AID}: {cell}"]]) == earned, (row[2], cell)


def test_moodle_grade_import(course, tmp_path):
    run = export(course, tmp_path, "--format", "moodle", "--out", "moodle.csv")
    assert run.returncode == 0, run.stderr
    with open(tmp_path / "moodle.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["ID number", "Email address", "First name", "Last name", cb.AID, cb.OTHER]
    by_id = {r["ID number"]: r for r in rows}
    assert sorted(by_id) == sorted(cb.STUDENTS + ["zoe"])               # no 'Points Possible' row in Moodle's
    for i, s in enumerate(cb.STUDENTS):
        r = by_id[s]
        assert (r["Email address"], r["First name"], r["Last name"]) == (cb.email(i), f"First{i}", f"Last{i}")
        assert number(r[cb.AID]) == pytest.approx(cb.expected_score(i), abs=0.005)
    assert by_id["zoe"][cb.AID] == by_id["zoe"][cb.OTHER] == ""


def test_csv_is_the_existing_export_under_both_spellings(course, tmp_path):
    assert export(course, tmp_path, "--csv", "old.csv").returncode == 0
    assert export(course, tmp_path, "--format", "csv", "--out", "new.csv").returncode == 0
    old, new = read(tmp_path / "old.csv"), read(tmp_path / "new.csv")
    assert old == new and old[0] == list(Score.__dataclass_fields__)
    assert len(old) == 1 + cb.N + cb.OTHER_STUDENTS
    run = export(course, tmp_path, "--per-question")
    assert run.returncode == 2 and "--per-question needs --format canvas or moodle" in run.stderr
