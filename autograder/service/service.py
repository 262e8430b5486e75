"""Feedback minutes after submitting: ``python -m autograder serve``.

A long-lived process that watches the exchange's inbound folder (nbgrader's layout:
``<exchange>/<course_id>/inbound/<student>+<assignment>+<timestamp>[+random]/``), grades each
new submission with the same isolated graders as ``grade`` (``autograder.grading.workers``: sandbox,
limits, guard, local workers or a Dask scheduler) and releases its feedback through the
exchange, so the student gets it with the Assignments tab or ``nbgrader fetch_feedback``.

* **Early grades are feedback only.** The service grades into its own scratch course,
  ``<course>/feedback-service/course/`` (its own SQLite gradebook, autograded copies and
  feedback), never into the course's gradebook: the grade that counts is still the TA's
  ``collect`` + ``grade`` of the latest submission after the due date. Feedback released by the
  TA for that submission replaces the early one (both are keyed by the submission's secret).
* **Exactly once.** ``feedback-service/journal.json`` (written atomically) records every inbound
  folder by name with its state: ``queued``, ``grading``, ``graded``, ``error``, ``over_limit``,
  ``skipped``, ``refused``. A grading that was running when the service died is redone from scratch at the
  next start; it keeps the slot it was counted in. Submissions that arrived while the service
  was down are graded when it starts. One service per course (a lock file); graders left behind
  by a service that was killed are ended at the next start.
* **Who and when, from the system.** A submission is its folder's owner's (``lstat``), never
  the name's: a folder named for a classmate, for ``.``, ``..`` or ``*``, for someone not on the
  roster or for an assignment not released is ``refused`` (journal and log, for the staff) and
  counts for nobody. Its time is the latest ``st_ctime`` of the folder and its files, which the
  student cannot set back; it is the ``timestamp.txt`` graded (late penalty) and the day counted.
  Files are taken by ``autograder.inbound.intake``: no links, FIFOs or devices, sizes capped; what it
  leaves out is named in the feedback (``autograder.inbound.intake``).
* **Rate limit.** At most ``daily_limit`` graded submissions per student, assignment and UTC day
  (of the submission's time, above). One over the limit is kept (in inbound and the journal)
  and its feedback says so; the latest submission is graded at the due date as usual.
* **Hidden tests.** Their code never appears (``autograder.feedback.redact.RedactHiddenTests``). With
  ``hidden_messages = "after_due_date"`` (default), before the due date a failing test cell that
  holds hidden tests shows its message only if one of the cell's visible asserts carries it (the
  student can run those); otherwise the message reads ``failed``. ``"always"`` shows them.

Settings: the ``[service]`` table of ``course.toml`` (``Settings``). On the class server, run it
as a JupyterHub managed service (``hub_service``).

Beside this loop: the ``[service]`` settings are read with the calendar (``course.schedule``),
hidden tests' messages are masked beside the feedback's redaction (``feedback.redact``), and the
journal and the names of inbound submissions are ``service.journal``.
"""
from __future__ import annotations

import fcntl
import stat
import html
import multiprocessing.forkserver
import os
import re
import secrets
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import datetime, timedelta, timezone
from pathlib import Path

import nbformat

from ..grading import forkserver
from ..inbound import intake
from ..grading.cgroups import Cgroup
from ..course.config import COURSE_ID
from ..course.course import Course, GradingError
from ..inbound.intake import Refused
from ..course.schedule import (COURSE_FILE, DEFAULT_LIMIT, FORMAT, POLICIES, Policy, Schedule, ScheduleError,  # noqa: F401
                                Settings, SettingsError, read_course_file)
from ..feedback.redact import mask_hidden_messages, visible_messages  # noqa: F401
from .journal import Entry, Journal, iso, parse_name, submitted_at, utcnow  # noqa: F401
from ..grading.workers import (Outcome, SubmissionRefused, assignment_gradebook, make_task, merge,
                      run_task)

STATE_DIR = "feedback-service"        # in the course folder
JOURNAL = "journal.json"
LOCK = "lock"
MARKER = "DGM_FEEDBACK_SERVICE"        # in the environment of this service's graders: "<state dir>#<instance>"
SECRET = re.compile(r"[0-9a-f]{128}")  # nbgrader's submission_secret.txt (secrets.token_hex(64))
INCOMPLETE_AFTER_S = 600.0             # a folder without its secret after this long is not a submission
NOTE_KEY = "dgm_service"               # metadata of the note cell the service adds to the feedback
ROSTER_TTL_S = 30.0                    # how long the roster read from the gradebook and roster.csv is kept


# --- what the feedback says -------------------------------------------------------------------------

def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def next_day(day: str) -> str:
    return f"{datetime.strptime(day, '%Y-%m-%d') + timedelta(days=1):%Y-%m-%d} 00:00"


def limit_note(entry: Entry, policy: Policy, used: int, due: datetime | None, masked: bool) -> str:
    """The markdown note at the top of early feedback (``used``: graded submissions of that day so far)."""
    left = max(0, policy.daily_limit - used)
    nxt = (f"You have {_plural(left, 'more graded submission')} of {entry.assignment} on {entry.day} (UTC)."
           if left else
           f"You have used all {_plural(policy.daily_limit, 'graded submission')} of {entry.assignment} on "
           f"{entry.day} (UTC): the next one counts from {next_day(entry.day)} UTC (those before are kept, "
           "not graded now).")
    due_text = f"the due date ({due:{FORMAT}} UTC)" if due else "the due date"
    received = f" (received {entry.when:{FORMAT}} UTC)" if entry.submitted else ""
    lines = [f"**Early feedback** on your submission of {entry.timestamp}{received}: graded submission "
             f"{entry.slot} of {policy.daily_limit} on {entry.day} (UTC). {nxt}",
             f"This score is feedback only: the grade that counts is your latest submission's, "
             f"graded after {due_text}."]
    if masked:
        lines.append(f"Until {due_text}, a failing hidden test says only *failed*; its message shows after it.")
    if entry.refused:
        lines.append("**Not every file of this submission was taken** (the course takes regular files only, "
                     "within size limits):\n\n" + "\n".join(f"- {intake.markdown_text(r)}" for r in entry.refused))
    return "\n\n".join(lines)


def over_limit_page(entry: Entry, policy: Policy, due: datetime | None) -> str:
    """The feedback page of a submission over the day's limit."""
    e = html.escape
    due_text = f"the due date ({due:{FORMAT}} UTC)" if due else "the due date"
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{e(entry.assignment)}: not graded yet"
            f"</title></head><body>\n<h1>{e(entry.assignment)}: submission kept, not graded now</h1>\n"
            f"<p>Your submission of {e(entry.timestamp)} was received and is kept, but it is over the limit of "
            f"{_plural(policy.daily_limit, 'graded submission')} of {e(entry.assignment)} per day: you have used "
            f"all of {e(entry.day)} (UTC). The next submission counts from {next_day(entry.day)} UTC.</p>\n"
            f"<p>Your latest submission is graded after {e(due_text)}, as usual: this one, "
            f"unless you submit again.</p>\n</body></html>\n")


# --- the service ------------------------------------------------------------------------------------

def log(message: str) -> None:
    print(f"{iso()} {message}", flush=True)


class Service:
    """The grading service of ``course`` (see the module's docstring).

    ``workers``: gradings at once (local processes, or tasks in flight on ``scheduler``, a Dask
    address). ``interval``: seconds between looks at the inbound folder. ``limits``:
    ``wall_clock``, ``memory_mb``, ``threads`` of ``workers.Task``.
    """

    def __init__(self, course: Course, *, workers: int = 1, scheduler: str | None = None, interval: float = 2.0,
                 settings: Settings | None = None, say=log, **limits):
        self.course, self.workers, self.scheduler = course, max(1, workers), scheduler
        self.interval, self.limits, self.say = interval, limits, say
        self.settings = settings if settings is not None else Settings.load(known=course.assignments())
        self.exchange = Path(course.config.Exchange.root)
        self.course_id = course.config.CourseDirectory.course_id or COURSE_ID
        self.inbound = self.exchange / self.course_id / "inbound"
        self.state = course.root / STATE_DIR
        self.journal = Journal(self.state / JOURNAL)
        self.instance = f"{self.state}#{os.getpid()}-{secrets.token_hex(4)}"
        self.stop, self.abandon = threading.Event(), threading.Event()
        self._scratch: Course | None = None
        self._gradebooks: dict[str, bytes] = {}
        self._dask = None
        self._dask_futures: dict[str, object] = {}
        self._roster: tuple[float, set[str] | None] | None = None

    @property
    def scratch(self) -> Course:
        """The course the service grades into: the same notebooks and dates, its own gradebook."""
        if self._scratch is None:
            root = self.state / "course"
            self._scratch = Course(root, notebooks=self.course.root / "notebooks", due_dates=self.course.due_dates,
                                   db_url=f"sqlite:///{root / 'gradebook.db'}")
            self._scratch.config.Exchange.root = str(self.exchange)
            self._scratch.config.CourseDirectory.course_id = self.course_id
        return self._scratch

    def due(self, assignment: str) -> datetime | None:
        d = self.course.due_dates.get(assignment)
        return datetime.strptime(d, "%Y-%m-%d %H:%M:%S") if d else None

    # --- the loop ---------------------------------------------------------------------------------
    def run(self, once: bool = False) -> None:
        """Serve until ``stop`` is set (or, with ``once``, until nothing is left to grade).

        On ``stop``, running gradings finish (their feedback is released) unless ``abandon`` is
        set too, in which case their graders are killed and they go back to the queue."""
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.state / LOCK, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                lock.seek(0)
                raise GradingError(f"another `serve` holds {self.state / LOCK} ({lock.read().strip()})") from None
            lock.seek(0)
            lock.truncate()
            lock.write(f"pid {os.getpid()}\n")
            lock.flush()
            self._serve(once)

    def _serve(self, once: bool) -> None:
        reaped = reap_orphans(str(self.state), self.instance)
        if reaped:
            self.say(f"ended {len(reaped)} processes left by a service that stopped without cleaning up")
        self.journal.load()
        for e in self.journal.recover():
            self.say(f"requeued {e.name}: its grading was interrupted")
        self.journal.save()
        os.environ[MARKER] = self.instance  # graders inherit it (reap_orphans finds them after a crash)
        if self.scheduler is None:
            forkserver.warm_up()
        else:
            from dask.distributed import Client
            self._dask = Client(self.scheduler)
        self._prepare()
        if self.roster() is None:
            self.say("no roster (no students in the gradebook, no roster.csv): a submission is taken under the "
                     "name it carries if root or this service's account owns its folder, else only under its "
                     "owner's user name")
        self.say(f"serving {self.inbound} with {self.workers} worker(s)"
                 f"{f' on {self.scheduler}' if self.scheduler else ''}")
        pool = ThreadPoolExecutor(self.workers, thread_name_prefix="grade")
        running: dict = {}
        try:
            def fill():
                while len(running) < self.workers and (entry := self._next()) is not None:
                    future = self._start(pool, entry)
                    if future is not None:
                        running[future] = entry
            while not self.stop.is_set():
                self.scan()
                fill()
                if once and not running and self._next() is None:
                    break
                if running:
                    done, _ = wait(running, timeout=self.interval, return_when=FIRST_COMPLETED)
                    finished = [(future, running.pop(future)) for future in done]
                    if finished:
                        self.scan()
                        fill()  # the next gradings start before this one's feedback is written
                    for future, entry in finished:
                        self._finish(entry, future)
                else:
                    self.stop.wait(self.interval)
            while running:  # stopping: finish what runs, unless told to abandon it
                if self.abandon.is_set():
                    self._abandon(running)
                    break
                done, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    self._finish(running.pop(future), future)
        finally:
            if running:  # an exception in the loop: leave nothing half-done behind
                self._abandon(running)
            pool.shutdown(wait=True, cancel_futures=True)
            if self._dask is not None:
                self._dask.close()
            self.journal.save()
            self.say("stopped")

    def _prepare(self) -> None:
        """Know the assignments released to the exchange (outbound) before their submissions come."""
        outbound = self.exchange / self.course_id / "outbound"
        names = sorted(p.name for p in outbound.iterdir()) if outbound.is_dir() else []
        for aid in names:
            if aid in self.course.assignments():
                try:
                    self._gradebook(aid)
                except GradingError as e:
                    self.say(f"cannot prepare {aid}: {e}")

    def roster(self) -> set[str] | None:
        """The course's student ids (``intake.load_roster``), read again every ``ROSTER_TTL_S``."""
        now = time.monotonic()
        if self._roster is None or now - self._roster[0] > ROSTER_TTL_S:
            self._roster = (now, intake.load_roster(self.course.root, self.course.db_url))
        return self._roster[1]

    def released(self) -> set[str]:
        """Assignments students have: in the exchange's outbound, or out by the course's calendar."""
        outbound = self.exchange / self.course_id / "outbound"
        try:
            out = {n for n in os.listdir(outbound) if stat.S_ISDIR(os.lstat(outbound / n).st_mode)}
        except OSError:
            out = set()
        try:
            out |= set(Schedule.load(known=self.course.assignments()).released())
        except ScheduleError:
            pass
        return out & set(self.course.assignments())

    def _gradebook(self, assignment: str) -> bytes:
        if assignment not in self._gradebooks:
            self.scratch.ensure_released(assignment)
            self._gradebooks[assignment] = assignment_gradebook(self.scratch.db_url, assignment)
        return self._gradebooks[assignment]

    # --- new submissions ----------------------------------------------------------------------------
    def scan(self) -> list[Entry]:
        """Take the new complete submissions in inbound, oldest first: queue each, or, over the
        day's limit, release a note that it is kept; refuse (journal and log, nothing released) a
        folder whose name is not its owner's, not an id or not a released assignment's. Returns
        the new entries."""
        try:
            names = [n for n in os.listdir(self.inbound) if n not in self.journal.entries]
        except FileNotFoundError:
            return []
        new = []
        released = self.released() if names else set()
        for name in names:
            try:
                entry = self._admit(name, released)
            except Refused as e:
                parsed = _claimed(name)
                entry = Entry(name, *parsed, seen=iso(), status="refused", error=str(e),
                              submitted=intake.stamp(time.time()))
            if entry is not None:
                new.append(entry)
        new.sort(key=lambda e: (e.when, e.name))
        for e in new:
            self.journal.entries[e.name] = e
            if e.status in ("skipped", "refused"):
                continue
            try:
                self.course.check_assignment(e.assignment)
            except GradingError as err:
                e.status, e.error = "skipped", str(err)
                continue
            policy = self.settings.policy(e.assignment)
            used = self.journal.used(e.student, e.assignment, e.day)
            if used < policy.daily_limit:
                e.counted, e.slot = True, used + 1
            else:
                e.status = "over_limit"
        if new:
            self.journal.save()
        for e in new:
            if e.status == "over_limit":
                self._release_over_limit(e)
                self.say(f"over the limit: {e.name} (kept; the latest is graded at the due date)")
            elif e.status == "skipped":
                self.say(f"skipped {e.name}: {e.error}")
            elif e.status == "refused":
                self.say(f"REFUSED {e.name!r}{f' (owner {e.owner})' if e.owner else ''}: {e.error}")
            else:
                self.say(f"queued {e.name} ({e.slot} of {self.settings.policy(e.assignment).daily_limit} "
                         f"on {e.day})")
        return new

    def _admit(self, name: str, released: set[str]) -> Entry | None:
        """The journal entry of a new inbound folder, None if it is not (yet) a submission; raises
        ``Refused`` with the reason for one the course does not take."""
        parsed = parse_name(name, released)
        if parsed is None:
            return None  # not nbgrader's (nbgrader's collect would fail on it too)
        folder = self.inbound / name
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
        ready = _complete(folder)
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

    def _next(self) -> Entry | None:
        queued = [e for e in self.journal.entries.values() if e.status == "queued"]
        return min(queued, key=lambda e: (e.when, e.name), default=None)

    # --- grading ------------------------------------------------------------------------------------
    def _start(self, pool: ThreadPoolExecutor, entry: Entry):
        folder = self.inbound / entry.name
        refused: list[str] = []
        try:
            gradebook = self._gradebook(entry.assignment)
            task = make_task(self.scratch, entry.student, entry.assignment, folder, gradebook,
                             refused=refused, **self.limits)
            # its time: the latest change of what was read (looked at after reading it)
            changed = intake.read(folder, contents=False).changed
            entry.submitted = intake.stamp(max(changed, entry.when.replace(tzinfo=timezone.utc).timestamp()))
            task.files["timestamp.txt"] = entry.submitted.encode()
        except SubmissionRefused as e:  # the notebook itself: 0 with the reason, nothing run
            task, refused = None, [str(e)]
        except (GradingError, OSError) as e:
            entry.status, entry.error, entry.finished = "error", f"could not be prepared: {e}", iso()
            self.journal.save()
            self.say(f"error {entry.name}: {entry.error}")
            return None
        entry.status, entry.started, entry.finished, entry.error = "grading", iso(), None, None
        entry.refused = refused
        entry.attempts += 1
        self.journal.save()  # from here, a crash means: redo it
        if task is None:
            self.say(f"grading {entry.name}: its notebook was refused: {refused[0]}")
            return pool.submit(lambda: (Outcome(entry.assignment, entry.student, error=refused[0]), 0.0))
        self.say(f"grading {entry.name}" + (f" (left out: {'; '.join(refused)})" if refused else ""))
        return pool.submit(self._grade, entry.name, task)

    def _grade(self, name: str, task) -> tuple[Outcome, float]:
        start = time.perf_counter()
        if self._dask is None:
            outcome = run_task(task)
        else:
            future = self._dask.submit(run_task, task, pure=False)
            self._dask_futures[name] = future
            try:
                outcome = future.result()
            finally:
                self._dask_futures.pop(name, None)
        return outcome, time.perf_counter() - start

    def _finish(self, entry: Entry, future) -> None:
        if self.abandon.is_set():
            self._requeue(entry)
            return
        try:
            outcome, seconds = future.result()
        except Exception as e:  # the worker itself failed (e.g. a lost Dask worker)
            outcome, seconds = Outcome(entry.assignment, entry.student, error=f"grading worker failed: {e!r}"), None
        try:
            merge(self.scratch, outcome)
            score = self.scratch.score(entry.assignment, entry.student)
            entry.score, entry.max_score = score.auto, score.auto_max
            self._release_graded(entry)
            entry.status, entry.error = "graded", outcome.error
        except Exception as e:  # noqa: BLE001 -- recorded; the service goes on with the others
            entry.status, entry.error = "error", f"feedback failed: {e}"
        entry.seconds, entry.finished = seconds, iso()
        self.journal.save()
        took = f" in {seconds:.1f} s" if seconds is not None else ""
        if entry.status == "graded":
            self.say(f"graded {entry.name}: {entry.score:g}/{entry.max_score:g}{took}, feedback released"
                     f"{f' ({entry.error})' if entry.error else ''}")
        else:
            self.say(f"error {entry.name}{took}: {entry.error}")

    def _requeue(self, entry: Entry) -> None:
        entry.status, entry.started = "queued", None
        self.journal.save()
        self.say(f"abandoned {entry.name}: it is graded again at the next start")

    def _abandon(self, running: dict) -> None:
        """Kill the running gradings; their entries go back to the queue."""
        self.abandon.set()
        if self._dask is not None:
            self._dask.cancel(list(self._dask_futures.values()))
        server = getattr(getattr(multiprocessing.forkserver, "_forkserver", None), "_forkserver_pid", None)
        end = time.monotonic() + 60
        while time.monotonic() < end:  # again and again: a grader may be forked in the meantime
            for pid in _children(server) if server else []:
                _kill_group(pid)
            if not wait(running, timeout=0.5).not_done:
                break
        for future, entry in list(running.items()):
            self._requeue(entry)
            running.pop(future)

    # --- releasing feedback --------------------------------------------------------------------------
    def _copy_stamps(self, entry: Entry, dest: Path) -> None:
        """The submission's secret (read by ``intake``: no links, no FIFOs, 128 hex digits) and its
        time from the system (``entry.submitted``) into ``dest``, for nbgrader's release_feedback."""
        dest.mkdir(parents=True, exist_ok=True)
        secret = intake.read_file(self.inbound / entry.name, "submission_secret.txt", 1024).decode(errors="replace")
        if not SECRET.fullmatch(secret.strip()):
            raise GradingError("submission_secret.txt is not nbgrader's secret")
        for name, text in (("timestamp.txt", entry.submitted or entry.timestamp),
                           ("submission_secret.txt", secret.strip())):
            path = dest / name
            if path.is_symlink():
                path.unlink()
            path.write_text(text)

    def _release_graded(self, entry: Entry) -> None:
        """Note and policy into the autograded notebooks, then nbgrader's generate_feedback and
        release_feedback from the scratch course."""
        policy = self.settings.policy(entry.assignment)
        due = self.due(entry.assignment)
        masking = policy.hidden_messages == "after_due_date" and (due is None or utcnow() < due)
        autograded = self.scratch.autograded(entry.student, entry.assignment)
        self._copy_stamps(entry, autograded)
        used = self.journal.used(entry.student, entry.assignment, entry.day)
        for path in sorted(autograded.glob("*.ipynb")):
            nb = nbformat.read(path, as_version=4)
            if masking:
                mask_hidden_messages(nb)
            cell = nbformat.v4.new_markdown_cell(limit_note(entry, policy, used, due, masking))
            cell.metadata[NOTE_KEY] = True
            nb.cells.insert(0, cell)
            nbformat.write(nb, path)
        self.scratch.feedback(entry.assignment, entry.student)
        self._release(entry)

    def _release_over_limit(self, entry: Entry) -> None:
        """A feedback page per submitted notebook: kept, not graded now, when the next one counts."""
        folder = self.scratch.root / "feedback" / entry.student / entry.assignment
        try:
            if folder.exists():
                shutil.rmtree(folder)
            self._copy_stamps(entry, folder)
            page = over_limit_page(entry, self.settings.policy(entry.assignment), self.due(entry.assignment))
            looked = intake.read(self.inbound / entry.name, contents=False)
            for name in [n for n in looked.names if "/" not in n and n.endswith(".ipynb")]:
                (folder / f"{name[:-len('.ipynb')]}.html").write_text(page)
            self._release(entry)
        except (OSError, GradingError) as e:  # intake.IntakeError included
            entry.error = f"its note could not be released: {e}"
        self.journal.save()

    def _release(self, entry: Entry) -> None:
        Course._check(self.scratch.api.release_feedback(entry.assignment, student_id=entry.student),
                      f"release_feedback {entry.student}/{entry.assignment}")
        entry.released = iso()


def _complete(folder: Path) -> bool | str | None:
    """True once nbgrader's submit has written the folder's secret (its last file); None before;
    the reason if the secret is there but not a regular small file (a link, a FIFO ...), read by
    ``intake`` (a FIFO never blocks the service)."""
    try:
        data = intake.read_file(folder, "submission_secret.txt", 1024)
    except intake.IntakeError as e:
        return None if str(e).endswith(": missing") else str(e)
    except OSError:
        return None
    return True if SECRET.fullmatch(data.decode(errors="replace").strip()) else None


def _claimed(name: str) -> tuple[str, str, str]:
    """What a refused folder's name claims, for the journal (``-`` where it says nothing usable)."""
    parts = name.split("+")
    return (parts[0] or "-", parts[1] if len(parts) > 1 else "-", parts[2] if len(parts) > 2 else "-")


# --- processes -----------------------------------------------------------------------------------

def _children(ppid: int) -> list[int]:
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == ppid:
                out.append(int(pid))
        except (OSError, IndexError, ValueError):
            pass
    return out


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL) if os.getpgid(pid) == pid else os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def reap_orphans(state: str, instance: str) -> list[int]:
    """End the graders (and their kernels) that a service on ``state`` left running when it died,
    found by ``MARKER`` in their environment, and remove their scratch folders and cgroups.
    Call it only while holding the service's lock: then no other live service owns them."""
    prefix, current = f"{MARKER}={state}#".encode(), f"{MARKER}={instance}".encode()
    found, roots = [], []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(v.startswith(prefix) and v != current for v in env):
            found.append(int(pid))
            try:
                cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
                if cwd.name.startswith("dgm-grade-") and os.getpgid(int(pid)) == int(pid):
                    roots.append(cwd)
            except OSError:
                pass
    for pid in found:
        _kill_group(pid)
    for root in roots:
        Cgroup(f"dgm/grade/{root.name}").remove()
        shutil.rmtree(root, ignore_errors=True)
    return found


# --- entry points ---------------------------------------------------------------------------------

def serve(course: Course, finish: bool = False, once: bool = False, **options) -> int:
    """``python -m autograder serve``: run until SIGTERM or SIGINT. The first signal abandons
    running gradings (they are redone at the next start), or with ``finish`` lets them finish
    (a second signal abandons them)."""
    service = Service(course, **options)

    def stop(signum, frame):
        if service.stop.is_set() or not finish:
            service.abandon.set()
        service.stop.set()
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        service.run(once=once)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def status(course: Course) -> str:
    """The journal, one line per submission (``serve --status``)."""
    journal = Journal(course.root / STATE_DIR / JOURNAL).load()
    lines = []
    for e in sorted(journal.entries.values(), key=lambda e: (e.when, e.name)):
        score = f" {e.score:g}/{e.max_score:g}" if e.score is not None else ""
        lines.append(f"{e.student}/{e.assignment} {e.submitted or e.timestamp}: {e.status}{score}"
                     f"{f' (try {e.attempts})' if e.attempts > 1 else ''}{f' - {e.error}' if e.error else ''}")
    return "\n".join(lines) or "no submissions seen yet"


def hub_service(course: Path, exchange: Path, *, python: str | None = None, workers: int = 2,
                name: str = "feedback", environment: dict[str, str] | None = None) -> dict:
    """An entry for ``c.JupyterHub.services``: the hub starts the service with itself, restarts
    it if it dies and stops it (SIGTERM) when it stops. It has no URL (nothing to open) and runs
    as the hub's user, root, which the sandbox needs (``bwrap`` namespaces)::

        c.JupyterHub.services.append(hub_service(site.course, site.exchange, environment=env))
    """
    return {"name": name, "cwd": str(course),
            "command": [python or sys.executable, "-m", "autograder", "--course", str(course), "serve",
                        "--workers", str(workers)],
            "environment": {**(environment or {}), "DGM_EXCHANGE": str(exchange)}}
