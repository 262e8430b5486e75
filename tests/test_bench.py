"""The benchmarks run end to end on small budgets and print the lines README quotes: bench/vae_speed.py, and
bench/class_load.py on a scratch hub (4 students, a memory hog, a CPU loop, the idle culler; root only)."""
from __future__ import annotations

import math
import re
import runpy

import pytest

from autograder.course.config import REPO


def test_vae_speed_prints_its_summary_line(capsys):
    bench = runpy.run_path(str(REPO / "bench" / "vae_speed.py"))  # not __main__: no re-exec
    bench["main"](["--seed-iterations", "30", "--course-iterations", "20", "40", "--eval-every", "10"])
    lines = capsys.readouterr().out.strip().splitlines()
    seed = [re.match(r"\s*seed\s+it\s+(\d+)", s) for s in lines]
    assert [int(r[1]) for r in seed if r] == [10, 20, 30]
    assert len([s for s in lines if s.lstrip().startswith("course(40) it")]) == 10
    m = re.fullmatch(r"course: (\S+) s, seed recipe: (\S+) s, ratio: (\S+), course to 100: (\S+) s", lines[-1])
    assert m, lines[-1]
    t1, t2, ratio, t3 = (float(v) for v in m.groups())  # seconds rounded to whole ones
    assert t2 >= 0 and math.isinf(t3), "40 steps are far from NELBO 100"
    assert ratio == 0 if math.isinf(t1) else ratio > 0


def test_class_load_on_the_hub_holds_caps_culls_and_loses_nothing(capsys):
    """bench/class_load.py with 4 students, a memory hog and a CPU loop on a scratch hub (root):
    every submission gets its feedback, only the hog's kernel is killed, the culler stops the idle
    servers and keeps the one running a cell."""
    from test_hub import unavailable

    reason = unavailable()
    if reason:
        pytest.skip(reason)
    bench = runpy.run_path(str(REPO / "bench" / "class_load.py"))
    n = 4
    result = bench["run"](["--students", str(n), "--cull-check", "--cull-idle", "30", "--cull-every", "10",
                           "--activity-interval", "10", "--max-minutes", "10"])  # locust stops by then, done or not
    out = capsys.readouterr().out
    print(out)
    assert re.search(rf"^class: {n} students, login\+spawn p95 [\d.]+ s, feedback p95 [\d.]+ s, errors 0, "
                     r"hub RSS \d+ MiB$", out, re.M), out
    load = result["load"]
    assert load["lost"] == [] and load["submitted"] == load["in_exchange"] == load["feedback"] == n, load
    assert load["grading_errors"] == [], load["grading_errors"]
    assert load["hog_oom_kills"] >= 1 and load["others_oom_killed"] == []
    assert result["cull"]["kept"], "the server running a cell was culled"
    # every idle server (the n students' and the memory hog's, whose kernel was killed and restarted) is culled
    assert len(result["cull"]["culled"]) == n + 1, result["cull"]
