"""Feedback on submit: time from ``nbgrader submit`` to feedback that ``fetch_feedback`` finds.

    python bench/feedback_latency.py [--sets 00 course] [--together 1 10] [--rounds 3] [--workers 2]

A scratch course releases the notebooks to its own exchange, and ``python -m autograder serve
--workers W`` runs on it. Students (a new one for every submission, so the daily limit never
applies) submit notebooks answered with the reference solutions through nbgrader's own
``ExchangeSubmit`` (what ``nbgrader submit`` runs, in this process, so that ten arrive within a
second). A submission's latency runs from the call to submit until its feedback page is in the
exchange under the submission's secret, which is what ``fetch_feedback`` looks for (checked
every 0.1 s; one student's feedback is then fetched with nbgrader's ``ExchangeFetchFeedback``).

Sets: ``00`` (notebook 00_kl_elbo) and ``course`` (every notebook in notebooks/, one after
another). For each notebook of a set, ``--together`` sizes: 1 (one submission at a time, repeated
``--rounds`` times for 00; once per notebook for the course) and 10 (ten students submit at once).
A line per set and size, then the last line over every submission timed:
``feedback: p50 X s, p95 Y s``.
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nbgrader.auth import Authenticator  # noqa: E402
from nbgrader.coursedir import CourseDirectory  # noqa: E402
from nbgrader.exchange.default import ExchangeFetchFeedback, ExchangeSubmit  # noqa: E402
from nbgrader.utils import notebook_hash  # noqa: E402
from traitlets.config import Config  # noqa: E402

from autograder.service import service  # noqa: E402
from autograder.course import submissions  # noqa: E402
from autograder.course.config import COURSE_ID, REPO  # noqa: E402
from autograder.course.course import Course  # noqa: E402

AID = "00_kl_elbo"


def percentile(values: list[float], q: float) -> float:
    """Nearest rank."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)]


def student_config(exchange: Path, home: Path, name: str, aid: str) -> Config:
    c = Config()
    c.CourseDirectory.course_id = COURSE_ID
    c.CourseDirectory.assignment_id = aid
    c.CourseDirectory.student_id = name
    c.Exchange.root = str(exchange)
    c.Exchange.cache = str(home / ".cache")
    c.Exchange.assignment_dir = str(home)
    return c


def submit(exchange: Path, home: Path, name: str, aid: str) -> tuple[str, Path]:
    """``nbgrader submit`` as that student: the inbound folder's name, and the feedback page the
    submission will get."""
    c = student_config(exchange, home, name, aid)
    app = ExchangeSubmit(coursedir=CourseDirectory(config=c), authenticator=Authenticator(config=c), config=c)
    app.start()
    secret = (exchange / COURSE_ID / "inbound" / app.assignment_filename / "submission_secret.txt").read_text()
    return app.assignment_filename, \
        exchange / COURSE_ID / "feedback" / f"{notebook_hash(secret=secret, notebook_id=aid)}.html"


def fetch(exchange: Path, home: Path, name: str, aid: str) -> list[Path]:
    c = student_config(exchange, home, name, aid)
    ExchangeFetchFeedback(coursedir=CourseDirectory(config=c), authenticator=Authenticator(config=c),
                          config=c).start()
    return sorted((home / aid / "feedback").glob(f"*/{aid}.html"))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sets", nargs="+", choices=("00", "course"), default=["00", "course"])
    p.add_argument("--together", nargs="+", type=int, default=[1, 10], help="submissions arriving at once")
    p.add_argument("--rounds", type=int, default=3, help="one-at-a-time submissions of 00_kl_elbo")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--timeout", type=float, default=1800, help="seconds to wait for one batch's feedback")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="dgm-bench-feedback-") as tmp:
        tmp = Path(tmp)
        course = Course(tmp / "course", notebooks=REPO / "notebooks")
        exchange = Path(course.config.Exchange.root)
        names = [AID] if args.sets == ["00"] else course.assignments()
        homework = {}
        for aid in names:
            released = course.release(aid)
            course._check(course.api.release_assignment(aid), f"release_assignment {aid}")
            homework[aid] = submissions.answered(released, course.source(aid))
        log = tmp / "serve.log"
        server = subprocess.Popen([sys.executable, "-m", "autograder", "--course", str(course.root), "serve",
                                   "--workers", str(args.workers), "--interval", "0.2"],
                                  stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        try:
            while "serving" not in log.read_text():
                if server.poll() is not None:
                    raise SystemExit(f"the service stopped:\n{log.read_text()}")
                time.sleep(0.2)
            results: dict[tuple[str, int], list[float]] = {}
            latency: dict[str, float] = {}  # inbound folder name -> seconds
            single: set[str] = set()        # those submitted alone
            count = 0

            def batch(aid: str, n: int) -> list[float]:
                nonlocal count
                pending = []
                for _ in range(n):
                    count += 1
                    name, home = f"s{count:03d}", tmp / "students" / f"s{count:03d}"
                    submissions.write(homework[aid], home, "", aid)  # home/aid/aid.ipynb
                    start = time.perf_counter()
                    pending.append((start, *submit(exchange, home, name, aid)))
                times, end = [], time.monotonic() + args.timeout
                while pending and time.monotonic() < end:
                    for item in [x for x in pending if x[2].exists()]:
                        times.append(time.perf_counter() - item[0])
                        latency[item[1]] = times[-1]
                        pending.remove(item)
                    time.sleep(0.1)
                if pending:
                    raise SystemExit(f"{len(pending)} feedback pages missing after {args.timeout:g} s:\n"
                                     f"{log.read_text()[-3000:]}")
                return times

            for which in args.sets:
                for n in args.together:
                    for aid in ([AID] if which == "00" else names):
                        rounds = args.rounds if which == "00" and n == 1 else 1
                        for _ in range(rounds):
                            before = set(latency)
                            times = batch(aid, n)
                            if n == 1:
                                single.update(set(latency) - before)
                            results.setdefault((which, n), []).extend(times)
                            print(f"  {aid}, {n} at once: " + ", ".join(f"{t:.1f}" for t in sorted(times)) + " s",
                                  flush=True)
            pages = fetch(exchange, tmp / "students" / "s001", "s001", AID if AID in names else names[0])
            assert pages and "Early feedback" in pages[0].read_text(), "fetch_feedback found no feedback"
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
        journal = json.loads((course.root / service.STATE_DIR / service.JOURNAL).read_text())["entries"]
        short = [e for e in journal.values() if e["status"] != "graded" or e["score"] != e["max_score"]]
        for e in short:
            print(f"  note: {e['name']}: {e['status']} {e['score']}/{e['max_score']} {e['error'] or ''}")
        graded = [e["seconds"] for e in journal.values() if e["seconds"] is not None]
        print(f"gradings: {len(graded)}, median grading time {statistics.median(graded):.1f} s")
        alone = [latency[k] - e["seconds"] for k, e in journal.items()
                 if k in latency and e["seconds"] is not None and k in single]
        if alone:  # poll, queue, merge, feedback page, release: what the service adds to a grading
            print(f"one at a time, latency less grading time: median {statistics.median(alone):.1f} s, "
                  f"max {max(alone):.1f} s")
    for (which, n), times in results.items():
        label = AID if which == "00" else f"whole course ({len(names)} notebooks)"
        print(f"{label}, {n} at once: n={len(times)}, p50 {statistics.median(times):.1f} s, "
              f"p95 {percentile(times, 0.95):.1f} s")
    every = [t for times in results.values() for t in times]
    print(f"feedback: p50 {statistics.median(every):.1f} s, p95 {percentile(every, 0.95):.1f} s")


if __name__ == "__main__":
    main()
