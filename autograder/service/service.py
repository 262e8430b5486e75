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

Beside this loop: the ``[service]`` settings are read with the calendar (``course.schedule``) and
hidden tests' messages are masked beside the feedback's redaction (``feedback.redact``). In this
package: which inbound folders are submissions, and whose (``inbox``); the journal and the names
of inbound submissions (``journal``); the scratch course and where its gradings run (``graders``);
the lock and the graders' processes (``processes``); feedback released through the exchange
(``release``) and what it says (``notes``).
"""
from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from functools import cached_property
from pathlib import Path

from ..course import gradebook
from ..course.config import COURSE_ID
from ..course.course import Course, GradingError
from ..course.schedule import Settings
from ..grading.workers import Outcome, SubmissionRefused, merge
from .graders import Graders, scratch_course
from .inbox import Inbox
from .journal import Entry, Journal, iso
from .processes import hold, reap_orphans
from .release import Release

STATE_DIR = "feedback-service"        # in the course folder
JOURNAL = "journal.json"
LOCK = "lock"


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
        self.inbox = Inbox(course, self.exchange / self.course_id)
        self.inbound = self.inbox.path
        self.state = course.root / STATE_DIR
        self.journal = Journal(self.state / JOURNAL)
        self.release = Release(course, self.inbound, self.settings, self.journal)
        self.graders = Graders(scheduler, limits)
        self.instance = f"{self.state}#{os.getpid()}-{secrets.token_hex(4)}"
        self.stop, self.abandon = threading.Event(), threading.Event()

    @cached_property
    def scratch(self) -> Course:
        """The course the service grades into: the same notebooks and dates, its own gradebook."""
        return scratch_course(self.course, self.state / "course", self.exchange, self.course_id)

    # --- the loop ---------------------------------------------------------------------------------
    def run(self, once: bool = False) -> None:
        """Serve until ``stop`` is set (or, with ``once``, until nothing is left to grade).

        On ``stop``, running gradings finish (their feedback is released) unless ``abandon`` is
        set too, in which case their graders are killed and they go back to the queue."""
        self.state.mkdir(parents=True, exist_ok=True)
        with hold(self.state / LOCK):
            self._serve(once)

    def _serve(self, once: bool) -> None:
        reaped = reap_orphans(str(self.state), self.instance)
        if reaped:
            self.say(f"ended {len(reaped)} processes left by a service that stopped without cleaning up")
        self.journal.load()
        for e in self.journal.recover():
            self.say(f"requeued {e.name}: its grading was interrupted")
        self.journal.save()
        self.graders.start(self.instance)
        self._prepare()
        if self.inbox.roster() is None:
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
            self.graders.close()
            self.journal.save()
            self.say("stopped")

    def _prepare(self) -> None:
        """Know the assignments released to the exchange (outbound) before their submissions come."""
        outbound = self.inbox.outbound
        names = sorted(p.name for p in outbound.iterdir()) if outbound.is_dir() else []
        for aid in names:
            if aid in self.course.assignments():
                try:
                    self.graders.gradebook(self.scratch, aid)
                except GradingError as e:
                    self.say(f"cannot prepare {aid}: {e}")

    # --- new submissions ----------------------------------------------------------------------------
    def scan(self) -> list[Entry]:
        """Take the new complete submissions in inbound, oldest first: queue each, or, over the
        day's limit, release a note that it is kept; refuse (journal and log, nothing released) a
        folder whose name is not its owner's, not an id or not a released assignment's. Returns
        the new entries."""
        new = self.inbox.new(self.journal.entries)
        for e in new:
            self.journal.entries[e.name] = e
            if e.status in ("skipped", "refused"):
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
                self.release.over_limit(self.scratch, e)
                self.say(f"over the limit: {e.name} (kept; the latest is graded at the due date)")
            elif e.status == "skipped":
                self.say(f"skipped {e.name}: {e.error}")
            elif e.status == "refused":
                self.say(f"REFUSED {e.name!r}{f' (owner {e.owner})' if e.owner else ''}: {e.error}")
            else:
                self.say(f"queued {e.name} ({e.slot} of {self.settings.policy(e.assignment).daily_limit} "
                         f"on {e.day})")
        return new

    def _next(self) -> Entry | None:
        queued = [e for e in self.journal.entries.values() if e.status == "queued"]
        return min(queued, key=lambda e: (e.when, e.name), default=None)

    # --- grading ------------------------------------------------------------------------------------
    def _start(self, pool: ThreadPoolExecutor, entry: Entry):
        folder = self.inbound / entry.name
        refused: list[str] = []
        try:
            task = self.graders.task(self.scratch, entry, folder, refused)
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
        return pool.submit(self.graders.run, entry.name, task)

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
            score = gradebook.score(self.scratch.db_url, entry.assignment, entry.student)
            entry.score, entry.max_score = score.auto, score.auto_max
            self.release.graded(self.scratch, entry)
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
        self.graders.kill(running)
        for future, entry in list(running.items()):
            self._requeue(entry)
            running.pop(future)


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
