"""Grading throughput: plain serial nbgrader against ``grade --workers 2``, in one run.

    python bench/grade_scaling.py [--n 20] [--workers 2]

N generated submissions of 00_kl_elbo (correct, or with a planted mistake) are graded by
nbgrader's own autograde one after another, then by ``autograder.grading.grade.grade_folder`` with
``--workers``; then one student's submissions of every notebook are graded with the workers
to give the time per student for the whole course. Last line:
``serial: T1 s, workers=W: T2 s, ratio: R, per submission: T3 s`` (R = T1/T2; T3 = the
whole course for one student). Targets on 2 cores: R >= 1.8, T3 <= 90 s.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder.course import submissions  # noqa: E402
from autograder.course.config import REPO  # noqa: E402
from autograder.course.torch_env import run_with_torch_env  # noqa: E402
from autograder.course.course import Course  # noqa: E402
from autograder.grading.grade import add_submission, grade_folder  # noqa: E402

AID = "00_kl_elbo"
MISTAKE = {"kl_normal": "def kl_normal(qm, qv, pm, pv):\n    return (qm - pm).pow(2).sum(-1)\n"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="dgm-bench-") as tmp:
        tmp = Path(tmp)
        course = Course(tmp / "course", notebooks=REPO / "notebooks")
        inbox = tmp / "inbox"
        for aid in course.assignments():
            released = course.release(aid)
            if aid == AID:
                for i in range(args.n):
                    nb = submissions.answered(released, course.source(aid), MISTAKE if i % 2 else None)
                    submissions.write(nb, inbox, f"s{i:02d}", aid)
            else:
                submissions.write(submissions.answered(released, course.source(aid)), tmp / "course_run", "s00", aid)
        shutil.copytree(inbox / "s00" / AID, tmp / "course_run" / "s00" / AID)

        t = time.perf_counter()
        for i in range(args.n):
            student = f"s{i:02d}"
            add_submission(course, inbox / student / AID, student, AID)
            course.autograde(AID, student)
        t1 = time.perf_counter() - t
        print(f"serial nbgrader: {args.n} submissions in {t1:.1f} s", flush=True)

        t = time.perf_counter()
        results = grade_folder(course, inbox, workers=args.workers, progress=False)
        t2 = time.perf_counter() - t
        assert all(r.error is None for r in results), [r.line() for r in results if r.error]
        print(f"workers={args.workers}: {args.n} submissions in {t2:.1f} s", flush=True)

        t = time.perf_counter()
        results = grade_folder(course, tmp / "course_run", workers=args.workers, progress=False)
        t3 = time.perf_counter() - t
        for r in results:
            print("  " + r.line())
        print(f"whole course for one student ({len(results)} notebooks): {t3:.1f} s", flush=True)
    print(f"serial: {t1:.1f} s, workers={args.workers}: {t2:.1f} s, ratio: {t1 / t2:.2f}, per submission: {t3:.1f} s")


if __name__ == "__main__":
    run_with_torch_env()
    main()
