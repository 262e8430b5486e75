"""Early feedback out through the exchange, from the service's scratch course: a graded
submission's autograded notebooks get the note (``notes.limit_note``) and, before the due date,
hidden tests' messages masked, then nbgrader's generate_feedback and release_feedback; one over
the day's limit gets a page that says it is kept. Both carry the submission's secret, so the TA's
feedback for it replaces them."""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import nbformat

from ..course.course import Course, GradingError
from ..course.schedule import Settings
from ..feedback.redact import mask_hidden_messages
from ..inbound import intake
from .inbox import secret
from .journal import Entry, Journal, iso, utcnow
from .notes import limit_note, over_limit_page

NOTE_KEY = "dgm_service"               # metadata of the note cell the service adds to the feedback


class Release:
    """Releases the feedback of submissions in ``inbound`` by ``settings``' policies, ``course``'s
    due dates and the day's graded submissions in ``journal``."""

    def __init__(self, course: Course, inbound: Path, settings: Settings, journal: Journal):
        self.course, self.inbound, self.settings, self.journal = course, inbound, settings, journal

    def due(self, assignment: str) -> datetime | None:
        d = self.course.due_dates.get(assignment)
        return datetime.strptime(d, "%Y-%m-%d %H:%M:%S") if d else None

    def copy_stamps(self, entry: Entry, dest: Path) -> None:
        """The submission's secret (read by ``intake``: no links, no FIFOs, 128 hex digits) and its
        time from the system (``entry.submitted``) into ``dest``, for nbgrader's release_feedback."""
        dest.mkdir(parents=True, exist_ok=True)
        found = secret(self.inbound / entry.name)
        if found is None:
            raise GradingError("submission_secret.txt is not nbgrader's secret")
        for name, text in (("timestamp.txt", entry.submitted or entry.timestamp),
                           ("submission_secret.txt", found)):
            path = dest / name
            if path.is_symlink():
                path.unlink()
            path.write_text(text)

    def graded(self, scratch: Course, entry: Entry) -> None:
        """Note and policy into the autograded notebooks, then nbgrader's generate_feedback and
        release_feedback from ``scratch``."""
        policy = self.settings.policy(entry.assignment)
        due = self.due(entry.assignment)
        masking = policy.hidden_messages == "after_due_date" and (due is None or utcnow() < due)
        autograded = scratch.autograded(entry.student, entry.assignment)
        self.copy_stamps(entry, autograded)
        used = self.journal.used(entry.student, entry.assignment, entry.day)
        for path in sorted(autograded.glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            if masking:
                mask_hidden_messages(nb)
            cell = nbformat.v4.new_markdown_cell(limit_note(entry, policy, used, due, masking))
            cell.metadata[NOTE_KEY] = True
            nb.cells.insert(0, cell)
            nbformat.write(nb, path)
        scratch.feedback(entry.assignment, entry.student)
        release(scratch, entry)

    def over_limit(self, scratch: Course, entry: Entry) -> None:
        """A feedback page per submitted notebook: kept, not graded now, when the next one counts."""
        folder = scratch.root / "feedback" / entry.student / entry.assignment
        try:
            if folder.exists():
                shutil.rmtree(folder)
            self.copy_stamps(entry, folder)
            page = over_limit_page(entry, self.settings.policy(entry.assignment), self.due(entry.assignment))
            looked = intake.read(self.inbound / entry.name, contents=False)
            for name in [n for n in looked.names if "/" not in n and n.endswith(".ipynb")]:
                (folder / f"{name[:-len('.ipynb')]}.html").write_text(page)
            release(scratch, entry)
        except (OSError, GradingError) as e:  # intake.IntakeError included
            entry.error = f"its note could not be released: {e}"
        self.journal.save()


def release(scratch: Course, entry: Entry) -> None:
    """nbgrader's release_feedback of ``entry`` from ``scratch``; the time goes into the journal entry."""
    Course._check(scratch.api.release_feedback(entry.assignment, student_id=entry.student),
                  f"release_feedback {entry.student}/{entry.assignment}")
    entry.released = iso()
