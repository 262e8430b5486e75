"""Hostile and broken submissions: the grader finishes, the gradebook stays intact, and each
student gets the grade the rules give. All are graded in one parallel run (``--workers 2``)."""
from __future__ import annotations

import os

import nbformat
import psutil
import pytest
from nbgrader.api import Gradebook

from autograder import guard, submissions
from autograder.config import REPO, torch_env
from autograder.grade import grade_folder

AID = "00_kl_elbo"
FULL = 14
WRONG_KL = '''
def kl_normal(qm, qv, pm, pv):
    return 0.5 * (torch.log(pv**2) - torch.log(qv**2) + qv**2 / pv**2 + (qm - pm).pow(2) / pv**2 - 1).sum(-1)
'''


def first_cell(gid):
    return lambda nb: next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def prepend(gid, code):
    def edit(nb):
        cell = first_cell(gid)(nb)
        cell.source = code + "\n" + cell.source
    return edit


def drop(gid):
    def edit(nb):
        nb.cells.remove(first_cell(gid)(nb))
    return edit


def set_source(gid, code):
    def edit(nb):
        first_cell(gid)(nb).source = code
    return edit


def both(*edits):
    def edit(nb):
        for e in edits:
            e(nb)
    return edit


def kernel(name):
    def edit(nb):
        nb.metadata.kernelspec = {"name": name, "display_name": name, "language": "python"}
    return edit


def to_markdown(gid):
    def edit(nb):
        cell = first_cell(gid)(nb)
        nb.cells[nb.cells.index(cell)] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata)
    return edit


# name -> (edit of a correct submission, expected autograded score, test cell expected at 0 or None)
CASES = {
    "infinite_loop": (prepend("kl_discrete", "while True:\n    pass"), FULL - 2, "test_kl_discrete"),
    "sys_exit": (prepend("kl_discrete", "import sys\nsys.exit(3)"), FULL - 2, "test_kl_discrete"),
    "memory_bomb": (prepend("kl_discrete", "hog = bytearray(40 << 30)"), FULL - 2, "test_kl_discrete"),
    "huge_output": (prepend("kl_discrete", "print('x' * 20_000_000)"), FULL, None),
    "deleted_test_cell": (both(drop("test_kl_normal"), set_source("kl_normal", WRONG_KL)),
                          FULL - 3 - 3, "test_kl_normal"),
    "edited_test_cell": (both(set_source("test_kl_normal", "pass"), set_source("kl_normal", WRONG_KL)),
                         FULL - 3 - 3, "test_kl_normal"),
    "test_cell_made_markdown": (both(to_markdown("test_kl_normal"), set_source("kl_normal", WRONG_KL)),
                                FULL - 3 - 3, "test_kl_normal"),
    "added_cells": (lambda nb: nb.cells.insert(3, nbformat.v4.new_code_cell("extra = 1")), FULL, None),
    "kernel_renamed": (kernel("evil-kernel"), FULL, None),
    "prints_kernel_setup": (prepend("kl_discrete", "import torch\nprint('ATen kernels:', torch.backends.cpu.get_cpu_capability())"),
                            FULL, None),
    "redefined_assertion_error": (both(set_source("kl_normal", WRONG_KL), prepend(
        "kl_normal", "import builtins\nbuiltins.AssertionError = AssertionError = type('AE', (Exception,), {})")),
        FULL - 3 - 3, "test_kl_normal"),
    "patched_allclose": (both(set_source("kl_normal", WRONG_KL), prepend(
        "kl_normal", "torch.allclose = lambda *a, **k: True\ntorch.Tensor.all = lambda self, *a: True")),
        FULL - 3 - 3, "test_kl_normal"),
    "fake_torch_module": (both(set_source("kl_normal", WRONG_KL), prepend(
        "kl_normal", "import types\nfake = types.ModuleType('torch')\nfake.__dict__.update(vars(torch))\n"
        "fake.allclose = lambda *a, **k: True\ntorch = fake")), FULL - 3 - 3, "test_kl_normal"),
}
# As root the kernel runs in autograder.sandbox: the course is hidden or read-only, the scratch
# gradebook is /dev/null to it, and its processes are capped. Not root: no mount namespace.
SANDBOXED = os.geteuid() == 0
SOURCE = REPO / "notebooks" / AID / f"{AID}.ipynb"
CASES["writes_gradebook"] = (prepend("kl_discrete", "open('../../../gradebook.db', 'wb').write(b'gone')"),
                             FULL if SANDBOXED else 0, None)
SANDBOX_CASES = {
    "reads_source_notebook": (prepend("kl_discrete", f"print(open({str(SOURCE)!r}).read())"),
                              FULL - 2, "test_kl_discrete"),
    "reads_gradebook": (prepend("kl_discrete", "print(open('../../../gradebook.db', 'rb').read())"), FULL, None),
    "writes_into_course_code": (prepend("kl_discrete", f"open({str(REPO / 'helpers' / 'planted.py')!r}, 'w')"),
                                FULL - 2, "test_kl_discrete"),
}
if SANDBOXED:
    CASES.update(SANDBOX_CASES)


@pytest.fixture(scope="module")
def hostile_run(course, released, tmp_path_factory):
    inbox = tmp_path_factory.mktemp("hostile")
    source = course.source(AID)
    for name, (edit, _, _) in CASES.items():
        nb = submissions.answered(released(AID), source)
        edit(nb)
        submissions.write(nb, inbox, name, AID)
    (inbox / "malformed_json" / AID).mkdir(parents=True)
    (inbox / "malformed_json" / AID / f"{AID}.ipynb").write_text("{not json")
    (inbox / "missing_notebook" / AID).mkdir(parents=True)
    (inbox / "missing_notebook" / AID / "notes.txt").write_text("forgot it")
    submissions.write(nbformat.read(REPO / "notebooks" / "05_gan" / "05_gan.ipynb", as_version=4),
                      inbox, "other_assignment", AID)
    exits = submissions.answered(released(AID), source)
    prepend("kl_discrete", "import os\nos._exit(1)")(exits)
    submissions.write(exits, inbox, "kernel_exit", AID)
    (inbox / "extra_files" / AID).mkdir(parents=True)
    submissions.write(submissions.answered(released(AID), source), inbox, "extra_files", AID)
    bomb = submissions.answered(released(AID), source)
    prepend("kl_discrete", "import os\nwhile True:\n    os.fork()")(bomb)
    submissions.write(bomb, inbox, "fork_bomb", AID)
    (inbox / "extra_files" / AID / "big.bin").write_bytes(b"\0" * (5 << 20))
    results = grade_folder(course, inbox, workers=2, progress=False, cell_timeout=20)
    return {r.student: r for r in results}


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_submission_gets_the_rule_grade(hostile_run, course, name):
    _, expected, zero_cell = CASES[name]
    result = hostile_run[name]
    assert result.score is not None, result.error
    assert result.score.auto == expected, result.line()
    if zero_cell:
        assert course.cell_scores(AID, name)[zero_cell] == 0


def test_broken_submissions_are_reported_and_the_gradebook_survives(hostile_run, course):
    assert "JSON" in hostile_run["malformed_json"].error and hostile_run["malformed_json"].score.auto == 0
    assert hostile_run["missing_notebook"].score is None and "no 00_kl_elbo.ipynb" in hostile_run["missing_notebook"].error
    assert hostile_run["extra_files"].score.auto == FULL
    # Rules: a notebook of another assignment, or one that kills the grading kernel, scores 0
    # and the reason is reported (and shown in its feedback notebook).
    assert hostile_run["other_assignment"].score.auto == 0
    assert "another assignment" in hostile_run["other_assignment"].error
    assert hostile_run["kernel_exit"].score.auto == 0 and "Kernel died" in hostile_run["kernel_exit"].error
    if not SANDBOXED:
        assert hostile_run["writes_gradebook"].error, "a broken scratch gradebook is reported"
    with Gradebook(course.db_url) as gb:  # the course's gradebook is untouched and complete
        graded = {s.student.id for s in gb.find_assignment(AID).submissions}
    assert set(CASES) <= graded


def printed(course, name: str) -> str:
    """What the cell that the case edited printed while graded."""
    nb = nbformat.read(course.autograded(name, AID) / f"{AID}.ipynb", as_version=4)
    cell = first_cell("kl_discrete")(nb)
    return "\n".join(o.get("text", "") + o.get("evalue", "") for o in cell.outputs)


def test_grading_kernels_run_with_the_course_torch_env(hostile_run, course):
    import torch  # this process's own choice, for a machine where torch_env adds nothing
    want = torch_env().get("ATEN_CPU_CAPABILITY", torch.backends.cpu.get_cpu_capability()).upper()
    assert f"ATen kernels: {want}" in printed(course, "prints_kernel_setup")


@pytest.mark.skipif(not SANDBOXED, reason="the grading sandbox needs root (mount namespace, pids cgroup)")
def test_sandbox_hides_the_course_from_student_code(hostile_run, course):
    source = printed(course, "reads_source_notebook")
    assert "No such file" in source and "HIDDEN" not in source
    assert printed(course, "reads_gradebook").strip() == "b''", "the scratch gradebook must look empty"
    assert "Read-only file system" in printed(course, "writes_into_course_code")
    assert not (REPO / "helpers" / "planted.py").exists(), "the course's code must be read-only"


@pytest.mark.skipif(not SANDBOXED, reason="the process cap for root needs a pids cgroup")
def test_fork_bomb_is_capped_and_cleaned_up(hostile_run, course):
    result = hostile_run["fork_bomb"]
    assert result.score is not None and result.score.auto <= FULL - 2, result.line()
    assert "fork bomb" in result.error
    left = [p.pid for p in psutil.process_iter(["cwd"]) if "dgm-grade-" in (p.info["cwd"] or "")]
    assert not left, "no process of a graded submission survives"


def test_guard_restores_numpy_and_torch_testing():
    import numpy
    import torch

    ns: dict = {}
    exec(guard.prelude("_saved", guard.BASE), ns)
    real = numpy.testing.assert_allclose, torch.testing.assert_close
    try:
        numpy.testing.assert_allclose = torch.testing.assert_close = lambda *a, **k: None
        exec(guard.RESTORE.format(store="_saved"), ns)
        assert (numpy.testing.assert_allclose, torch.testing.assert_close) == real
        with pytest.raises(AssertionError):
            numpy.testing.assert_allclose(1.0, 2.0)
    finally:
        numpy.testing.assert_allclose, torch.testing.assert_close = real


def test_guard_restores_the_course_code_that_hidden_tests_score_with():
    import autograder.conditional as conditional
    import helpers.metrics as metrics

    ns: dict = {}
    exec(guard.prelude("_saved", guard.BASE + ["helpers.metrics", "autograder.conditional"]), ns)
    real = metrics.ssim, conditional.metrics, conditional.evaluate
    try:
        metrics.ssim = lambda *a, **k: 1.0
        conditional.metrics, conditional.evaluate = None, lambda *a, **k: "full marks"
        exec(guard.RESTORE.format(store="_saved"), ns)
        assert (metrics.ssim, conditional.metrics, conditional.evaluate) == real
    finally:
        metrics.ssim, conditional.metrics, conditional.evaluate = real


def test_regrading_is_idempotent_and_parallel_matches_serial(course, released, tmp_path):
    inbox = tmp_path / "inbox"
    good = submissions.answered(released(AID), course.source(AID))
    bad = submissions.answered(released(AID), course.source(AID), {"kl_normal": WRONG_KL})
    submissions.write(good, inbox, "para_good", AID)
    submissions.write(bad, inbox, "para_bad", AID)
    first = {r.student: r.score.auto for r in grade_folder(course, inbox, workers=2, progress=False)}
    again = {r.student: r.score.auto for r in grade_folder(course, inbox, workers=1, progress=False)}
    assert first == again == {"para_good": FULL, "para_bad": FULL - 6}
    with Gradebook(course.db_url) as gb:
        assert sum(s.student.id == "para_good" for s in gb.find_assignment(AID).submissions) == 1


def test_dask_local_cluster_grades_like_local_workers(course, released, tmp_path):
    from dask.distributed import Client, LocalCluster

    inbox = tmp_path / "inbox"
    submissions.write(submissions.answered(released(AID), course.source(AID), {"kl_normal": WRONG_KL}),
                      inbox, "dask_bad", AID)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        [result] = grade_folder(course, inbox, scheduler=client, progress=False)
    assert result.score.auto == FULL - 6 and result.error is None


def test_wall_clock_limit_stops_a_submission(course, released, tmp_path):
    inbox = tmp_path / "inbox"
    nb = submissions.answered(released(AID), course.source(AID))
    prepend("kl_discrete", "import time\nwhile True:\n    time.sleep(1)")(nb)
    submissions.write(nb, inbox, "too_slow", AID)
    [result] = grade_folder(course, inbox, progress=False, wall_clock=25, cell_timeout=600)
    assert result.score.auto == 0 and "25 s limit" in result.error
    feedback = nbformat.read(course.autograded("too_slow", AID) / f"{AID}.ipynb", as_version=4)
    assert "could not be graded" in feedback.cells[0].source
    left = [p.pid for p in psutil.process_iter(["cwd"]) if "dgm-grade-" in (p.info["cwd"] or "")]
    assert not left, "the kernel of a stopped submission must not survive"
