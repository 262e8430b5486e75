"""The root executor (``autograder.executor``): the staff's autograding, as a staff account, runs
its kernels in the same sandbox as root's graders; other accounts are refused, and grading with no
sandbox is refused unless asked for by name.

As root: a throw-away staff group with one staff account (as the formgrader's ``dgm-grader``) and
one student account; the executor runs as root on a socket in a scratch site, and the staff
account runs ``GuardedExecute`` on a hostile notebook the way nbgrader's autograde does."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from autograder.server import hub
from autograder.grading import sandbox
from autograder.course import submissions
from autograder.course.config import REPO

AID = "00_kl_elbo"
PREFIX = f"dgx{os.getpid() % 10000}"
pytestmark = pytest.mark.skipif(not sandbox.available(), reason="the executor needs root and bwrap (make test installs them)")

HOSTILE = """import os
print('uid:', os.getuid(), os.getgroups())
for path in ('/etc/shadow', GRADEBOOK, TESTS):
    try:
        open(path).read()
        print('read:', path)
    except OSError as e:
        print('absent:', path)
"""

RUN = """import json, sys, nbformat
from autograder.course.config import course_config
from autograder.grading.guard import GuardedExecute
nb = nbformat.read(sys.argv[1], as_version=4)
try:
    GuardedExecute(config=course_config()).preprocess(nb, {"metadata": {"path": sys.argv[2]}})
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
else:
    text = lambda v: "".join(v) if isinstance(v, list) else (v or "")
    print(json.dumps({"outputs": [text(o.get("text")) + text(o.get("ename")) + ": " + text(o.get("evalue"))
                                  for c in nb.cells for o in c.get("outputs", [])]}))
"""


@pytest.fixture(scope="module")
def site(released):
    root = Path(tempfile.mkdtemp(prefix="dgm-exec-"))
    os.chmod(root, 0o755)
    s = hub.Site(root=root, prefix=PREFIX)
    ta, student = f"{PREFIX}-grader", f"{PREFIX}-student"
    hub.sh(["groupadd", "--system", s.staff])
    hub.sh(["useradd", "--system", "--gid", s.staff, "--no-create-home", "--shell", "/usr/sbin/nologin", ta])
    hub.sh(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", student])
    executor = None
    try:
        s.python = str(hub.runtime_python(s))  # an interpreter these accounts can run
        (root / "run").mkdir()
        hub.own(root / "run", "root", s.staff, 0o750)
        work = root / "work"
        work.mkdir()
        hub.own(work, ta, s.staff, 0o775)  # the student account runs the same script (and is refused)
        gradebook = root / "gradebook_url"  # a secret the staff can read: the kernel must not
        gradebook.write_text("postgresql://dgm:secret@127.0.0.1/dgm\n")
        hub.own(gradebook, ta, s.staff, 0o640)
        nb = submissions.answered(released(AID), REPO / "notebooks" / AID / f"{AID}.ipynb")
        cell = next(c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "kl_discrete")
        cell.source = HOSTILE.replace("GRADEBOOK", repr(str(gradebook))).replace(
            "TESTS", repr(str(REPO / "tests" / "test_kl_elbo.py"))) + cell.source
        # The hidden tests go in as nbgrader's autograde puts them back: from the source notebook.
        source = nbformat.read(REPO / "notebooks" / AID / f"{AID}.ipynb", as_version=4)
        tests = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
                 if c.get("metadata", {}).get("nbgrader", {}).get("grade")}
        for c in nb.cells:
            gid = c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if gid in tests and c.cell_type == "code":
                c.source = tests[gid]
        nbformat.write(nb, work / f"{AID}.ipynb")
        (work / "run.py").write_text(RUN)
        for path in (work / f"{AID}.ipynb", work / "run.py"):
            hub.own(path, ta, s.staff, 0o644)
        executor = subprocess.Popen([sys.executable, "-I", "-m", "autograder.executor", "--socket",
                                     str(s.executor_socket), "--group", s.staff, "--workers", "1"],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/")
        end = time.monotonic() + 60
        while not s.executor_socket.exists() and time.monotonic() < end and executor.poll() is None:
            time.sleep(0.2)
        assert s.executor_socket.exists(), executor.stdout.read() if executor.poll() is not None else "no socket"
        yield s, ta, student, work
    finally:
        if executor is not None:
            executor.terminate()
            executor.wait(30)
        for user in (ta, student):
            hub.sh(["userdel", user], check=False)
        hub.sh(["groupdel", s.staff], check=False)
        shutil.rmtree(root, ignore_errors=True)


def run_as(site, user: str, executor: bool = True) -> dict:
    s, _, _, work = site
    env = {**hub.runtime_env(s), "HOME": str(work), "MPLCONFIGDIR": str(work / ".mpl")}
    if executor:
        env["DGM_EXECUTOR"] = str(s.executor_socket)
    run = subprocess.run(["runuser", "-u", user, "--", "env", "-i", *[f"{k}={v}" for k, v in env.items()],
                          s.python, str(work / "run.py"), str(work / f"{AID}.ipynb"), str(work)],
                         capture_output=True, text=True, timeout=600, cwd=str(work))
    assert run.stdout.strip(), run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_staff_autograding_runs_in_the_sandbox(site):
    s, ta, _, work = site
    result = run_as(site, ta)
    assert "error" not in result, result
    out = "\n".join(result["outputs"])
    uid = int(out.split("uid:")[1].split()[0])
    assert uid >= sandbox.UID_BASE and "[]" in out.split("uid:")[1].splitlines()[0], out
    assert "read:" not in out and out.count("absent:") == 3, out
    assert "GradingError" not in out and "could not run this test" not in out, out


def test_other_accounts_are_refused(site):
    _, _, student, _ = site
    result = run_as(site, student)
    assert "cannot be reached" in result["error"] and "Permission denied" in result["error"], result


def test_no_sandbox_and_no_executor_is_refused(site):
    _, ta, _, _ = site
    result = run_as(site, ta, executor=False)
    assert "refused to run a submission without the grading sandbox" in result["error"], result
