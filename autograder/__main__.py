"""Command line: ``python -m autograder {release,bundle,grade,export,roster,selfcheck}`` (run from anywhere)."""
from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from .bundle import write_bundle
from .config import DB_ENV, REPO
from .course import Course, GradingError
from .grade import grade_folder
from .schedule import FORMAT, Schedule, ScheduleError
from .selfcheck import selfcheck
from .workers import MEMORY_MB, WALL_CLOCK_S


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    p.add_argument("--course", type=Path, default=REPO,
                   help="course root holding notebooks/ and gradebook.db (default: this repository)")
    p.add_argument("--db", metavar="URL",
                   help=f"the gradebook's database, a SQLAlchemy URL such as postgresql://user:pw@host/dgm "
                        f"(default: ${DB_ENV}, else gradebook.db in the course root)")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("release", help="build the student release (solutions stubbed, hidden tests removed)")
    r.add_argument("assignments", nargs="*", help="default: those whose release date has come (course.toml)")
    b = sub.add_parser("bundle", help="write the student repository (released notebooks, helpers, set-up)")
    b.add_argument("folder", type=Path)
    b.add_argument("assignments", nargs="*", help="default: those whose release date has come (course.toml)")
    for q in (r, b):
        q.add_argument("--now", type=lambda v: datetime.strptime(v, FORMAT), metavar="'YYYY-MM-DD HH:MM'",
                       help="release as of this date (UTC) instead of now")
        q.add_argument("--force", action="store_true", help="ignore release dates (never the rule that what a notebook answers is due)")
    g = sub.add_parser("grade", help="autograde SUBMITTED_DIR/<student>/<assignment>/ into the gradebook")
    g.add_argument("submitted", type=Path)
    g.add_argument("--assignment", action="append", help="grade only these (repeatable)")
    g.add_argument("--csv", type=Path, default=Path("grades.csv"), help="where to export grades")
    g.add_argument("--workers", type=int, default=1, help="submissions graded at once on this machine")
    g.add_argument("--scheduler", help="a Dask scheduler address: grade on that cluster instead")
    g.add_argument("--wall-clock", type=float, default=WALL_CLOCK_S, help="seconds allowed per submission")
    g.add_argument("--memory-mb", type=int, default=MEMORY_MB, help="memory cap per submission")
    e = sub.add_parser("export", help="write the gradebook's scores to a CSV file")
    e.add_argument("--csv", type=Path, default=Path("grades.csv"))
    ro = sub.add_parser("roster", help="load students (CSV: id,first_name,last_name,email) into the gradebook")
    ro.add_argument("csv", type=Path)
    s = sub.add_parser("selfcheck", help="solutions must score full marks, stubs 0, in a scratch course")
    s.add_argument("assignments", nargs="*")
    s.add_argument("--keep", type=Path, help="keep the scratch course in this folder")
    args = p.parse_args(argv)

    try:
        if args.command == "selfcheck":
            if args.keep:
                checks = selfcheck(args.keep, args.assignments or None)
            else:
                with tempfile.TemporaryDirectory(prefix="dgm-selfcheck-") as tmp:
                    checks = selfcheck(Path(tmp), args.assignments or None)
            return 0 if all(c.ok for c in checks) else 1
        course = Course(args.course, db_url=args.db)
        if args.command in ("release", "bundle"):
            schedule = Schedule.load()
            names = args.assignments or (course.assignments() if args.force else schedule.released(args.now))
            for aid in names:
                schedule.check_release(aid, args.now, force=args.force)
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
            print(f"grades written to {course.export(args.csv)}")
            failed = [r for r in results if r.error]
            if failed:
                print(f"{len(failed)} of {len(results)} submissions could not be graded "
                      "(those with a score got 0 for the tests that did not run)", file=sys.stderr)
            return 1 if failed else 0
        if args.command == "roster":
            print(f"{course.import_roster(args.csv)} students in the gradebook")
            return 0
        if args.command == "export":
            print(f"grades written to {course.export(args.csv)}")
            return 0
    except ScheduleError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except GradingError as e:
        print(f"{e.log}\nerror: {e}" if e.log else f"error: {e}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
