"""Which folders of the exchange's inbound are submissions, and whose: a folder is its owner's
(``lstat``), never its name's; it counts once nbgrader's submit has written its secret; its time is
the system's. The roster and the released assignments it is checked against are read here too."""
from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Container
from pathlib import Path

from ..course.course import Course, GradingError
from ..course.schedule import Schedule, ScheduleError
from ..inbound import intake
from ..inbound.intake import Refused
from .journal import Entry, iso, parse_name

SECRET = re.compile(r"[0-9a-f]{128}")  # nbgrader's submission_secret.txt (secrets.token_hex(64))
INCOMPLETE_AFTER_S = 600.0             # a folder without its secret after this long is not a submission
ROSTER_TTL_S = 30.0                    # how long the roster read from the gradebook and roster.csv is kept


class Inbox:
    """The inbound and outbound folders of ``course`` under ``root`` (``<exchange>/<course_id>``)."""

    def __init__(self, course: Course, root: Path):
        self.course, self.path, self.outbound = course, root / "inbound", root / "outbound"
        self._roster: tuple[float, set[str] | None] | None = None

    def roster(self) -> set[str] | None:
        """The course's student ids (``intake.load_roster``), read again every ``ROSTER_TTL_S``."""
        now = time.monotonic()
        if self._roster is None or now - self._roster[0] > ROSTER_TTL_S:
            self._roster = (now, intake.load_roster(self.course.root, self.course.db_url))
        return self._roster[1]

    def released(self) -> set[str]:
        """Assignments students have: in the exchange's outbound, or out by the course's calendar."""
        try:
            out = {n for n in os.listdir(self.outbound) if stat.S_ISDIR(os.lstat(self.outbound / n).st_mode)}
        except OSError:
            out = set()
        try:
            out |= set(Schedule.load(known=self.course.assignments()).released())
        except ScheduleError:
            pass
        return out & set(self.course.assignments())

    def new(self, known: Container[str]) -> list[Entry]:
        """The journal entries of the folders not in ``known`` that are submissions, oldest first:
        ``refused`` ones (with the reason) included, those of an assignment the course does not
        have ``skipped``, those not (yet) submissions left out."""
        try:
            names = [n for n in os.listdir(self.path) if n not in known]
        except FileNotFoundError:
            return []
        new = []
        released = self.released() if names else set()
        for name in names:
            try:
                entry = self.admit(name, released)
            except Refused as e:
                parsed = claimed(name)
                entry = Entry(name, *parsed, seen=iso(), status="refused", error=str(e),
                              submitted=intake.stamp(time.time()))
            if entry is not None:
                new.append(entry)
        new.sort(key=lambda e: (e.when, e.name))
        for e in new:
            if e.status not in ("skipped", "refused"):
                try:
                    self.course.check_assignment(e.assignment)
                except GradingError as err:
                    e.status, e.error = "skipped", str(err)
        return new

    def admit(self, name: str, released: set[str]) -> Entry | None:
        """The journal entry of a new inbound folder, None if it is not (yet) a submission; raises
        ``Refused`` with the reason for one the course does not take."""
        parsed = parse_name(name, released)
        if parsed is None:
            return None  # not nbgrader's (nbgrader's collect would fail on it too)
        folder = self.path / name
        try:
            st = os.lstat(folder)
        except OSError:
            return None  # gone
        if not stat.S_ISDIR(st.st_mode):
            raise Refused(f"{intake.describe(st.st_mode)}, not a folder")
        owner = intake.user_name(st.st_uid) or f"uid {st.st_uid}"
        try:
            student = intake.identify(st.st_uid, parsed[0], self.roster())
        except Refused as e:
            raise Refused(f"{e} (owner {owner})") from None
        ready = complete(folder)
        if isinstance(ready, str):
            raise Refused(ready)
        if ready is None and time.time() - st.st_mtime < INCOMPLETE_AFTER_S:
            return None  # still being written
        try:
            changed = intake.read(folder, contents=False).changed
        except intake.IntakeError as e:
            raise Refused(str(e)) from None
        entry = Entry(name, student, parsed[1], parsed[2], seen=iso(), owner=owner,
                      submitted=intake.stamp(min(changed, time.time())))
        if not ready:
            entry.status, entry.error = "skipped", "incomplete: no submission_secret.txt"
        return entry


def secret(folder: Path) -> str | None:
    """nbgrader's secret of the submission in ``folder`` (``submission_secret.txt``, read by ``intake``:
    no links, no FIFOs, 1 KiB at most); None if it is not 128 hex digits. Raises
    ``intake.IntakeError`` (an ``OSError``) if it cannot be read."""
    text = intake.read_file(folder, "submission_secret.txt", 1024).decode(errors="replace").strip()
    return text if SECRET.fullmatch(text) else None


def complete(folder: Path) -> bool | str | None:
    """True once nbgrader's submit has written the folder's secret (its last file); None before;
    the reason if the secret is there but not a regular small file (a link, a FIFO ...), read by
    ``intake`` (a FIFO never blocks the service)."""
    try:
        return True if secret(folder) else None
    except intake.IntakeError as e:
        return None if str(e).endswith(": missing") else str(e)
    except OSError:
        return None


def claimed(name: str) -> tuple[str, str, str]:
    """What a refused folder's name claims, for the journal (``-`` where it says nothing usable)."""
    parts = name.split("+")
    return (parts[0] or "-", parts[1] if len(parts) > 1 else "-", parts[2] if len(parts) > 2 else "-")
