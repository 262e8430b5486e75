"""The process that autogrades one submission, forked from a warm server.

``autograder.grading.workers.run_task`` starts ``grade`` through multiprocessing's *forkserver*: the
server imports nbgrader once, and each submission gets a fresh fork of it (milliseconds,
instead of seconds of imports for a new interpreter), in its own session (so the kernel and
everything it starts can be killed as one group), under a memory cap that the kernel inherits.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import resource
import sys
import tempfile
from pathlib import Path

LOG = "grading.log"
DB = "gradebook.db"  # the scratch course's own gradebook: run_task writes it, grade fills it
_context = None


def context():
    """The forkserver context, with nbgrader preloaded in the server."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["autograder.course.course"])
    return _context


def warm_up() -> None:
    """Start the forkserver now (its imports take seconds), so they overlap with other work."""
    context()
    multiprocessing.forkserver.ensure_running()


def _enter(root: str, memory_mb: int, env: dict[str, str]) -> None:
    """Become a grading process: own session, output to ``root/grading.log``, memory capped,
    ``env`` as the whole environment, working in ``root``."""
    os.setsid()
    log = os.open(os.path.join(root, LOG), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    cap = int(memory_mb) << 20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.environ.clear()
    os.environ.update(env)
    os.chdir(root)
    tempfile.tempdir = os.path.join(root, "runtime")


def grade(root: str, memory_mb: int, env: dict[str, str], cgroup: str, assignment: str, student: str) -> None:
    """Autograde ``submitted/<student>/<assignment>`` of the scratch course at ``root``, its kernel
    in the cgroup ``cgroup`` (``workers.supervise`` made it and watches it).

    Output goes to ``root/grading.log``; on failure the process exits 1 with the reason as
    the log's last line.
    """
    _enter(root, memory_mb, env)
    from ..course.course import Course, GradingError

    course = Course(Path(root), db_url=f"sqlite:///{Path(root) / DB}")
    # The kernel dies with this process group anyway: do not wait for it to exit on its own.
    course.config.Execute.shutdown_kernel = "immediate"
    course.config.GradingKernelManager.cgroup = cgroup
    course.config.GradingKernelManager.memory_mb = int(memory_mb)
    try:
        course.autograde(assignment, student, release=False)
    except GradingError as e:
        print(e, flush=True)
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def execute(root: str, memory_mb: int, env: dict[str, str], cgroup: str) -> None:
    """Run ``root/in.ipynb`` with ``GuardedExecute`` in the sandbox (working folder ``root/work``)
    and write it to ``root/out.ipynb`` (``autograder.executor``); exits 1 with the reason last in
    the log if it cannot."""
    _enter(root, memory_mb, env)
    import nbformat

    from ..course.config import course_config
    from .guard import GuardedExecute

    config = course_config()
    config.Execute.shutdown_kernel = "immediate"
    config.GradingKernelManager.cgroup = cgroup
    config.GradingKernelManager.memory_mb = int(memory_mb)
    try:
        nb = nbformat.read(os.path.join(root, "in.ipynb"), as_version=4)
        GuardedExecute(config=config).preprocess(nb, {"metadata": {"path": os.path.join(root, "work")}})
        nbformat.write(nb, os.path.join(root, "out.ipynb"))
    except Exception as e:  # noqa: BLE001 -- the reason goes back to the staff's grader
        print(f"{type(e).__name__}: {e}", flush=True)
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
