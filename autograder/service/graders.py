"""Where the service grades and how: its scratch course (the course's notebooks and dates, its own
gradebook, never the course's), a submission's task (its files read by ``intake``, its time the
system's, its assignment's gradebook built once), run by a local process forked from the
forkserver or on a Dask scheduler (``grading.workers``)."""
from __future__ import annotations

import os
import time
from datetime import timezone
from pathlib import Path

from ..course.course import Course
from ..grading import forkserver
from ..grading.workers import Outcome, Task, assignment_gradebook, make_task, run_task
from ..inbound import intake
from .journal import Entry
from .processes import MARKER, kill_graders


def scratch_course(course: Course, root: Path, exchange: Path, course_id: str) -> Course:
    """The course the service grades into, at ``root``: ``course``'s notebooks and dates, its own
    gradebook, releasing feedback to ``exchange``."""
    scratch = Course(root, notebooks=course.root / "notebooks", due_dates=course.due_dates,
                     db_url=f"sqlite:///{root / 'gradebook.db'}")
    scratch.config.Exchange.root = str(exchange)
    scratch.config.CourseDirectory.course_id = course_id
    return scratch


class Graders:
    """Gradings in local processes, or on ``scheduler`` (a Dask address); ``limits``: fields of
    ``workers.Task``."""

    def __init__(self, scheduler: str | None, limits: dict):
        self.scheduler, self.limits = scheduler, limits
        self._gradebooks: dict[str, bytes] = {}
        self._dask = None
        self._dask_futures: dict[str, object] = {}

    def start(self, instance: str) -> None:
        """Mark the graders with the service's ``instance`` (``reap_orphans`` finds them after a crash)
        and warm up the forkserver they fork from, or connect to Dask."""
        os.environ[MARKER] = instance  # graders inherit it
        if self.scheduler is None:
            forkserver.warm_up()
        else:
            from dask.distributed import Client
            self._dask = Client(self.scheduler)

    def gradebook(self, scratch: Course, assignment: str) -> bytes:
        """``assignment``'s gradebook for its tasks, built from ``scratch`` once."""
        if assignment not in self._gradebooks:
            scratch.ensure_released(assignment)
            self._gradebooks[assignment] = assignment_gradebook(scratch.db_url, assignment)
        return self._gradebooks[assignment]

    def task(self, scratch: Course, entry: Entry, folder: Path, refused: list[str]) -> Task:
        """The task of ``entry``'s submission in ``folder`` (``workers.make_task``: what it leaves out
        goes into ``refused``); ``entry.submitted`` becomes the latest change of what was read."""
        task = make_task(scratch, entry.student, entry.assignment, folder, self.gradebook(scratch, entry.assignment),
                         refused=refused, **self.limits)
        # its time: the latest change of what was read (looked at after reading it)
        changed = intake.read(folder, contents=False).changed
        entry.submitted = intake.stamp(max(changed, entry.when.replace(tzinfo=timezone.utc).timestamp()))
        task.files["timestamp.txt"] = entry.submitted.encode()
        return task

    def run(self, name: str, task: Task) -> tuple[Outcome, float]:
        """Grade ``task`` (of the inbound folder ``name``) and wait for it: its outcome and seconds."""
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

    def kill(self, running) -> None:
        """Cancel the Dask tasks and kill the local graders until the futures ``running`` are done."""
        if self._dask is not None:
            self._dask.cancel(list(self._dask_futures.values()))
        kill_graders(running)

    def close(self) -> None:
        if self._dask is not None:
            self._dask.close()
