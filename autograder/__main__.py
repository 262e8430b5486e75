"""Command line: ``python -m autograder {release,bundle,grade,serve,export,report,roster,selfcheck}`` (run from anywhere)."""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from .reports import lms
from .grading import sandbox
from .course import gradebook
from .course.bundle import write_bundle
from .course.config import DB_ENV, REPO, gradebook_url
from .course.course import Course, GradingError
from .grading.grade import grade_folder
from .course.schedule import FORMAT, Schedule, ScheduleError
from .course.selfcheck import selfcheck
from .grading.workers import MEMORY_MB, WALL_CLOCK_S


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    p.add_argument("--course", type=Path, default=REPO,
                   help="course root holding notebooks/ and gradebook.db (default: this repository)")
    db = p.add_mutually_exclusive_group()
    db.add_argument("--db", metavar="URL",
                    help=f"the gradebook's database, a SQLAlchemy URL such as sqlite:///PATH (default: ${DB_ENV}, "
                         f"else gradebook.db in the course root). One with a password belongs in --db-file or "
                         f"${DB_ENV}: a command line is visible to every user of the machine (ps)")
    db.add_argument("--db-file", type=Path, metavar="PATH",
                    help="read the gradebook's URL (e.g. postgresql://user:pw@host/dgm) from this file's first line, "
                         "e.g. the hub's course/gradebook_url")
    p.add_argument("--no-sandbox", action="store_true",
                   help="run kernels with your own rights, without the grading sandbox: only for your own work on "
                        "your own machine (without it, grading where the sandbox cannot be set up is refused)")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("release", help="build the student release (solutions stubbed, hidden tests removed)")
    r.add_argument("assignments", nargs="*", help="default: those whose release date has come (course.toml)")
    b = sub.add_parser("bundle", help="write the student repository (released notebooks, helpers, set-up)")
    b.add_argument("folder", type=Path)
    b.add_argument("assignments", nargs="*", help="default: those whose release date has come (course.toml)")
    for q in (r, b):
        q.add_argument("--now", type=lambda v: datetime.strptime(v, FORMAT), metavar="'YYYY-MM-DD HH:MM'",
                       help="release as of this date (UTC) instead of now")
        q.add_argument("--force", action="store_true", help="ignore the calendar, with a warning (the staff's own copy: never hand it out early)")
    g = sub.add_parser("grade", help="autograde SUBMITTED_DIR/<student>/<assignment>/ into the gradebook")
    g.add_argument("submitted", type=Path)
    g.add_argument("--assignment", action="append", help="grade only these (repeatable)")
    g.add_argument("--csv", type=Path, default=Path("grades.csv"), help="where to export grades")
    g.add_argument("--workers", type=int, default=1, help="submissions graded at once on this machine")
    g.add_argument("--scheduler", help="a Dask scheduler address: grade on that cluster instead")
    g.add_argument("--wall-clock", type=float, default=WALL_CLOCK_S, help="seconds allowed per submission")
    g.add_argument("--memory-mb", type=int, default=MEMORY_MB, help="memory cap per submission")
    e = sub.add_parser("export", help="write the gradebook's scores as CSV: ours, or what Canvas or Moodle imports")
    e.add_argument("--format", choices=lms.FORMATS, default="csv",
                   help="csv: one row per student and assignment; canvas/moodle: their gradebook import files")
    e.add_argument("--out", type=Path, help=f"default: {', '.join(f'{v} ({k})' for k, v in lms.DEFAULT_OUT.items())}")
    e.add_argument("--csv", type=Path, metavar="PATH", help="the same as --format csv --out PATH")
    e.add_argument("--per-question", action="store_true", help="canvas/moodle: a column per graded cell too")
    rp = sub.add_parser("report", help="an HTML report: scores, test cells, lateness, similar code")
    rp.add_argument("assignments", nargs="*", help="default: every assignment with submissions")
    rp.add_argument("--out", type=Path, default=Path("report"), help="folder for index.html (default: report/)")
    rp.add_argument("--threshold", type=float,
                    help="list pairs whose solution code overlaps by this share (0-1) or more (default 0.5)")
    rp.add_argument("--no-similarity", action="store_true", help="leave out the comparison of solutions")
    ro = sub.add_parser("roster", help="load students (CSV: id,first_name,last_name,email) into the gradebook")
    ro.add_argument("csv", type=Path)
    s = sub.add_parser("selfcheck", help="solutions score full marks (partial-credit cells: above 0), stubs 0, in a scratch course")
    s.add_argument("assignments", nargs="*")
    s.add_argument("--keep", type=Path, help="keep the scratch course in this folder")
    sv = sub.add_parser("serve", help="grade submissions as they reach the exchange and release feedback "
                                      "(rate-limited; early grades are feedback only): until SIGTERM/Ctrl-C")
    sv.add_argument("--workers", type=int, default=1, help="submissions graded at once on this machine")
    sv.add_argument("--scheduler", help="a Dask scheduler address: grade on that cluster instead")
    sv.add_argument("--wall-clock", type=float, default=WALL_CLOCK_S, help="seconds allowed per submission")
    sv.add_argument("--memory-mb", type=int, default=MEMORY_MB, help="memory cap per submission")
    sv.add_argument("--interval", type=float, default=2.0, help="seconds between looks at the inbound folder")
    sv.add_argument("--finish", action="store_true",
                    help="on SIGTERM/Ctrl-C let running gradings finish (a second signal abandons them)")
    sv.add_argument("--once", action="store_true", help="grade what is waiting, then exit")
    sv.add_argument("--status", action="store_true", help="print the service's journal and exit")
    args = p.parse_args(argv)
    if args.no_sandbox or (args.command == "selfcheck" and not sandbox.available()):
        os.environ[sandbox.NO_SANDBOX_ENV] = "1"  # selfcheck runs the course's own solutions: trusted code

    try:
        if args.command == "selfcheck":
            if args.keep:
                checks = selfcheck(args.keep, args.assignments or None)
            else:
                with tempfile.TemporaryDirectory(prefix="dgm-selfcheck-") as tmp:
                    checks = selfcheck(Path(tmp), args.assignments or None)
            return 0 if all(c.ok for c in checks) else 1
        course = Course(args.course, db_url=db_url(args))
        if args.command in ("release", "bundle"):
            schedule = Schedule.load()
            names = args.assignments or (course.assignments() if args.force else schedule.released(args.now))
            held = []
            for aid in names:
                try:
                    warning = schedule.check_release(aid, args.now, force=args.force)
                except ScheduleError as e:
                    if args.assignments:
                        raise  # named: refused with the reason
                    held.append(aid)  # --force without names: all that the 'after' rule lets out
                    print(f"held back: {e}", file=sys.stderr)
                    continue
                if warning:
                    print(f"warning (--force): {warning}", file=sys.stderr)
            names = [a for a in names if a not in held]
            if not names:
                print("no assignment's release date has come (course.toml); name them, or use --now/--force")
            if args.command == "bundle":
                print(f"student repository with {', '.join(names) or 'no assignments'}: "
                      f"{write_bundle(course, args.folder, names)}")
                return 0
            for aid in names:
                print(f"{aid}: released to {course.release(aid)}")
            return 0
        if args.command == "grade":
            results = grade_folder(course, args.submitted, args.assignment, workers=args.workers,
                                   scheduler=args.scheduler, wall_clock=args.wall_clock,
                                   memory_mb=args.memory_mb)
            for res in results:
                print(res.line())
            print(f"grades written to {gradebook.export(course.db_url, args.csv)}")
            failed = [r for r in results if r.error]
            if failed:
                print(f"{len(failed)} of {len(results)} submissions could not be graded "
                      "(those with a score got 0 for the tests that did not run)", file=sys.stderr)
            return 1 if failed else 0
        if args.command == "serve":
            from .service import service
            if args.status:
                print(service.status(course))
                return 0
            return service.serve(course, finish=args.finish, once=args.once, workers=args.workers,
                                 scheduler=args.scheduler, interval=args.interval, wall_clock=args.wall_clock,
                                 memory_mb=args.memory_mb)
        if args.command == "roster":
            print(f"{gradebook.import_roster(course.db_url, args.csv)} students in the gradebook")
            return 0
        if args.command == "export":
            if args.csv and args.format != "csv":
                p.error("--csv PATH writes our CSV; use --out PATH with --format canvas or moodle")
            fmt = args.format
            if args.per_question and fmt == "csv":
                p.error("--per-question needs --format canvas or moodle")
            out = args.csv or args.out or Path(lms.DEFAULT_OUT[fmt])
            print(f"grades written to {lms.write(course, fmt, out, args.per_question)}")
            return 0
        if args.command == "report":
            from .reports import report, similarity  # matplotlib and copydetect: only here
            threshold = None if args.no_similarity else args.threshold or similarity.THRESHOLD
            print(f"report written to {report.write(course, args.out, args.assignments, threshold)}")
            return 0
    except ScheduleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except GradingError as e:
        print(f"{e.log}\nerror: {e}" if e.log else f"error: {e}", file=sys.stderr)
        return 2
    except gradebook.RosterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 2


def db_url(args) -> str | None:
    """The gradebook's URL from ``--db-file`` or ``--db`` (``autograder.config.gradebook_url``)."""
    try:
        return gradebook_url(args.db, args.db_file, warn=lambda m: print(f"warning: {m}", file=sys.stderr))
    except ValueError as e:
        raise GradingError(str(e)) from None


if __name__ == "__main__":
    sys.exit(main())
