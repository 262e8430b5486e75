"""The feedback service's journal (one entry per inbound submission: what was done with it, kept
across restarts) and the names and times of inbound submissions."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from nbgrader.utils import parse_utc

from ..inbound import intake
from ..inbound.intake import Refused


# --- the journal ---------------------------------------------------------------------------------

@dataclass
class Entry:
    """One inbound folder and what the service did with it."""
    name: str                     # the inbound folder's name: the key
    student: str
    assignment: str
    timestamp: str                # nbgrader's, from the name (UTC): as the student claims it
    status: str = "queued"        # queued, grading, graded, error, over_limit, skipped, refused
    counted: bool = False         # holds one of the day's graded submissions
    slot: int = 0                 # which of the day's (1-based), if counted
    seen: str = ""                # when the service first took it (UTC, ISO 8601)
    started: str | None = None    # the current or last grading
    finished: str | None = None
    attempts: int = 0             # gradings started (more than 1: one was interrupted)
    seconds: float | None = None  # the grading's wall-clock time
    score: float | None = None
    max_score: float | None = None
    released: str | None = None   # when its feedback reached the exchange
    error: str | None = None
    submitted: str = ""           # when it was handed in, from the system (nbgrader's format, UTC): see intake
    owner: str = ""               # the user name of the folder's owner
    refused: list[str] = field(default_factory=list)  # files the intake left out, a reason each

    @property
    def when(self) -> datetime:
        """The submission's time: the system's (``submitted``); the name's for entries of old journals."""
        for t in (self.submitted, self.timestamp):
            try:
                return submitted_at(t)
            except (ValueError, OverflowError, TypeError):
                pass
        return datetime(1970, 1, 1)

    @property
    def day(self) -> str:
        return f"{self.when:%Y-%m-%d}"


class Journal:
    """``{inbound folder name: Entry}``, saved as JSON by write-then-rename (never half-written)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: dict[str, Entry] = {}

    def load(self) -> "Journal":
        if self.path.exists():
            raw = json.loads(self.path.read_text())
            self.entries = {k: Entry(**v) for k, v in raw.get("entries", {}).items()}
        return self

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            json.dump({"version": 1, "entries": {k: asdict(e) for k, e in self.entries.items()}}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def recover(self) -> list[Entry]:
        """Gradings that were running when the service stopped go back to the queue."""
        interrupted = [e for e in self.entries.values() if e.status == "grading"]
        for e in interrupted:
            e.status, e.started = "queued", None
        return interrupted

    def used(self, student: str, assignment: str, day: str) -> int:
        """Graded submissions of ``student`` (the folders' owner) of ``assignment`` on ``day`` (by the
        system's time)."""
        return sum(1 for e in self.entries.values() if e.counted and e.student == student
                   and e.assignment == assignment and e.day == day)


def parse_name(name: str, released: set[str] | None = None) -> tuple[str, str, str] | None:
    """``(student, assignment, timestamp)`` that an inbound folder's name claims
    (``<student>+<assignment>+<timestamp>`` with an optional ``+<random>``, nbgrader's), or None if
    it is not such a name. Raises ``intake.Refused`` with the reason for a student that is not an
    id (``.``, ``..``, ``*``, a path) or an assignment not in ``released`` (if given). Whose the
    submission is, is decided by its folder's owner (``intake.identify``), not by the name."""
    parsed = intake.parse_name(name)
    if parsed is not None and released is not None and parsed[1] not in released:
        raise Refused(f"{parsed[1]} is not released: not graded")
    return parsed


def submitted_at(timestamp: str) -> datetime:
    """nbgrader's timestamp as a naive UTC datetime (as the gradebook keeps them)."""
    return parse_utc(timestamp)


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def iso(t: datetime | None = None) -> str:
    return (t or utcnow()).isoformat(timespec="seconds")
