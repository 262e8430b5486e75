"""The grading service on the exchange (``python -m autograder serve``): early feedback,
fetchable with nbgrader's CLI; the daily limit; hidden messages; exactly once across restarts
and crashes; the latency benchmark on a tiny setting."""
from __future__ import annotations

import json
import math
import os
import re
import runpy
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from nbgrader.utils import notebook_hash

from autograder.service import service
from autograder.course import submissions
from autograder.inbound.intake import Refused
from autograder.course.config import REPO
from autograder.course.schedule import Policy, Schedule, ScheduleError, Settings, SettingsError
from autograder.feedback.redact import mask_hidden_messages
from autograder.service.journal import Entry, Journal, parse_name, submitted_at
from autograder.service.notes import limit_note
from autograder.service.processes import MARKER, reap_orphans

AID = "00_kl_elbo"
SOURCE = REPO / "notebooks" / AID / f"{AID}.ipynb"
NBGRADER = [sys.executable, "-m", "nbgrader"]
# Passes the visible tests (p = q, p = N(0, I)), fails the hidden ones (the mean term lacks / pv).
HIDDEN_FAIL = '''
def kl_normal(qm, qv, pm, pv):
    return 0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) - 1).sum(-1)
'''
SLEEP = "import time\ntime.sleep({})  # a slow student cell"


def sh(cmd: list[str], cwd: Path, timeout: float = 300) -> str:
    run = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"{' '.join(map(str, cmd))}\n{run.stdout}\n{run.stderr}"
    return run.stdout + run.stderr


# --- fast checks ------------------------------------------------------------------------------

def test_inbound_names_as_nbgrader_writes_them():
    assert parse_name(f"alice+{AID}+2027-01-10 12:00:00.123456 UTC+AbCd_ef12345") == \
        ("alice", AID, "2027-01-10 12:00:00.123456 UTC")
    assert parse_name(f"a+b+{AID}+2027-01-10 12:00:00.123456 UTC") == ("a+b", AID, "2027-01-10 12:00:00.123456 UTC")
    assert parse_name("notes") is None and parse_name("a+b+c") is None


@pytest.mark.parametrize("name, reason", [
    (f".+{AID}+2027-01-10 12:00:00.1 UTC+r", "'.' is not a student id"),
    (f"..+{AID}+2027-01-10 12:00:00.1 UTC+r", "'..' is not a student id"),
    (f"*+{AID}+2027-01-10 12:00:00.1 UTC+r", "'*' is not a student id"),
    (f"a/b+{AID}+2027-01-10 12:00:00.1 UTC", "'a/b' is not a student id"),
    ("alice+..+2027-01-10 12:00:00.1 UTC+r", "'..' is not an assignment id"),
    ("alice+01_autoencoder+2027-01-10 12:00:00.1 UTC+r", "01_autoencoder is not released"),
])
def test_names_that_are_not_one_students_released_assignment_are_refused_with_the_reason(name, reason):
    with pytest.raises(Refused) as e:
        parse_name(name, released={AID})
    assert str(e.value).startswith(reason)


def test_settings_in_course_toml_and_the_calendar_ignores_them(tmp_path):
    known = sorted(p.name for p in (REPO / "notebooks").iterdir() if p.is_dir())
    assert Schedule.load().due_dates() and Settings.load(known=known).default == Policy(3, "after_due_date")
    f = tmp_path / "course.toml"
    f.write_text('late_penalty_per_day = 0.1\n[assignments.00_kl_elbo]\nrelease = "2027-01-08 09:00"\n'
                 'due = "2027-01-15 23:59"\n[service]\ndaily_limit = 2\n'
                 '[service.00_kl_elbo]\nhidden_messages = "always"\n')
    assert Schedule.load(f, known).due_dates() == {AID: "2027-01-15 23:59:00"}
    s = Settings.load(f, known)
    assert s.policy(AID) == Policy(2, "always") and s.policy("02_vae") == Policy(2, "after_due_date")
    for bad in ('[service]\nhidden_messages = "never"\n', '[service]\ndaily_limit = -1\n',
                '[service]\nlimit = 3\n', '[service.99_nope]\ndaily_limit = 1\n'):
        f.write_text(bad)
        with pytest.raises(SettingsError):
            Settings.load(f, known)
    assert issubclass(SettingsError, ScheduleError)  # the CLI reports it and exits 2


def test_journal_is_replaced_whole_and_interrupted_gradings_are_requeued(tmp_path):
    j = Journal(tmp_path / "journal.json")
    stamp = "2027-01-10 12:00:00.000001 UTC"
    j.entries = {"a": Entry("a", "alice", AID, stamp, status="grading", counted=True, slot=1, attempts=1),
                 "b": Entry("b", "alice", AID, stamp, status="graded", counted=True, slot=2, attempts=1),
                 "c": Entry("c", "alice", AID, stamp, status="over_limit")}
    j.save()
    assert [p.name for p in tmp_path.iterdir()] == ["journal.json"]  # no temporary file left
    k = Journal(j.path).load()
    assert [e.name for e in k.recover()] == ["a"] and k.entries["a"].status == "queued"
    assert k.entries["a"].counted and k.used("alice", AID, "2027-01-10") == 2  # still holds its slot


def _failed_test_notebook(message: str):
    nb = nbformat.read(SOURCE, as_version=4)
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_kl_normal")
    cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue=message,
                                           traceback=[f"AssertionError: {message}"])]
    return nb, cell


def test_hidden_messages_read_failed_unless_a_visible_assert_carries_them():
    nb, cell = _failed_test_notebook("values differ (are v variances?)")    # a hidden assert's
    assert mask_hidden_messages(nb) == 1
    assert cell.outputs[0].evalue == "failed" and cell.outputs[0].traceback == ["AssertionError: failed"]
    nb, cell = _failed_test_notebook("KL(q||q) must be 0")  # a visible assert's
    assert mask_hidden_messages(nb) == 0 and cell.outputs[0].evalue == "KL(q||q) must be 0"
    nb, cell = _failed_test_notebook("expected shape (8,), got (8, 4)")   # a visible f-string
    assert mask_hidden_messages(nb) == 0


def test_the_note_says_what_is_left_and_when_the_next_counts():
    e = Entry("x", "alice", AID, "2027-01-10 12:00:00.1 UTC", counted=True, slot=1)
    text = limit_note(e, Policy(3, "after_due_date"), 1, None, True)
    assert "graded submission 1 of 3 on 2027-01-10" in text and "2 more graded submissions" in text
    assert "says only *failed*" in text
    text = limit_note(e, Policy(3, "always"), 3, None, False)
    assert "next one counts from 2027-01-11 00:00 UTC" in text and "failed" not in text


def test_jupyterhub_service_entry():
    entry = service.hub_service(Path("/srv/dgm/course"), Path("/srv/dgm/exchange"), python="/py", workers=3,
                                environment={"DGM_DATA": "/srv/dgm/data"})
    assert entry["command"] == ["/py", "-m", "autograder", "--course", "/srv/dgm/course", "serve", "--workers", "3"]
    assert entry["environment"] == {"DGM_DATA": "/srv/dgm/data", "DGM_EXCHANGE": "/srv/dgm/exchange"}
    assert entry["name"] == "feedback" and "url" not in entry and "user" not in entry  # root: the sandbox


# --- end to end, on the single-machine exchange ----------------------------------------------------

@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A course with 00_kl_elbo released to its exchange (copied by each test)."""
    root = tmp_path_factory.mktemp("template") / "course"
    root.mkdir()
    (root / "notebooks").symlink_to(REPO / "notebooks")
    shutil.copy(REPO / "nbgrader_config.py", root)
    sh([sys.executable, "-m", "autograder", "--course", str(root), "release", "--force", AID], root)
    sh(NBGRADER + ["release_assignment", AID], root)
    return root


class Class:
    """A copy of the template course, its students and its service."""

    def __init__(self, template: Path, tmp: Path):
        self.tmp, self.root = tmp, tmp / "course"
        shutil.copytree(template, self.root, symlinks=True)
        self.exchange = self.root / "exchange"
        self.services: list[tuple[subprocess.Popen, Path]] = []

    def serve(self, *args: str) -> subprocess.Popen:
        out = self.tmp / f"serve-{len(self.services)}.log"
        proc = subprocess.Popen([sys.executable, "-m", "autograder", "--course", str(self.root), "serve",
                                 "--interval", "0.3", *args], cwd=self.root, start_new_session=True,
                                stdout=open(out, "w"), stderr=subprocess.STDOUT)
        self.services.append((proc, out))
        wait_for(lambda: "serving" in out.read_text() or proc.poll() is not None, 120)
        assert proc.poll() is None, out.read_text()
        return proc

    def logs(self) -> str:
        return "".join(out.read_text() for _, out in self.services)

    def student(self, name: str, command: str) -> str:
        home = self.tmp / name
        home.mkdir(exist_ok=True)
        return sh(NBGRADER + [command, AID, "--course=dgm", f"--Exchange.root={self.exchange}",
                              f"--Exchange.cache={home / '.cache'}", f"--student={name}"], home)

    def write(self, name: str, overrides: dict | None = None, sleep: float = 0) -> None:
        released = self.root / "release" / AID / f"{AID}.ipynb"
        nb = submissions.answered(released, SOURCE, overrides)
        if sleep:
            nb.cells.insert(0, nbformat.v4.new_code_cell(SLEEP.format(sleep)))
        path = self.tmp / name / AID / f"{AID}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, path)

    def journal(self) -> dict[str, dict]:
        path = self.root / service.STATE_DIR / service.JOURNAL
        return json.loads(path.read_text())["entries"] if path.exists() else {}

    def entries(self, student: str) -> list[dict]:
        return sorted((e for e in self.journal().values() if e["student"] == student), key=lambda e: e["timestamp"])

    def feedback_file(self, entry: dict) -> Path:
        secret = (self.exchange / "dgm" / "inbound" / entry["name"] / "submission_secret.txt").read_text()
        return self.exchange / "dgm" / "feedback" / f"{notebook_hash(secret=secret, notebook_id=AID)}.html"

    def close(self) -> None:
        for proc, _ in self.services:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # graders a killed service left behind are ended by the next start; end any the test left
        reap_orphans(str(self.root / service.STATE_DIR), "none")


def wait_for(condition, timeout: float, step: float = 0.3) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(step)
    return False


@pytest.fixture
def klass(template, tmp_path):
    c = Class(template, tmp_path)
    yield c
    c.close()


def test_two_students_get_feedback_and_the_fourth_of_the_day_is_kept_not_graded(klass):
    klass.serve("--workers", "2")
    for i in range(4):                     # alice: four correct submissions on one day
        klass.write("alice")
        klass.student("alice", "submit")
    klass.write("bob", {"kl_normal": HIDDEN_FAIL})
    klass.student("bob", "submit")

    def settled():
        states = [e["status"] for e in klass.journal().values()]
        return len(states) == 5 and all(s in ("graded", "over_limit", "error") for s in states)
    assert wait_for(settled, 180), klass.logs()
    alice, [bob] = klass.entries("alice"), klass.entries("bob")
    assert [e["status"] for e in alice] == ["graded"] * 3 + ["over_limit"], klass.logs()
    assert [e["slot"] for e in alice] == [1, 2, 3, 0] and not alice[3]["counted"]
    assert all(e["score"] == e["max_score"] == 16 and e["attempts"] == 1 and not e["error"] for e in alice[:3])
    assert bob["status"] == "graded" and bob["score"] < 16
    latency = [(datetime.fromisoformat(e["released"]) - submitted_at(e["timestamp"]))
               .total_seconds() for e in alice[:1] + [bob]]
    print(f"feedback after {', '.join(f'{s:.0f} s' for s in latency)} (alice's first, bob's)")
    assert max(latency) < 120  # bench/feedback_latency.py: 00_kl_elbo, 10 at once, p95 well under this

    # The students fetch it with nbgrader's CLI: one page per submission, by its timestamp.
    klass.student("alice", "fetch_feedback")
    pages = {p.parent.name: p.read_text() for p in (klass.tmp / "alice" / AID / "feedback").glob(f"*/{AID}.html")}
    assert sorted(pages) == [e["timestamp"] for e in alice]
    for k, e in enumerate(alice[:3], 1):
        text = pages[e["timestamp"]]
        assert f"graded submission {k} of 3 on" in text and "feedback only" in text
        assert "BEGIN HIDDEN TESTS" not in text and "hidden tests ran here" in text
    assert "submission kept, not graded now" in pages[alice[3]["timestamp"]]
    assert "next submission counts from" in pages[alice[3]["timestamp"]]
    assert "You have used all 3 graded submissions" in pages[alice[2]["timestamp"]]
    klass.student("bob", "fetch_feedback")
    [page] = (klass.tmp / "bob" / AID / "feedback").glob(f"*/{AID}.html")
    text = page.read_text()
    assert "AssertionError: failed" in text and "are v variances" not in text  # hidden message, before the due date
    assert "kl_divergence(Normal(qm, qv.sqrt())" not in text

    # Nothing lost: the TA's collect takes alice's fourth (latest) submission, graded as usual at the
    # deadline; the service left the course's own gradebook alone.
    sh(NBGRADER + ["collect", AID], klass.root)
    stamp = (klass.root / "submitted" / "alice" / AID / "timestamp.txt").read_text().strip()
    assert stamp == alice[3]["submitted"]  # the system's time (st_ctime), as the service saw it
    assert abs((submitted_at(stamp) - submitted_at(alice[3]["timestamp"])).total_seconds()) < 5
    assert not (klass.root / "autograded").exists() and not (klass.root / "feedback").exists()
    status = subprocess.run([sys.executable, "-m", "autograder", "--course", str(klass.root), "serve", "--status"],
                            capture_output=True, text=True, timeout=120).stdout
    assert status.count(": graded 16/16") == 3 and ": over_limit" in status


def test_killed_in_the_middle_of_a_grading_nothing_is_graded_twice_or_lost(klass):
    # Carol's notebook sleeps in a cell; dave's is ordinary. One worker: carol first.
    first = klass.serve("--workers", "1")
    klass.write("carol", sleep=10)
    klass.student("carol", "submit")
    klass.write("dave")
    klass.student("dave", "submit")
    assert wait_for(lambda: [e["status"] for e in klass.entries("carol")] == ["grading"], 60), klass.logs()
    time.sleep(4)                                            # in the middle of carol's grading
    first.send_signal(signal.SIGKILL)                        # a crash: no clean-up at all
    first.wait()
    state = klass.root / service.STATE_DIR
    left = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if MARKER.encode() in _environ(pid) and str(state).encode() in _environ(pid)]
    assert left, "the killed service's grader goes on running (it is ended at the next start)"

    klass.serve("--workers", "1")
    assert "requeued carol+" in klass.logs() and "ended" in klass.logs()
    assert wait_for(lambda: [e["status"] for e in klass.journal().values()] == ["graded"] * 2, 150), klass.logs()
    assert not [p for p in left if Path(f"/proc/{p}").exists() and _state(p) != "Z"]
    [carol], [dave] = klass.entries("carol"), klass.entries("dave")
    assert carol["attempts"] == 2 and carol["slot"] == 1 and dave["attempts"] == 1
    assert carol["score"] == dave["score"] == 16
    for e in (carol, dave):  # one finished grading each, over both runs; feedback released
        assert klass.logs().count(f"graded {e['name']}:") == 1
        assert klass.feedback_file(e).is_file()

    # A clean stop (SIGTERM) in the middle of a grading: it is abandoned, the journal says so,
    # and the next start grades it.
    klass.write("carol", sleep=10)
    klass.student("carol", "submit")
    second = klass.services[-1][0]
    assert wait_for(lambda: [e["status"] for e in klass.entries("carol")][-1:] == ["grading"], 60), klass.logs()
    time.sleep(3)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0
    again = klass.entries("carol")[-1]
    assert again["status"] == "queued" and again["attempts"] == 1 and again["slot"] == 2
    assert "abandoned carol+" in klass.logs()
    run = subprocess.run([sys.executable, "-m", "autograder", "--course", str(klass.root), "serve", "--once",
                          "--interval", "0.3"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    again = klass.entries("carol")[-1]
    assert again["status"] == "graded" and again["attempts"] == 2 and klass.feedback_file(again).is_file()


def _environ(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def test_feedback_latency_benchmark_prints_its_summary_line(capsys):
    bench = runpy.run_path(str(REPO / "bench" / "feedback_latency.py"))
    bench["main"](["--sets", "00", "--together", "1", "--rounds", "1"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert any(re.match(r"00_kl_elbo, 1 at once: n=1, p50 \S+ s, p95 \S+ s", s) for s in lines), lines
    m = re.fullmatch(r"feedback: p50 (\S+) s, p95 (\S+) s", lines[-1])
    assert m, lines[-1]
    p50, p95 = map(float, m.groups())
    assert 0 < p50 <= p95 < 300 and math.isfinite(p95)


# --- hostile folders in inbound, beside honest ones --------------------------------------------------

def test_hostile_inbound_folders_are_refused_or_cut_and_honest_ones_graded(klass, tmp_path):
    """Owners are throw-away Unix accounts ann and ben (roster.csv). Each attack stays in its own
    submission; honest ones are graded right; the service stays up; nothing is lost."""
    from intake_cases import FAKE_URL, REASONS, accounts, hand_in, hostile_extras
    from autograder.inbound import intake

    with accounts("ann", "ben") as users:
        (ann, ann_uid), (ben, ben_uid) = users["ann"], users["ben"]
        (klass.root / "roster.csv").write_text(f"id\n{ann}\n{ben}\n")
        inbound = klass.exchange / "dgm" / "inbound"
        released = klass.root / "release" / AID / f"{AID}.ipynb"
        answered = nbformat.writes(submissions.answered(released, SOURCE)).encode()
        now = intake.stamp(time.time())
        honest = hand_in(inbound, ann, AID, now, answered, ann_uid)
        impostor = hand_in(inbound, ann, AID, now, released.read_bytes(), ben_uid)   # ben, as ann
        backdated = hand_in(inbound, ben, AID, "2020-01-01 00:00:00.000000 UTC", answered, ben_uid,
                            hostile_extras(tmp_path / "gradebook_url"))
        fifo_nb = hand_in(inbound, ben, AID, now, None, ben_uid, lambda f: os.mkfifo(f / f"{AID}.ipynb"))
        fifo_secret = hand_in(inbound, ann, AID, now, answered, ann_uid,
                              lambda f: os.mkfifo(f / "submission_secret.txt"), secret=False)
        names = [hand_in(inbound, claimed, AID, now, answered, None).name for claimed in (".", "..", "*")]
        unreleased = hand_in(inbound, ann, "01_autoencoder", now, answered, ann_uid)
        link = inbound / f"{ann}+{AID}+{now}+link"
        link.symlink_to(honest, target_is_directory=True)
        before = sorted(os.listdir(inbound))

        proc = klass.serve("--workers", "2")
        done = ("graded", "refused", "error", "over_limit", "skipped")
        assert wait_for(lambda: len(klass.journal()) == 10 and all(e["status"] in done for e in klass.journal().values()),
                        240), klass.logs()
        assert proc.poll() is None, klass.logs()     # still up
        j = klass.journal()
        assert j[honest.name]["status"] == "graded" and j[honest.name]["score"] == 16 and j[honest.name]["slot"] == 1
        assert j[impostor.name]["status"] == "refused" and not j[impostor.name]["counted"]
        assert f"named for {ann} but handed in by {ben}" in j[impostor.name]["error"]
        assert f"REFUSED {impostor.name!r}" in klass.logs()
        assert Journal(klass.root / service.STATE_DIR / service.JOURNAL).load().used(
            ann, AID, j[honest.name]["submitted"][:10]) == 1   # the impostor used none of ann's day

        b = j[backdated.name]
        assert b["status"] == "graded" and b["score"] == 16 and b["student"] == ben, b
        assert b["submitted"][:10] == now[:10] and b["timestamp"].startswith("2020")  # the system's day, not 2020
        stamp = (klass.root / service.STATE_DIR / "course" / "autograded" / ben / AID / "timestamp.txt").read_text()
        assert stamp.startswith(now[:10])
        for reason in REASONS:
            assert any(reason in r for r in b["refused"]), b["refused"]
        page = klass.feedback_file(b).read_text()
        assert "Not every file of this submission was taken" in page and "a symbolic link, not copied" in page
        assert FAKE_URL not in page

        f = j[fifo_nb.name]
        assert f["status"] == "graded" and f["score"] == 0 and "a FIFO (named pipe)" in f["error"], f
        assert "could not be graded" in klass.feedback_file(f).read_text()
        assert j[fifo_secret.name]["status"] == "refused" and "submission_secret.txt: a FIFO" in j[fifo_secret.name]["error"]
        for name, claimed in zip(names, (".", "..", "*")):
            assert j[name]["status"] == "refused" and f"{claimed!r} is not a student id" in j[name]["error"]
        assert j[unreleased.name]["status"] == "refused" and "01_autoencoder is not released" in j[unreleased.name]["error"]
        assert j[link.name]["status"] == "refused" and "a symbolic link, not a folder" in j[link.name]["error"]

        # feedback for the three graded only ('*' released nobody else's), the course folder intact
        assert len(list((klass.exchange / "dgm" / "feedback").glob("*.html"))) == 3
        assert (klass.root / service.STATE_DIR / "course" / "gradebook.db").is_file()
        assert (klass.root / "nbgrader_config.py").is_file()
        assert sorted(os.listdir(inbound)) == before and (backdated / "notes" / "gradebook_url").is_symlink()
        klass.close()
