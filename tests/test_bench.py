"""bench/vae_speed.py runs end to end on tiny budgets and prints the line README quotes."""
from __future__ import annotations

import math
import re
import runpy

from autograder.config import REPO


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
