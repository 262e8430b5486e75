"""The instructor's report (``python -m autograder report``) on a class of known quality
(tests/classbook.py: 20 generated submissions written into the gradebook, no grading).

The numbers on the page are checked against what the plan implies: pass rates and flags per
test cell, counts, scores, lateness, grading times, the submissions that could not be graded and
the one copied pair. The same class in PostgreSQL gives the same page (skipped where PostgreSQL
is not installed). The page is opened in Chromium (skipped, with the reason, without it) and a
screenshot kept in ``test-artifacts/report.png``.
"""
from __future__ import annotations

import base64
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

import browser
import classbook as cb
from autograder.course.config import REPO
from autograder.course.course import Course
from autograder.grading.grade import Result, log_times, read_times


class Tables(HTMLParser):
    """``tables[id] -> rows of cell texts`` and the ``src`` of every ``<img>`` of a page."""

    def __init__(self, text: str):
        super().__init__()
        self.tables, self.images, self._id, self._row = {}, [], None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._id = attrs.get("id")
            self.tables[self._id] = []
        elif tag == "tr" and self._id:
            self._row = []
            self.tables[self._id].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._row.append("")
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag == "table":
            self._id = self._row = None

    def handle_data(self, data):
        if self._row:
            self._row[-1] += data


def write_report(tmp_path_factory, db_url: str):
    """The class, its gradebook at ``db_url`` (read through ``--db``), and the report the command
    line writes of it: ``(course, html text, report folder)``."""
    root, out = tmp_path_factory.mktemp("course"), tmp_path_factory.mktemp("report")
    course = cb.build(root, db_url)
    run = subprocess.run([sys.executable, "-m", "autograder", "--course", str(root), "--db", db_url,
                          "report", "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"report written to {out / 'index.html'}" in run.stdout
    return course, (out / "index.html").read_text(), out


@pytest.fixture(scope="module")
def page_html(tmp_path_factory):
    """The report of the class, its gradebook in a SQLite file outside the course."""
    return write_report(tmp_path_factory, f"sqlite:///{tmp_path_factory.mktemp('db') / 'grades.sqlite'}")


@pytest.fixture(scope="module")
def postgres():
    """The URL of a scratch PostgreSQL cluster (Debian's server, run as ``nobody`` when we are
    root, on a Unix socket only), stopped and removed afterwards."""
    initdb = shutil.which("initdb") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None)
    if initdb is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg", reason="psycopg (PostgreSQL's driver) is not installed")
    folder = Path(tempfile.mkdtemp(prefix="dgm-pg-"))
    user = []
    if os.geteuid() == 0:  # the server refuses to run as root
        os.chown(folder, pwd.getpwnam("nobody").pw_uid, -1)
        user = ["runuser", "-u", "nobody", "--"]
    pg_ctl = [*user, str(Path(initdb).with_name("pg_ctl")), "-D", str(folder / "data")]
    try:
        subprocess.run([*user, initdb, "-D", str(folder / "data"), "-A", "trust", "-U", "dgm"],
                       check=True, capture_output=True, timeout=120)
        subprocess.run([*pg_ctl, "-o", f"-k {folder} -c listen_addresses=''", "-l", str(folder / "log"),
                        "-w", "start"], check=True, capture_output=True, timeout=120)
        yield f"postgresql+psycopg://dgm@/postgres?host={folder}"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)


def rows(page: Tables, name: str) -> list[list[str]]:
    return page.tables[name][1:]  # without the header


def test_pass_rates_flags_and_order(page_html):
    page = Tables(page_html[1])
    got = rows(page, f"cells-{cb.AID}")
    want = sorted(((c, sum(rule(i) for i in range(cb.GRADED))) for c, rule in cb.PASSES.items()),
                  key=lambda cp: cp[1])
    assert [r[0] for r in got] == [c for c, _ in want], "lowest pass rate first"
    for (cell, points, passed, graded, rate, flag), (c, n) in zip(got, want):
        assert (cell, float(points), int(passed), int(graded)) == (c, cb.TEST_POINTS[c], n, cb.GRADED)
        assert rate == f"{100 * n / cb.GRADED:.1f} %"
        share = n / cb.GRADED
        assert flag == ("fewer than 5 % pass" if share < 0.05 else "more than 95 % pass" if share > 0.95 else "")
    flagged = {r[0] for r in got if r[5]}
    assert flagged == {"test_kl_gauss_1d", "test_kl_discrete"}   # 0 % and 100 %; 5.6 % and 94.4 % are not


def test_counts_scores_lateness_and_grading_time(page_html):
    page = Tables(page_html[1])
    summary = dict(rows(page, f"summary-{cb.AID}"))
    scores = [cb.expected_score(i) for i in range(cb.N)]
    assert summary["submissions"] == str(cb.N)
    assert summary["could not be graded"] == str(len(cb.REASONS))
    assert summary["mean score"] == f"{statistics.mean(scores):.2f}"
    assert summary["median score"] == f"{statistics.median(scores):.2f}"
    assert summary["maximum score"] == f"{cb.MAX_SCORE:g}"
    assert summary["late"] == str(len(cb.LATE))
    late = [cb.expected_score(i) / (1 - 0.1 * d) for i, d in cb.LATE.items()]
    on_time = [cb.expected_score(i) for i in range(cb.N) if i not in cb.LATE]
    assert summary["mean score before penalty, on time / late"] == \
        f"{statistics.mean(on_time):.2f} / {statistics.mean(late):.2f}"
    times = [cb.seconds(i) for i in range(cb.N)]
    assert summary["grading time"] == \
        f"median {statistics.median(times):.1f} s, max {max(times):.1f} s ({cb.N} of {cb.N} submissions)"
    other = dict(rows(page, f"summary-{cb.OTHER}"))
    assert other["submissions"] == str(cb.OTHER_STUDENTS) and other["grading time"] == "not recorded"
    assert other["mean score"] == "13.00" and other["could not be graded"] == "0"


def test_submissions_that_could_not_be_graded_are_listed_with_their_reasons(page_html):
    page = Tables(page_html[1])
    assert rows(page, f"not-graded-{cb.AID}") == [[cb.STUDENTS[i], r] for i, r in cb.REASONS.items()]
    assert f"not-graded-{cb.OTHER}" not in page.tables


def test_the_copied_pair_is_listed_side_by_side(page_html):
    page = Tables(page_html[1])
    assert rows(page, f"similar-{cb.AID}") == [["s00", "s01", "100 %"]]   # everyone else wrote nothing
    assert f"similar-{cb.OTHER}" not in page.tables
    assert page_html[1].count('<div class="pair"><pre>') == 1 and "<mark>" in page_html[1]


def test_figures_are_embedded_pngs(page_html):
    page = Tables(page_html[1])
    # notebook 00: histogram, pass rates, lateness, grading time; notebook 05: no grading time
    assert len(page.images) == 4 + 3
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in page_html[2].iterdir()) == ["index.html"]   # one page, nothing beside


def test_an_assignment_missing_from_the_gradebook_is_an_error(page_html, tmp_path):
    course = page_html[0]
    run = subprocess.run([sys.executable, "-m", "autograder", "--course", str(course.root), "--db", course.db_url,
                          "report", "02_vae", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 2 and "the gradebook has no assignment '02_vae'" in run.stderr


def test_the_same_report_from_postgresql(page_html, postgres, tmp_path_factory):
    """nbgrader's API over PostgreSQL gives the same page, figures and all."""
    on_postgres = Tables(write_report(tmp_path_factory, postgres)[1])
    on_sqlite = Tables(page_html[1])
    assert on_postgres.tables == on_sqlite.tables and len(on_postgres.tables) == 6
    assert on_postgres.images == on_sqlite.images


def test_the_grade_log_keeps_the_latest_time(tmp_path):
    course = Course(tmp_path, notebooks=REPO / "notebooks")
    assert read_times(course) == {}
    log_times(course, [Result("ann", cb.AID, seconds=12.0), Result("bo", cb.AID, seconds=3.0)])
    log_times(course, [Result("ann", cb.AID, seconds=7.5, error="grading stopped")])   # graded again
    assert read_times(course) == {(cb.AID, "ann"): 7.5, (cb.AID, "bo"): 3.0}


def test_the_report_in_chromium(page_html):
    with browser.launched() as chromium:
        pg = chromium.new_page(viewport={"width": 1300, "height": 1000})
        pg.goto((page_html[2] / "index.html").as_uri())
        widths = pg.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
        assert len(widths) == 7 and min(widths) > 100, widths          # every figure decoded
        flagged = pg.locator(f"#cells-{cb.AID} tr.flag td:first-child").all_inner_texts()
        assert sorted(flagged) == ["test_kl_discrete", "test_kl_gauss_1d"]
        assert pg.locator("mark").first.is_visible()
        pg.screenshot(path=str(browser.artifacts() / "report.png"), full_page=True)
