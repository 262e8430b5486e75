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
from nbgrader.utils import parse_utc
from nbgrader.validator import Validator

from autograder.course import submissions
from autograder.course.config import REPO

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
    sh(course + ["release", "--force", AID], tmp_path)
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
    collected = parse_utc((root / "submitted" / "alice" / AID / "timestamp.txt").read_text().strip())
    assert abs((collected - parse_utc(alice_last)).total_seconds()) < 0.5  # the system's time of the later one
    (root / "submitted" / "bob" / AID / "timestamp.txt").write_text("2027-01-17 10:00:00.000000 UTC")
    sh(course + ["grade", str(root / "submitted"), "--csv", str(tmp_path / "grades.csv")], tmp_path)
    rows = {r["student"]: r for r in csv.DictReader(open(tmp_path / "grades.csv"))}
    assert float(rows["alice"]["auto"]) == float(rows["alice"]["auto_max"]) == 16
    assert float(rows["alice"]["late_penalty"]) == 0
    bob_raw = float(rows["bob"]["auto"])
    assert bob_raw < 16                                           # kl_normal (and elbo) fail
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
    assert "diag(1, 4)) || N(0, I)) = 1.3069, got" in bob      # the failing visible test's message
    assert "Late submission penalty" in bob


def test_assignments_tab_lists_fetches_and_submits_through_the_server(tmp_path):
    """What JupyterLab's Assignments tab does, through nbgrader's server extension."""
    import json
    import os
    import signal
    import socket
    import urllib.request

    root, home, conf = tmp_path / "course", tmp_path / "carol", tmp_path / "jupyter-config"
    for d in (root, home, conf):
        d.mkdir()
    (root / "notebooks").symlink_to(REPO / "notebooks")
    shutil.copy(REPO / "nbgrader_config.py", root)
    shutil.copy(REPO / "autograder" / "server" / "student_nbgrader_config.py", conf / "nbgrader_config.py")
    sh([sys.executable, "-m", "autograder", "--course", str(root), "release", "--force", AID], tmp_path)
    sh(NBGRADER + ["release_assignment", AID], root)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(conf), DGM_EXCHANGE=str(root / "exchange"),
               JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"))  # the student's own submission cache
    server = subprocess.Popen([sys.executable, "-m", "jupyter", "server", "--no-browser", "--allow-root",
                               f"--port={port}", "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=t",
                               f"--ServerApp.root_dir={home}"], cwd=home, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def call(path: str, data: dict | None = None):
        req = urllib.request.Request(f"{base}{path}{'&' if '?' in path else '?'}token=t",
                                     data=None if data is None else json.dumps(data).encode(),
                                     method="GET" if data is None else "POST")
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read())

    try:
        for _ in range(120):
            try:
                call("/api/status")
                break
            except OSError:
                time.sleep(0.5)
        listed = call("/assignments?course_id=dgm")
        assert listed["success"], listed
        assert [(a["assignment_id"], a["status"]) for a in listed["value"]] == [(AID, "released")]
        fetched = call("/assignments/fetch", {"course_id": "dgm", "assignment_id": AID})
        assert fetched["success"] and (home / AID / f"{AID}.ipynb").is_file()
        submitted = call("/assignments/submit", {"course_id": "dgm", "assignment_id": AID})
        assert submitted["success"], submitted
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    assert any(p.name.split("+")[1] == AID for p in (root / "exchange" / "dgm" / "inbound").iterdir())


def test_collect_takes_each_students_own_latest_by_the_systems_time_and_only_regular_files(tmp_path):
    """nbgrader's collect through the course's config (autograder.inbound.collect.SafeCollect): owners are
    throw-away Unix accounts ann and ben; an impostor, '..' and '*', links, FIFOs, a 100 GB sparse
    file and a backdated name, beside honest submissions."""
    import os

    from autograder.inbound import intake
    from intake_cases import FAKE_URL, REASONS, accounts, hand_in, hostile_extras

    root = tmp_path / "course"
    root.mkdir()
    (root / "notebooks").symlink_to(REPO / "notebooks")
    shutil.copy(REPO / "nbgrader_config.py", root)
    sh([sys.executable, "-m", "autograder", "--course", str(root), "release", "--force", AID], tmp_path)
    sh(NBGRADER + ["release_assignment", AID], root)
    inbound = root / "exchange" / "dgm" / "inbound"
    released = (root / "release" / AID / f"{AID}.ipynb").read_bytes()
    answered = nbformat.writes(submissions.answered(root / "release" / AID / f"{AID}.ipynb",
                                                    REPO / "notebooks" / AID / f"{AID}.ipynb")).encode()
    with accounts("ann", "ben") as users:
        (ann, ann_uid), (ben, ben_uid) = users["ann"], users["ben"]
        (root / "roster.csv").write_text(f"id\n{ann}\n{ben}\n")
        now = intake.stamp(time.time())
        hand_in(inbound, ben, AID, "2099-01-01 00:00:00.000000 UTC", None, ben_uid,
                lambda f: os.mkfifo(f / f"{AID}.ipynb"))                   # forward-dated: not the latest
        honest = hand_in(inbound, ann, AID, now, answered, ann_uid)
        time.sleep(0.05)
        impostor = hand_in(inbound, ann, AID, now, released, ben_uid)      # ben, as ann, later
        for claimed in ("..", "*"):
            hand_in(inbound, claimed, AID, now, released, None)
        time.sleep(0.05)
        backdated = hand_in(inbound, ben, AID, "2020-01-01 00:00:00.000000 UTC", answered, ben_uid,
                            hostile_extras(tmp_path / "gradebook_url"))     # the latest, by the system's time
        start = time.monotonic()
        out = sh(NBGRADER + ["collect", AID], root)
        assert time.monotonic() - start < 120
        assert f"Not collected: {impostor.name!r}: named for {ann} but handed in by {ben}" in out, out
        assert "'..' is not a student id" in out and "'*' is not a student id" in out
        assert sorted(p.name for p in (root / "submitted").iterdir()) == sorted([ann, ben])
        got = root / "submitted" / ann / AID
        assert (got / f"{AID}.ipynb").read_bytes() == answered      # hers, not the impostor's stub
        ben_copy = root / "submitted" / ben / AID
        assert (ben_copy / "timestamp.txt").read_text().startswith(now[:10])   # not 2020
        assert (ben_copy / f"{AID}.ipynb").read_bytes() == answered
        assert not any(p.is_symlink() or not (p.is_file() or p.is_dir()) for p in ben_copy.rglob("*"))
        assert not any(FAKE_URL.encode() in p.read_bytes() for p in ben_copy.rglob("*") if p.is_file())
        left_out = (ben_copy / intake.REFUSED_FILE).read_text()
        for reason in REASONS:
            assert reason in left_out, left_out
        assert (backdated / "notes" / "gradebook_url").is_symlink() and honest.is_dir()  # nothing lost

        # grade: ben's Result names what was left out; both graded right
        run = subprocess.run([sys.executable, "-m", "autograder", "--course", str(root), "grade", str(root / "submitted"),
                              "--csv", str(tmp_path / "grades.csv")], cwd=tmp_path, capture_output=True, text=True,
                             timeout=900)
        lines = {ln.split("/")[0]: ln for ln in run.stdout.splitlines() if "/" in ln}
        assert "autograded 16/16" in lines[ann] and "FAILED" not in lines[ann], run.stdout + run.stderr
        assert "autograded 16/16" in lines[ben] and "zero.bin: a symbolic link, not copied" in lines[ben], run.stdout


def test_private_submit_leaves_out_links_and_fifos_and_closes_the_folder(tmp_path):
    """The hub's submit (helpers.exchange.PrivateSubmit): a link to /dev/zero and a FIFO in the
    student's folder neither hang the submit nor reach the exchange; the folder is 0770."""
    import os
    import stat

    exchange = tmp_path / "exchange"
    (exchange / "dgm" / "inbound").mkdir(parents=True)
    (exchange / "dgm" / "outbound" / AID).mkdir(parents=True)
    (exchange / "dgm" / "outbound" / AID / f"{AID}.ipynb").write_text("{}")
    work = tmp_path / "carol" / AID
    work.mkdir(parents=True)
    shutil.copy(REPO / "notebooks" / AID / f"{AID}.ipynb", work)
    (work / "zero.bin").symlink_to("/dev/zero")
    os.mkfifo(work / "pipe")
    start = time.monotonic()
    out = sh(NBGRADER + ["submit", AID, "--course=dgm", f"--Exchange.root={exchange}",
                         f"--Exchange.cache={tmp_path / 'cache'}", "--student=carol",
                         "--ExchangeFactory.submit=helpers.exchange.PrivateSubmit"], tmp_path / "carol")
    assert time.monotonic() - start < 60
    assert "Not submitted: zero.bin is a symbolic link" in out and "Not submitted: pipe is a FIFO" in out
    [folder] = (exchange / "dgm" / "inbound").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{AID}.ipynb", "timestamp.txt", "submission_secret.txt"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o770
