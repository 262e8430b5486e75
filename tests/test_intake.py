"""Intake that trusts nothing (``autograder.inbound.intake``): what a hostile student hands in is taken as
regular files within caps, the rest refused with a reason, nothing outside the submission read,
nothing of the original lost; who and when come from the system. Also: ``release --force`` keeps
the ``after`` rule, the gradebook's URL stays off command lines, and students' HTML cannot run in
the feedback or the formgrader."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from autograder.inbound import intake
from autograder.course import submissions
from autograder.course.config import REPO
from autograder.grading.grade import NOTE_KEY, grade_folder
from autograder.course.schedule import Dates, Schedule, ScheduleError
from intake_cases import FAKE_URL, REASONS, accounts, chown_tree, hostile_extras

AID = "00_kl_elbo"


def snapshot(folder: Path) -> dict[str, tuple]:
    """What a folder holds, by lstat (links not followed): to check nothing was changed or lost."""
    return {str(p.relative_to(folder)): (os.lstat(p).st_mode, os.lstat(p).st_size, os.lstat(p).st_mtime)
            for p in [folder, *folder.rglob("*")]}


def test_only_regular_files_are_taken_and_the_rest_is_named_with_its_reason(tmp_path):
    folder = tmp_path / "mallory"
    folder.mkdir()
    (folder / f"{AID}.ipynb").write_text("{}")
    (folder / "a_notes.txt").write_text("mine")
    hostile_extras(tmp_path / "gradebook_url")(folder)
    deep = folder
    for i in range(10):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    before = snapshot(folder)
    start = time.monotonic()
    taken = intake.read(folder)
    assert time.monotonic() - start < 10
    assert taken.files[f"{AID}.ipynb"] == b"{}" and taken.files["a_notes.txt"] == b"mine"
    assert not any(name.startswith(("notes/", "zero", "pipe", "sparse", "hard", "zz_many/f3")) for name in taken.files)
    reasons = "\n".join(taken.reasons())
    for reason in REASONS:
        assert reason in reasons, reasons
    assert "folders nested deeper than 8" in reasons or "more than 300" in reasons  # the walk stops at the cap
    assert FAKE_URL.encode() not in b"".join(taken.files.values())
    assert snapshot(folder) == before  # nothing changed or lost in the original

    copied = tmp_path / "copy"
    intake.copy(folder, copied)
    assert not any(p.is_symlink() or not (p.is_file() or p.is_dir()) for p in copied.rglob("*"))
    assert (copied / "a_notes.txt").read_text() == "mine" and not (copied / "notes" / "gradebook_url").exists()


def test_depth_and_size_caps(tmp_path):
    deep = tmp_path / "s"
    for i in range(10):
        deep = deep / f"d{i}"
    deep.mkdir(parents=True)
    (deep / "x").write_text("x")
    assert any("nested deeper than 8" in r for r in intake.read(tmp_path / "s").reasons())
    big = tmp_path / "b"
    big.mkdir()
    with open(big / f"{AID}.ipynb", "wb") as f:
        f.truncate(21 << 20)
    for i in range(10):
        with open(big / f"f{i}.bin", "wb") as f:
            f.truncate(7 << 20)
    taken = intake.read(big)
    assert f"{AID}.ipynb: 21 MB, over the 20 MB a notebook may have, not copied" in taken.reasons()
    assert len(taken.files) == 8 and any("over the 60 MB a submission may hold in all" in r for r in taken.reasons())


def test_a_fifo_or_link_as_the_secret_never_blocks_and_a_linked_folder_is_not_entered(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    os.mkfifo(folder / "submission_secret.txt")
    start = time.monotonic()
    with pytest.raises(intake.IntakeError, match="submission_secret.txt: a FIFO"):
        intake.read_file(folder, "submission_secret.txt")
    assert time.monotonic() - start < 2
    (folder / "submission_secret.txt").unlink()
    (folder / "submission_secret.txt").symlink_to("/dev/zero")
    with pytest.raises(intake.IntakeError, match="a symbolic link"):
        intake.read_file(folder, "submission_secret.txt")
    (tmp_path / "link").symlink_to(folder, target_is_directory=True)
    with pytest.raises(intake.IntakeError, match="a symbolic link, not a folder"):
        intake.read(tmp_path / "link")


def test_a_folder_swapped_for_a_link_while_it_is_read_is_not_followed(tmp_path):
    folder = tmp_path / "s"
    (folder / "b").mkdir(parents=True)
    (folder / "b" / "ok.txt").write_text("ok")
    (folder / "a.txt").write_text("a")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(FAKE_URL)

    def swap(rel):  # runs when a.txt is reached, before b/ is looked at: b becomes a link
        if rel == "a.txt":
            os.rename(folder / "b", tmp_path / "b-old")
            (folder / "b").symlink_to(outside, target_is_directory=True)
        return False
    taken = intake.read(folder, skip=swap)
    assert "b: a symbolic link, not copied" in taken.reasons() and "b/secret.txt" not in taken.files


def test_time_is_the_systems_not_the_names(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "n.ipynb").write_text("{}")
    os.utime(folder / "n.ipynb", (0, 0))  # mtime in 1970: ctime moves to now
    os.utime(folder, (0, 0))
    assert abs(intake.read(folder, contents=False).changed - time.time()) < 60


def test_identity_is_the_owner_not_the_name(tmp_path):
    with accounts("ann", "ben") as users:
        (ann, ann_uid), (ben, ben_uid) = users["ann"], users["ben"]
        assert intake.identify(ann_uid, ann, {ann, ben}) == ann
        with pytest.raises(intake.Refused, match=f"named for {ann} but handed in by {ben}"):
            intake.identify(ben_uid, ann, {ann, ben})
        with pytest.raises(intake.Refused, match="not on the course's roster"):
            intake.identify(ben_uid, ben, {ann})
        assert intake.identify(ben_uid, ben, None) == ben  # no roster: the owner's own name only
        with pytest.raises(intake.Refused):
            intake.identify(ben_uid, ann, None)
        # root (tests, one machine) keeps the name, if the roster has it
        assert intake.identify(0, ann, {ann}) == ann
        with pytest.raises(intake.Refused, match="not on the course's roster"):
            intake.identify(0, "zoe", {ann})
        for bad in (".", "..", "*", "a/b", ""):
            with pytest.raises(intake.Refused, match="is not a student id"):
                intake.identify(0, bad, None)
        folder = tmp_path / "f"
        folder.mkdir()
        chown_tree(folder, ben_uid)
        assert intake.read(folder, contents=False).owner == ben_uid


# --- grade: hostile submissions beside honest ones ------------------------------------------------

def test_grade_takes_what_is_safe_and_says_what_it_left_out(course, released, tmp_path):
    """A folder of submissions (an LMS download) with links, FIFOs and giants beside honest ones:
    the honest are graded right, the hostile lose only what they tried, each with its reasons."""
    source = course.source(AID)
    inbox = tmp_path / "inbox"
    answered = submissions.answered(released(AID), source)
    submissions.write(answered, inbox, "alice", AID)
    submissions.write(answered, inbox, "mallory", AID)
    hostile_extras(tmp_path / "gradebook_url")(inbox / "mallory" / AID)
    (inbox / "fifo_nb" / AID).mkdir(parents=True)
    os.mkfifo(inbox / "fifo_nb" / AID / f"{AID}.ipynb")
    (inbox / "linked_nb" / AID).mkdir(parents=True)
    (inbox / "linked_nb" / AID / f"{AID}.ipynb").symlink_to(source)  # the answer key, hidden tests and all
    (inbox / "sparse_nb" / AID).mkdir(parents=True)
    with open(inbox / "sparse_nb" / AID / f"{AID}.ipynb", "wb") as f:
        f.truncate(100 << 30)
    (inbox / "linked_student").symlink_to(inbox / "alice", target_is_directory=True)
    (inbox / "linked_folder").mkdir()
    (inbox / "linked_folder" / AID).symlink_to(REPO / "notebooks" / AID, target_is_directory=True)
    before = snapshot(inbox)

    results = {r.student: r for r in grade_folder(course, inbox, workers=2, progress=False)}
    assert results["alice"].score.auto == 16 and not results["alice"].error
    mallory = results["mallory"]
    assert mallory.score.auto == 16, mallory.line()
    for reason in REASONS:
        assert reason in mallory.error, mallory.error
    for name in ("fifo_nb", "linked_nb", "sparse_nb"):
        assert results[name].score.auto == 0, results[name].line()
    assert "a FIFO (named pipe)" in results["fifo_nb"].error
    assert "a symbolic link" in results["linked_nb"].error
    assert "100 GB, over the 20 MB a notebook may have" in results["sparse_nb"].error
    assert results["linked_student"].score is None and "a symbolic link, not graded" in results["linked_student"].error
    assert results["linked_folder"].score is None and "a symbolic link, not graded" in results["linked_folder"].error
    assert snapshot(inbox) == before  # nothing of the originals changed or lost

    # nothing outside a submission came in: not the fake URL, not the source notebook
    for student in ("mallory", "linked_nb"):
        for p in course.submitted(student, AID).rglob("*"):
            assert not p.is_symlink() and stat.S_ISREG(p.lstat().st_mode) or p.is_dir()
            assert p.is_dir() or FAKE_URL.encode() not in p.read_bytes()
    assert not course.submitted("linked_nb", AID).joinpath(f"{AID}.ipynb").exists()
    # the reasons open mallory's feedback
    nb = nbformat.read(course.autograded("mallory", AID) / f"{AID}.ipynb", as_version=4)
    assert nb.cells[0].metadata.get(NOTE_KEY) and "symbolic link" in nb.cells[0].source
    html = course.feedback(AID, "mallory").read_text()
    assert "Not every file of this submission was taken" in html and "a FIFO (named pipe), not copied" in html
    assert FAKE_URL not in html
    html = course.feedback(AID, "fifo_nb").read_text()
    assert "could not be graded" in html and "FIFO" in html


# --- students' HTML in what TAs open -------------------------------------------------------------

class Live(HTMLParser):
    """What of a page would run of the students' (all their scripts call alert): event-handler attributes,
    javascript: URLs, scripts."""

    def __init__(self):
        super().__init__()
        self.found, self.script = [], False

    def handle_starttag(self, tag, attrs):
        self.script = tag == "script"
        for name, value in attrs:
            if name.startswith("on") and "alert(" in (value or "") or "javascript:" in (value or "").lower().replace(" ", ""):
                self.found.append(f"<{tag} {name}={value!r}>")

    def handle_data(self, data):
        if self.script and "alert(" in data:
            self.found.append(f"<script>{data.strip()[:60]}")

    def handle_endtag(self, tag):
        self.script = False

    @classmethod
    def find(cls, html: str) -> list[str]:
        parser = cls()
        parser.feed(html)
        return parser.found


SCRIPTS = ("<img src=x onerror=alert(1)>", "<script>alert(2)</script>", "[click](javascript:alert(3))",
           "<a href='javascript:alert(4)'>x</a>", "<svg onload=alert(5)>")


def test_students_html_cannot_run_in_feedback_or_the_formgrader(course, released, tmp_path):
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers

    nb = submissions.answered(released(AID), course.source(AID))
    nb.cells.append(nbformat.v4.new_markdown_cell(  # a cell of the student's own (locked cells are restored)
        "\n\n".join(SCRIPTS) + "\n\n**kept** $x^2$ <b>bold</b> [ok](https://example.org)"))
    nb.cells.append(nbformat.v4.new_raw_cell("<script>alert(9)</script>"))
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution"))
    cell.source += ("\nfrom IPython.display import HTML, Javascript, display\n"
                    "display(HTML('<script>alert(6)</script><b onmouseover=alert(7)>b</b><table><tr><td>t</td></tr></table>'))\n"
                    "display(Javascript('alert(8)'))")
    submissions.write(nb, tmp_path / "inbox", "html_student", AID)
    [result] = grade_folder(course, tmp_path / "inbox", progress=False)
    assert result.score.auto == 16, result.line()

    def dangerous(html: str) -> list[str]:
        return Live.find(html)
    feedback = course.feedback(AID, "html_student").read_text()
    assert not dangerous(feedback), dangerous(feedback)
    assert "<strong>kept</strong>" in feedback and "<b>bold</b>" in feedback and "<td>t</td>" in feedback
    # the formgrader renders the autograded notebook with HTMLExporter(config=the course's config)
    config = course.config.copy()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    autograded = nbformat.read(course.autograded("html_student", AID) / f"{AID}.ipynb", as_version=4)
    page, _ = HTMLExporter(config=config).from_notebook_node(autograded, resources={
        "base_url": "/", "index": 0, "total": 1, "notebook_id": AID, "submission_id": "x", "mathjax_url": "m"})
    assert not dangerous(page), dangerous(page)
    assert "<strong>kept</strong>" in page


# --- the calendar and the gradebook's URL ------------------------------------------------------------

def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_release_force_ignores_release_dates_but_never_the_after_rule(tmp_path):
    schedule = Schedule.load()
    d02 = schedule.assignments["02_vae"]
    during_02 = d02.due  # 02 is due, not closed: a late 02 can still earn points
    assert schedule.check_release("01_autoencoder", schedule.assignments["00_kl_elbo"].release, force=True)
    with pytest.raises(ScheduleError, match=r"gives away 0[12]_\w+'s answers.*--force does not lift this"):
        schedule.check_release("03_latent_manifolds", during_02, force=True)
    early = Dates(d02.release, schedule.assignments["03_latent_manifolds"].due, ("02_vae",))
    with pytest.raises(ScheduleError, match="02_vae is closed"):
        Schedule({**schedule.assignments, "03_latent_manifolds": early}).check_release(
            "03_latent_manifolds", during_02, force=True)
    run = cli("--course", str(tmp_path), "release", "--force", "--now", f"{during_02:%Y-%m-%d %H:%M}",
              "03_latent_manifolds", cwd=tmp_path)
    assert run.returncode == 2 and "gives away 01_autoencoder's answers" in run.stderr, run.stdout + run.stderr
    assert not (tmp_path / "release" / "03_latent_manifolds").exists()


def test_the_gradebooks_url_comes_from_a_file_and_a_password_on_the_command_line_is_warned_of(tmp_path):
    db = tmp_path / "elsewhere" / "gradebook.db"
    db.parent.mkdir()
    url_file = tmp_path / "gradebook_url"
    url_file.write_text(f"sqlite:///{db}\n")
    url_file.chmod(0o600)
    run = cli("--course", str(tmp_path), "--db-file", str(url_file), "roster",
              str(REPO / "autograder" / "students.example.csv"), cwd=tmp_path)
    assert run.returncode == 0 and "2 students" in run.stdout and db.is_file(), run.stderr
    assert "warning" not in run.stderr
    run = cli("--course", str(tmp_path), "--db", "postgresql://dgm:pw@127.0.0.1:9/dgm", "serve", "--status",
              cwd=tmp_path)
    assert "password on the command line" in run.stderr and "--db-file" in run.stderr
