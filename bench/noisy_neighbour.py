"""Honest grading beside hostile neighbours: a fork bomb and a memory hog, in one run.

    python bench/noisy_neighbour.py [--honest 2] [--repeat 2]

``--honest`` correct submissions of 00_kl_elbo are graded alone (as many at once as there are
of them), then again beside a fork bomb and a memory hog graded at the same time (each grader
in its own cgroup: a CPU quota of one core, a weight, a memory cap with tmpfs, a task cap). The
figure is the mean grading time of the honest submissions, as ``Result.seconds``. Last line:
``neighbour: honest alone A s, beside B s, ratio R`` (R = B/A; target <= 1.2, printed, not asserted).
Needs root and bwrap (the sandbox); elsewhere it says so and stops.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder.grading import sandbox  # noqa: E402
from autograder.course import submissions  # noqa: E402
from autograder.course.config import REPO  # noqa: E402
from autograder.course.course import Course  # noqa: E402
from autograder.grading.grade import grade_folder  # noqa: E402
from autograder.course.torch_env import run_with_torch_env  # noqa: E402

AID = "00_kl_elbo"
FORK_BOMB = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
# Fills its tmpfs and its heap up to the memory cap, then holds it: stopped by the cap or the clock.
MEMORY_HOG = ("import os\nhog = []\nfor where in ('/tmp', '/dev/shm'):\n    try:\n"
              "        with open(os.path.join(where, 'hog'), 'wb') as f:\n            while True:\n"
              "                f.write(b'x' * (1 << 20))\n    except OSError:\n        pass\n"
              "try:\n    while True:\n        hog.append(bytearray(64 << 20))\nexcept MemoryError:\n    pass\n"
              "import time\nwhile True:\n    time.sleep(1)\n")


def honest_seconds(course: Course, inbox: Path, workers: int, wall_clock: float, memory_mb: int) -> list[float]:
    results = grade_folder(course, inbox, workers=workers, progress=False, wall_clock=wall_clock, memory_mb=memory_mb,
                           cell_timeout=120)
    honest = [r for r in results if r.student.startswith("honest")]
    bad = [r.line() for r in honest if r.error or r.score is None or r.score.auto != r.score.auto_max]
    if bad:
        raise SystemExit(f"an honest submission was not graded right: {bad}")
    for r in results:
        print(f"  {r.line()} in {r.seconds or 0:.1f} s", flush=True)
    return [r.seconds for r in honest]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--honest", type=int, default=2, help="honest submissions graded at once")
    p.add_argument("--repeat", type=int, default=2, help="rounds of each (the mean is reported)")
    p.add_argument("--wall-clock", type=float, default=120, help="seconds allowed to each submission")
    p.add_argument("--memory-mb", type=int, default=6144, help="memory cap of each grader")
    args = p.parse_args(argv)
    if not sandbox.available():
        print("neighbour: needs root, bwrap and setpriv (the grading sandbox); not run")
        return
    with tempfile.TemporaryDirectory(prefix="dgm-bench-") as tmp:
        tmp = Path(tmp)
        course = Course(tmp / "course", notebooks=REPO / "notebooks")
        released = course.release(AID)
        alone, beside = tmp / "alone", tmp / "beside"
        for i in range(args.honest):
            nb = submissions.answered(released, course.source(AID))
            submissions.write(nb, alone, f"honest{i}", AID)
            submissions.write(nb, beside, f"honest{i}", AID)
        for name, code in (("fork_bomb", FORK_BOMB), ("memory_hog", MEMORY_HOG)):
            nb = submissions.answered(released, course.source(AID))
            cell = next(c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "kl_discrete")
            cell.source = code + cell.source
            submissions.write(nb, beside, name, AID)
        a, b = [], []
        for r in range(args.repeat):
            print(f"round {r + 1}: alone", flush=True)
            a += honest_seconds(course, alone, args.honest, args.wall_clock, args.memory_mb)
            print(f"round {r + 1}: beside a fork bomb and a memory hog", flush=True)
            b += honest_seconds(course, beside, args.honest + 2, args.wall_clock, args.memory_mb)
    ta, tb = statistics.mean(a), statistics.mean(b)
    print(f"neighbour: honest alone {ta:.1f} s, beside {tb:.1f} s, ratio {tb / ta:.2f}")


if __name__ == "__main__":
    run_with_torch_env()
    main()
