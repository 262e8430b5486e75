"""The instructor's report after grading: one static HTML page (``<out>/index.html``), its
matplotlib figures embedded as base64 PNGs, no server.

Per assignment, from the gradebook (``nbgrader.api.Gradebook`` at the course's ``db_url``, so
SQLite or PostgreSQL alike), the autograded notebooks and the grade log:

- a summary (submissions, how many could not be graded, mean and median score, how many late);
- the score histogram (score = points less the late penalty);
- the pass rate of every graded test cell (a pass: the cell's full points), lowest first, over
  the submissions that could be graded; cells fewer than 5 % or more than 95 % pass are flagged;
- the score (before the penalty) against lateness in days (negative: early);
- grading time per submission, from the grade log (``Course.grade_log``), or "not recorded";
- the submissions that could not be graded (scored 0, their autograded notebook opening with
  ``This submission could not be graded: <reason>``, as ``autograder.grading.workers.explain`` writes it);
- pairs of submissions with similar solution code (``autograder.reports.similarity``), side by side.
"""
from __future__ import annotations

import base64
import html
import io
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from matplotlib.figure import Figure
from nbgrader.api import Gradebook, MissingEntry

from . import similarity
from ..course.course import Course, GradingError
from ..grading.grade import read_times
from ..course.solutions import cell_order

LOW, HIGH = 0.05, 0.95  # pass rates outside these are flagged
NOT_GRADED = re.compile(r"This submission could not be graded: (.*?)\*\*", re.S)


@dataclass
class CellRate:
    """How many of the ``graded`` submissions earned all ``points`` of test cell ``cell``."""
    cell: str
    points: float
    passed: int
    graded: int

    @property
    def rate(self) -> float | None:
        return self.passed / self.graded if self.graded else None

    @property
    def flag(self) -> str:
        if self.rate is None:
            return ""
        return "fewer than 5 % pass" if self.rate < LOW else "more than 95 % pass" if self.rate > HIGH else ""


@dataclass
class Submission:
    student: str
    score: float             # final: points less the late penalty
    points: float            # before the late penalty
    late_days: float | None  # (timestamp - due date) / 1 day; None without both
    seconds: float | None    # grading time from the grade log
    not_graded: str | None   # why it could not be graded, or None


@dataclass
class AssignmentReport:
    name: str
    max_score: float
    submissions: list[Submission]
    cells: list[CellRate]            # lowest pass rate first
    pairs: list[similarity.Pair] = field(default_factory=list)

    @property
    def not_graded(self) -> list[Submission]:
        return [s for s in self.submissions if s.not_graded]

    @property
    def late(self) -> list[Submission]:
        return [s for s in self.submissions if s.late_days is not None and s.late_days > 0]

    @property
    def times(self) -> list[float]:
        return [s.seconds for s in self.submissions if s.seconds is not None]


def not_graded_reason(course: Course, student: str, assignment: str) -> str | None:
    """The reason in the first cell of the autograded notebook, if it says it could not be graded."""
    path = course.autograded(student, assignment) / f"{assignment}.ipynb"
    try:
        first = nbformat.read(path, as_version=4).cells[0]
    except Exception:
        return None
    match = NOT_GRADED.search(first.source) if first.cell_type == "markdown" else None
    return match.group(1).strip() if match else None


def collect(course: Course, assignment: str, threshold: float | None = similarity.THRESHOLD) -> AssignmentReport:
    """Everything the report shows about ``assignment`` (``threshold`` None: no similarity)."""
    times = read_times(course)
    order = cell_order(assignment, course.root / "notebooks")
    with Gradebook(course.db_url) as gb:
        try:
            a = gb.find_assignment(assignment)
        except MissingEntry:
            raise GradingError(f"the gradebook has no assignment {assignment!r}") from None
        tests = sorted((c for nb in a.notebooks for c in nb.grade_cells if c.cell_type == "code"),
                       key=lambda c: (order.get(c.name, len(order)), c.name))
        passed = {c.name: 0 for c in tests}
        subs = []
        for sub in sorted(a.submissions, key=lambda s: s.student.id):
            student = sub.student.id
            reason = not_graded_reason(course, student, assignment) if sub.score == 0 else None
            late = ((sub.timestamp - sub.duedate).total_seconds() / 86_400
                    if sub.timestamp is not None and sub.duedate is not None else None)
            subs.append(Submission(student, sub.score - (sub.late_submission_penalty or 0.0), sub.score, late,
                                   times.get((assignment, student)), reason))
            if reason is None:
                for g in (g for nb in sub.notebooks for g in nb.grades if g.name in passed):
                    passed[g.name] += g.score >= g.max_score
        graded = sum(s.not_graded is None for s in subs)
        cells = [CellRate(c.name, c.max_score, passed[c.name], graded) for c in tests]
        report = AssignmentReport(assignment, a.max_score, subs,
                                  sorted(cells, key=lambda c: -1 if c.rate is None else c.rate))
    if threshold is not None:
        report.pairs = similarity.similar_pairs(course, assignment, threshold)
    return report


# --- figures -------------------------------------------------------------------------------

def _figure(width: float = 5, height: float = 3):
    """A figure and its axes, outside pyplot (no backend, nothing global)."""
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots()


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def histogram(r: AssignmentReport) -> str:
    fig, ax = _figure()
    graded = [s.score for s in r.submissions if not s.not_graded]
    ax.hist([graded, [s.score for s in r.not_graded]], bins=min(20, max(5, int(r.max_score) + 1)),
            range=(0, r.max_score or 1), stacked=True, color=["tab:blue", "tab:gray"], edgecolor="white",
            label=["graded", "could not be graded"])
    ax.set(xlabel=f"score (of {r.max_score:g})", ylabel="submissions", title=f"{r.name}: scores")
    ax.legend(fontsize=8)
    return _png(fig)


def pass_rates(r: AssignmentReport) -> str:
    fig, ax = _figure(5, 0.6 + 0.3 * max(1, len(r.cells)))
    rates = [100 * (c.rate or 0) for c in r.cells]
    bars = ax.barh([c.cell for c in r.cells], rates, color=["tab:red" if c.flag else "tab:blue" for c in r.cells])
    ax.bar_label(bars, [f"{x:.0f} %" for x in rates], padding=2, fontsize=8)
    for x in (100 * LOW, 100 * HIGH):
        ax.axvline(x, color="gray", linestyle=":", linewidth=1)
    ax.invert_yaxis()
    ax.set(xlim=(0, 112), xlabel="% of graded submissions with full points", title=f"{r.name}: test cells")
    return _png(fig)


def lateness(r: AssignmentReport) -> str:
    fig, ax = _figure()
    dated = [s for s in r.submissions if s.late_days is not None]
    ax.scatter([s.late_days for s in dated], [s.points for s in dated], s=14, label="before penalty")
    ax.scatter([s.late_days for s in dated], [s.score for s in dated], s=14, marker="x", label="after penalty")
    ax.axvline(0, color="gray", linestyle=":", linewidth=1)
    ax.set(xlabel="days after the due date", ylabel="score", ylim=(0, (r.max_score or 1) * 1.05),
           title=f"{r.name}: score against lateness")
    ax.legend(fontsize=8)
    return _png(fig)


def grading_times(r: AssignmentReport) -> str:
    fig, ax = _figure()
    ax.hist(r.times, bins=20, edgecolor="white")
    ax.set(xlabel="seconds", ylabel="submissions", title=f"{r.name}: grading time")
    return _png(fig)


# --- the page ------------------------------------------------------------------------------

STYLE = """body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}tr.flag td{background:#fde2e2}
.figs{display:flex;flex-wrap:wrap;gap:1em}.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:12px}mark{background:#ffe08a}"""


def _img(data: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _table(id_: str, head: list[str], rows: list[list], flags: list[bool] | None = None) -> str:
    flags = flags or [False] * len(rows)
    body = "".join(f'<tr{" class=flag" if f else ""}>' + "".join(f"<td>{html.escape(str(v))}</td>" for v in row)
                   + "</tr>" for row, f in zip(rows, flags))
    return (f'<table id="{id_}"><tr>' + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            + f"</tr>{body}</table>")


def _mean(xs: list[float]) -> str:
    return f"{statistics.mean(xs):.2f}" if xs else "-"


def section(r: AssignmentReport) -> str:
    subs = r.submissions
    on_time = [s.points for s in subs if s.late_days is not None and s.late_days <= 0]
    times = (f"median {statistics.median(r.times):.1f} s, max {max(r.times):.1f} s "
             f"({len(r.times)} of {len(subs)} submissions)" if r.times else "not recorded")
    summary = _table(f"summary-{r.name}", ["", ""], [
        ["submissions", len(subs)],
        ["could not be graded", len(r.not_graded)],
        ["mean score", _mean([s.score for s in subs])],
        ["median score", f"{statistics.median([s.score for s in subs]):.2f}" if subs else "-"],
        ["maximum score", f"{r.max_score:g}"],
        ["late", len(r.late)],
        ["mean score before penalty, on time / late", f"{_mean(on_time)} / {_mean([s.points for s in r.late])}"],
        ["grading time", times],
    ])
    cells = _table(f"cells-{r.name}", ["test cell", "points", "passed", "graded", "pass rate", "flag"],
                   [[c.cell, f"{c.points:g}", c.passed, c.graded,
                     "-" if c.rate is None else f"{100 * c.rate:.1f} %", c.flag] for c in r.cells],
                   [bool(c.flag) for c in r.cells])
    figs = [_img(histogram(r), "score histogram"), _img(lateness(r), "score against lateness")]
    if r.cells:
        figs.insert(1, _img(pass_rates(r), "pass rate per test cell"))
    if r.times:
        figs.append(_img(grading_times(r), "grading time per submission"))
    failed = (_table(f"not-graded-{r.name}", ["student", "reason"],
                     [[s.student, s.not_graded] for s in r.not_graded]) if r.not_graded else "<p>none</p>")
    pairs = "".join(
        f'<h4>{html.escape(p.a)} and {html.escape(p.b)}: {100 * p.similarity:.0f} %</h4><div class="pair">'
        f"<pre>{p.left}</pre><pre>{p.right}</pre></div>" for p in r.pairs)
    similar = (_table(f"similar-{r.name}", ["student", "student", "similarity"],
                      [[p.a, p.b, f"{100 * p.similarity:.0f} %"] for p in r.pairs]) + pairs
               if r.pairs else "<p>no pair above the threshold</p>")
    return (f'<section id="{html.escape(r.name)}"><h2>{html.escape(r.name)}</h2>{summary}'
            f'<div class="figs">{"".join(figs)}</div>'
            f"<h3>Test cells, lowest pass rate first</h3>{cells}"
            f"<h3>Could not be graded: {len(r.not_graded)}</h3>{failed}"
            f"<h3>Similar solutions</h3>{similar}</section>")


def write(course: Course, out: Path, assignments: list[str] | None = None,
          threshold: float | None = similarity.THRESHOLD) -> Path:
    """Write ``out/index.html`` for ``assignments`` (default: those with submissions in the
    gradebook, in course order); returns its path."""
    if not assignments:
        with Gradebook(course.db_url) as gb:
            assignments = sorted(a.name for a in gb.assignments if a.submissions)
    reports = [collect(course, a, threshold) for a in assignments]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    toc = " · ".join(f'<a href="#{html.escape(r.name)}">{html.escape(r.name)}</a>' for r in reports)
    note = ("" if threshold is None else
            f"<p>Similar solutions: pairs sharing {100 * threshold:.0f} % or more of either side's solution "
            "code (copydetect fingerprints; names, comments and the released stub ignored).</p>")
    page = (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Grading report</title>'
            f"<style>{STYLE}</style></head><body><h1>Grading report</h1><p>{toc}</p>{note}"
            + "".join(section(r) for r in reports) + "</body></html>")
    (out / "index.html").write_text(page)
    return out / "index.html"
