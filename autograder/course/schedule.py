"""The course's calendar: release and due dates per assignment, read from ``course.toml``.

``Schedule.load`` validates the file against the assignments in ``notebooks/`` and says what is
wrong (a bad date, an unknown assignment, a release after its due date, an assignment released
before the ones whose answers it gives away are closed). Dates are naive UTC ``datetime``s.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the course repository (config.REPO is this one)

COURSE_FILE = REPO / "course.toml"
FORMAT = "%Y-%m-%d %H:%M"


class ScheduleError(ValueError):
    """A course file that cannot be used, or a release it does not allow yet."""


@dataclass(frozen=True)
class Dates:
    release: datetime
    due: datetime
    after: tuple[str, ...] = ()  # assignments whose answers this one gives away


@dataclass(frozen=True)
class Schedule:
    assignments: dict[str, Dates] = field(default_factory=dict)
    late_penalty_per_day: float = 0.1

    @classmethod
    def load(cls, path: Path = COURSE_FILE, known: list[str] | None = None) -> "Schedule":
        """Read and check ``path``; ``known``: the assignments that exist (default: notebooks/)."""
        known = sorted(p.name for p in (REPO / "notebooks").iterdir() if p.is_dir()) if known is None else known
        raw = read_course_file(path)
        table = raw.get("assignments", {})
        if not isinstance(table, dict):
            raise ScheduleError(f"{path}: [assignments] must be a table")
        out = {}
        for name, entry in table.items():
            if name not in known:
                raise ScheduleError(f"{path}: unknown assignment {name!r} (known: {', '.join(known)})")
            out[name] = Dates(_date(path, name, entry, "release"), _date(path, name, entry, "due"),
                              tuple(entry.get("after", ())))
            if out[name].release > out[name].due:
                raise ScheduleError(f"{path}: {name} is released after it is due")
        penalty = raw.get("late_penalty_per_day", 0.1)
        if not isinstance(penalty, (int, float)) or not 0 < penalty <= 1:
            raise ScheduleError(f"{path}: late_penalty_per_day must be a number above 0 and at most 1")
        schedule = cls(out, float(penalty))
        for name, d in out.items():
            for earlier in d.after:
                if earlier not in out:
                    raise ScheduleError(f"{path}: {name}: 'after' names {earlier!r}, which has no dates")
                if d.release < schedule.closes(earlier):
                    raise ScheduleError(f"{path}: {name} gives away {earlier}'s answers and must be released "
                                        f"after {earlier} is closed ({schedule.closes(earlier):{FORMAT}})")
        return schedule

    def closes(self, assignment: str) -> datetime:
        """When a submission of ``assignment`` can no longer earn points: its due date plus the
        days after which the late penalty has taken the whole score."""
        return self.assignments[assignment].due + timedelta(days=math.ceil(1 / self.late_penalty_per_day))

    def due_dates(self) -> dict[str, str]:
        """``assignment -> "YYYY-MM-DD HH:MM:SS"`` as nbgrader's gradebook takes them."""
        return {a: f"{d.due:%Y-%m-%d %H:%M:%S}" for a, d in self.assignments.items()}

    def released(self, now: datetime | None = None) -> list[str]:
        """The assignments whose release date has come, in course order."""
        now = now or utcnow()
        return [a for a, d in sorted(self.assignments.items()) if d.release <= now]

    def check_release(self, assignment: str, now: datetime | None = None, force: bool = False) -> str | None:
        """Raise ``ScheduleError`` unless ``assignment`` may go to students at ``now``.

        ``force`` (the staff's ``--force``): a release date not yet come, or no dates at all, is
        returned as a warning instead; the ``after`` rule is never lifted (the assignment would give
        away the answers of one still open)."""
        now = now or utcnow()
        d = self.assignments.get(assignment)
        warning = None
        if d is None:
            warning = f"{assignment} has no dates in the course file"
        elif d.release > now:
            warning = f"{assignment} is released on {d.release:{FORMAT}} UTC (course file)"
        if warning and not force:
            raise ScheduleError(warning)
        for earlier in d.after if d else ():
            if self.closes(earlier) > now:
                raise ScheduleError(f"{assignment} gives away {earlier}'s answers: it cannot go out before "
                                    f"{earlier} is closed ({self.closes(earlier):{FORMAT}} UTC)"
                                    + (" - --force does not lift this" if force else ""))
        return warning


# --- the [service] table: the feedback service's settings (autograder.service) -----------------------

POLICIES = ("after_due_date", "always")
DEFAULT_LIMIT = 3


class SettingsError(ScheduleError):
    """A ``[service]`` table that cannot be used."""


@dataclass(frozen=True)
class Policy:
    daily_limit: int = DEFAULT_LIMIT
    hidden_messages: str = "after_due_date"


@dataclass(frozen=True)
class Settings:
    """The ``[service]`` table of ``course.toml``: defaults, and a sub-table per assignment.

    .. code-block:: toml

        [service]
        daily_limit = 3                     # graded submissions per student, assignment and UTC day
        hidden_messages = "after_due_date"  # or "always"

        [service.02_vae]
        daily_limit = 5
    """
    default: Policy = Policy()
    assignments: dict[str, Policy] = field(default_factory=dict)

    def policy(self, assignment: str) -> Policy:
        return self.assignments.get(assignment, self.default)

    @classmethod
    def load(cls, path: Path = COURSE_FILE, known: list[str] | None = None) -> "Settings":
        path = Path(path)
        known = sorted(p.name for p in (path.parent / "notebooks").iterdir() if p.is_dir()) \
            if known is None and (path.parent / "notebooks").is_dir() else known
        raw = read_course_file(path, SettingsError).get("service", {})
        if not isinstance(raw, dict):
            raise SettingsError(f"{path}: [service] must be a table")
        default = _policy(path, "service", {k: v for k, v in raw.items() if not isinstance(v, dict)}, Policy())
        per = {}
        for name, table in raw.items():
            if isinstance(table, dict):
                if known is not None and name not in known:
                    raise SettingsError(f"{path}: [service.{name}]: unknown assignment (known: {', '.join(known)})")
                per[name] = _policy(path, f"service.{name}", table, default)
        return cls(default, per)


def _policy(path: Path, where: str, table: dict, base: Policy) -> Policy:
    unknown = set(table) - {f.name for f in fields(Policy)}
    if unknown:
        raise SettingsError(f"{path}: [{where}]: unknown keys {', '.join(sorted(unknown))} "
                            f"(known: daily_limit, hidden_messages)")
    limit = table.get("daily_limit", base.daily_limit)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise SettingsError(f"{path}: [{where}] daily_limit must be a whole number >= 0, not {limit!r}")
    hidden = table.get("hidden_messages", base.hidden_messages)
    if hidden not in POLICIES:
        raise SettingsError(f"{path}: [{where}] hidden_messages must be one of {', '.join(POLICIES)}, not {hidden!r}")
    return Policy(limit, hidden)


def read_course_file(path: Path, error: type[ScheduleError] = ScheduleError) -> dict:
    """The course file's tables; ``error`` (a ``ScheduleError``) says why it cannot be read."""
    try:
        return tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise error(f"{path}: no course file (copy course.toml from the course repository)") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: not valid TOML: {e}") from None


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _date(path: Path, name: str, entry: dict, key: str) -> datetime:
    value = entry.get(key) if isinstance(entry, dict) else None
    try:
        return datetime.strptime(str(value), FORMAT)
    except ValueError:
        raise ScheduleError(f"{path}: {name}.{key} = {value!r} is not a date like '2027-01-15 23:59'") from None
