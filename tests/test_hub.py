"""The class's JupyterHub (``autograder.hub``, ``make hub``) end to end, as root.

One module-wide site in a scratch folder: ``python -m autograder.hub setup`` (a PostgreSQL cluster
of its own, run by an unprivileged account), ``accounts`` (an instructor, a TA and four students,
Unix accounts made from a roster), ``up`` (JupyterHub with PAM log-in on loopback, free ports).
Then, through the hub's REST API, the formgrader service and the students' own servers:

- the instructor releases 00_kl_elbo; each student fetches it, answers it (alice right, bob with a
  wrong ``kl_normal``, mallory right but her first cell tries to read /etc/shadow, the gradebook's
  URL, the hub's cookie secret and the repository's tests, and to reach PostgreSQL and the hub)
  and submits; the TA collects, autogrades into PostgreSQL through the formgrader (the students'
  code runs in the sandbox, through the root executor service) and releases feedback; each student
  fetches their own; the grades are right, mallory's kernel ran as a sandbox uid and reached none
  of what it tried, and the secrets and the gradebook are as they were;
- code in a student's own kernel cannot read the course folder, the gradebook, another student's
  home or submission (PermissionError), nor log in to the database;
- each server runs in its own control group with the caps (``autograder.server.hubcaps``): a memory hog
  loses only its own kernel and is told why at its next cell, the neighbour's kernel keeps its
  state; tmpfs pages count; busy loops stay within the CPU quota; threads stop at the task cap;
  the idle culler runs as a hub service (its culling is checked by bench/class_load.py's test);
- in Chromium: a student logs in on the hub's page and sees 00_kl_elbo in the Assignments tab but
  no formgrader; carol fetches, opens, runs a cell, validates, submits and reads the grading
  service's feedback; the TA opens the formgrader, collects, autogrades carol's submission,
  grades a written answer by hand, generates and releases her feedback, and carol fetches it
  (screenshots ``hub-student-*.png``, ``hub-ta-*.png``; into ``docs/`` with ``DGM_SCREENSHOTS=docs``).

It prints the time from setup to a usable login page and the memory of an idle student server.
Every account, process and folder it made is removed at the end. Skipped, with the reason, when not
root or without node, configurable-http-proxy (``make hub-deps``) or PostgreSQL's programs.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

import browser
from autograder.server import hub as hubmod
from autograder.server import hubcaps
from autograder.server import hubclient
from autograder.course import submissions
from autograder.grading import sandbox
from autograder.course.config import REPO
from autograder.server.hubclient import Person
from autograder.server.scratch import ScratchHub

AID = "00_kl_elbo"
WRONG_KL = '''
def kl_normal(qm, qv, pm, pv):
    return 0.5 * (torch.log(pv**2) - torch.log(qv**2) + qv**2 / pv**2 + (qm - pm).pow(2) / pv**2 - 1).sum(-1)
'''
# Each server's caps here: memory for a kernel that loads torch and MNIST (about 1 GiB with the server).
MEMORY_MB, CPUS, TASKS = 1536, 1.0, 256
CAPS = ["--server-memory-mb", str(MEMORY_MB), "--server-cpus", str(CPUS), "--server-tasks", str(TASKS)]


def unavailable() -> str | None:
    """Why the hub cannot be tested here, or None."""
    if os.geteuid() != 0:
        return "the hub tests create Unix accounts and run PostgreSQL as one: run them as root"
    if not shutil.which("node"):
        return "node is not installed: configurable-http-proxy needs it (apt-get install nodejs npm)"
    if not os.access(hubmod.PROXY, os.X_OK):
        return f"{hubmod.PROXY} is missing: run `make hub-deps` (npm install configurable-http-proxy)"
    for tool in ("useradd", "userdel", "runuser", "chpasswd", "gpasswd"):
        if not shutil.which(tool):
            return f"{tool} not found"
    try:
        for tool in ("initdb", "pg_ctl", "psql"):
            hubmod.pg_tool(tool)
    except hubmod.HubError as e:
        return str(e)
    return None


def test_a_roster_is_checked_before_any_account_is_made(tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("id,first_name,last_name,email,role\nada,Ada,L,a@x.org,\nbo,Bo,B,,TA\n")
    assert [(r["id"], r["role"]) for r in hubmod.read_roster(roster)] == [("ada", "student"), ("bo", "ta")]
    for row, reason in (("Ada,,,,student", "not a valid Unix user name"), ("ada;rm,,,,", "not a valid Unix"),
                        ("ada,,,,professor", "role 'professor' is none of")):
        roster.write_text(f"id,first_name,last_name,email,role\n{row}\n")
        with pytest.raises(hubmod.HubError, match=reason):
            hubmod.read_roster(roster)


def test_hub_configuration(tmp_path, monkeypatch):
    """What the hub is told (no hub started): PAM for the class's groups, everyone's server as
    their own account, the formgrader as the grader account for the staff only."""
    from traitlets.config import Config

    monkeypatch.setattr(hubmod, "PROXY", Path(shutil.which("true")))
    site = hubmod.Site(root=tmp_path, prefix="cls", ip="127.0.0.1", port=9000)
    c = Config()
    hubmod.configure(c, site)
    assert c.JupyterHub.authenticator_class == "pam"
    assert c.PAMAuthenticator.allowed_groups == {"cls-staff", "cls-students"}
    assert c.PAMAuthenticator.admin_groups == {"cls-instructors"}
    assert c.JupyterHub.spawner_class == "autograder.server.hubcaps.CappedSpawner"
    assert c.Spawner.cmd[1:] == ["-m", "jupyterhub.singleuser"]
    assert c.Spawner.environment["DGM_EXCHANGE"] == str(tmp_path / "exchange")
    assert "DGM_DB_URL" not in c.Spawner.environment                  # students never see the gradebook
    # Caps of every server, in its own control group <prefix>/users/<name> (defaults: site.json's).
    assert (c.CappedSpawner.cgroup_prefix, c.CappedSpawner.memory_mb, c.CappedSpawner.cpus,
            c.CappedSpawner.tasks) == ("cls", 2048, 1.0, 512)
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert set(services) == {hubmod.SERVICE, "executor", "idle-culler"}
    service, culler = services[hubmod.SERVICE], services["idle-culler"]
    assert service["user"] == "cls-grader" and service["cwd"] == str(tmp_path / "course")
    # The idle culler: a hub service, as nobody, with the site's timeout and only the scopes it needs.
    assert culler["name"] == "idle-culler" and culler["user"] == "nobody"
    assert culler["command"][1:3] == ["-m", "jupyterhub_idle_culler"] and "--timeout=3600" in culler["command"]
    role, culler_role = c.JupyterHub.load_roles
    assert role["groups"] == ["cls-staff"] and role["scopes"][0] == f"access:services!service={hubmod.SERVICE}"
    assert culler_role["services"] == ["idle-culler"] and "delete:servers" in culler_role["scopes"]
    assert not any(s.startswith("admin") for s in culler_role["scopes"])
    site.feedback, site.cull_idle_s = True, 0  # the grading service starts and stops with the hub; no culler
    c = Config()
    hubmod.configure(c, site)
    services = {s["name"]: s for s in c.JupyterHub.services}
    formgrader, feedback, executor = services[hubmod.SERVICE], services["feedback"], services["executor"]
    assert "user" not in executor and executor["command"][1:4] == ["-I", "-m", "autograder.executor"]
    assert formgrader["environment"]["DGM_EXECUTOR"] == executor["command"][5] == str(tmp_path / "run" / "executor.sock")
    assert feedback["command"][1:5] == ["-m", "autograder", "--course", str(tmp_path / "course")]
    assert "serve" in feedback["command"] and feedback["environment"]["DGM_EXCHANGE"] == str(tmp_path / "exchange")
    assert len(c.JupyterHub.load_roles) == 1


def memory_mib(uid: int) -> tuple[float, float, int]:
    """(PSS, RSS, processes) of everything the account runs, in MiB."""
    pss = rss = 0
    pids = hubmod.processes_of({uid})
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                key, *value = line.split()
                if key == "Pss:":
                    pss += int(value[0])
                elif key == "Rss:":
                    rss += int(value[0])
        except OSError:
            pass
    return pss / 1024, rss / 1024, len(pids)


@pytest.fixture(scope="module")
def hub():
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    roles = {"instructor": "instructor", "ta": "ta", "alice": "student", "bob": "",  # bob: the default
             "carol": "student", "mallory": "student"}
    h = ScratchHub("dgmt", roles, ["--feedback", *CAPS])
    try:
        h.start()
        print(f"\nhub: setup {h.setup_s:.1f} s, then a usable login page {h.up_s:.1f} s after `up` "
              f"(make hub: {h.setup_s + h.up_s:.1f} s)")
        yield h
    finally:
        left = h.remove()
        assert not left, f"left behind: {left}"


@pytest.fixture(scope="module")
def released(hub):
    """The instructor (a hub admin) releases 00_kl_elbo through the formgrader service."""
    inst = hub.login("instructor")
    assert inst.ok("get", "/hub/api/user")["admin"] is True
    inst.formgrader("post", f"assignment/{AID}/assign")
    inst.formgrader("post", f"assignment/{AID}/release")
    assert (hub.site.exchange / "dgm" / "outbound" / AID / f"{AID}.ipynb").is_file()
    return AID


# mallory's first answer: it looks around before it computes the KL (autograded in the sandbox).
HOSTILE = """import json as _json, os as _os, socket as _socket
_seen = {"uid": _os.getuid(), "groups": _os.getgroups()}
for _name, _path in _TARGETS.items():
    try:
        open(_path, "rb").read()
        _seen[_name] = "read"
    except OSError as _e:
        _seen[_name] = type(_e).__name__
for _name, _port in _PORTS.items():
    try:
        _socket.create_connection(("127.0.0.1", _port), timeout=5).close()
        _seen[_name] = "connected"
    except OSError as _e:
        _seen[_name] = type(_e).__name__
print("SANDBOX " + _json.dumps(_seen))
"""


def hostile_targets(site: hubmod.Site) -> dict[str, str]:
    """What mallory's notebook tries to read while it is autograded."""
    return {"shadow": "/etc/shadow", "gradebook_url": str(site.gradebook_url_file),
            "cookie_secret": str(site.state / "jupyterhub_cookie_secret"),
            "hidden_tests": str(REPO / "tests" / "test_kl_elbo.py")}


@pytest.fixture(scope="module")
def submitted(hub, released):
    """Each student starts their server, fetches, answers (bob: a wrong kl_normal; mallory: right,
    but her first answer also tries to read the site's secrets) and submits, all through their own
    server's API. Returns ``{student: submission folder in the exchange}``."""
    source = REPO / "notebooks" / AID / f"{AID}.ipynb"
    reference = {c.metadata["nbgrader"]["grade_id"]: c.source
                 for c in nbformat.read(source, as_version=4).cells if c.metadata.get("nbgrader", {}).get("solution")}
    probe = (f"_TARGETS = {hostile_targets(hub.site)!r}\n"
             f"_PORTS = {{'gradebook_port': {hub.site.pg_port}, 'hub_port': {hub.site.port}}}\n" + HOSTILE)
    answers = {"alice": None, "bob": {"kl_normal": WRONG_KL}, "mallory": {"kl_discrete": probe + reference["kl_discrete"]}}
    for who in answers:
        p = hub.login(who)
        p.start_server(timeout=180)
    time.sleep(5)  # idle: the servers' start-up work done
    for who in answers:
        pss, rss, n = memory_mib(hubmod.pwd.getpwnam(hub.names[who]).pw_uid)
        print(f"idle student server ({who}): {pss:.0f} MiB PSS, {rss:.0f} MiB RSS, {n} process(es)")
    inbound = hub.site.exchange / "dgm" / "inbound"
    out = {}
    for who, overrides in answers.items():
        p = hub.people[who]
        listed = p.server("get", "assignments?course_id=dgm")["value"]
        assert [(a["assignment_id"], a["status"]) for a in listed] == [(AID, "released")]
        p.server("post", "assignments/fetch", json={"course_id": "dgm", "assignment_id": AID})
        path = f"api/contents/{AID}/{AID}.ipynb"
        fetched = nbformat.from_dict(p.server("get", path)["content"])
        with tempfile.TemporaryDirectory() as tmp:
            nbformat.write(fetched, Path(tmp) / "released.ipynb")
            nb = submissions.answered(Path(tmp) / "released.ipynb", source, overrides)
        p.server("put", path, json={"type": "notebook", "format": "json", "content": nb})
        p.server("post", "assignments/submit", json={"course_id": "dgm", "assignment_id": AID})
        [out[who]] = [d for d in inbound.iterdir() if d.name.startswith(f"{p.name}+{AID}+")]
    return out


def test_release_submit_collect_autograde_feedback_through_the_hub(hub, submitted):
    site = hub.site
    # Submissions: the student's and the staff's, no one else's.
    for who, folder in submitted.items():
        st = folder.stat()
        assert st.st_mode & 0o777 == 0o770, oct(st.st_mode)
        assert hubmod.grp.getgrgid(st.st_gid).gr_name == site.staff
    assert oct((site.exchange / "dgm" / "inbound").stat().st_mode & 0o7777) == "0o3773"

    # A student cannot open the formgrader; the TA can, and grades.
    alice = hub.people["alice"]
    assert alice.get(f"/services/{hubmod.SERVICE}/formgrader/api/assignments").status_code == 403
    assert alice.get(f"/user/{alice.name}/formgrader/api/assignments").status_code == 404  # switched off
    ta = hub.login("ta")
    ta.formgrader("post", f"assignment/{AID}/collect")
    kept = ("gradebook_url", "cookie_secret")  # the site's (the machine's /etc/shadow changes with others' accounts)
    secrets_before = {name: Path(hostile_targets(site)[name]).read_bytes() for name in kept}
    for who in ("mallory", "alice", "bob"):  # the hostile one first: her classmates are graded after her
        started = time.monotonic()
        ta.formgrader("post", f"submission/{AID}/{hub.names[who]}/autograde")
        print(f"\nautograde of {who} through the formgrader and the executor: {time.monotonic() - started:.0f} s")
    ta.formgrader("post", f"assignment/{AID}/generate_feedback")
    ta.formgrader("post", f"assignment/{AID}/release_feedback")

    # The gradebook is PostgreSQL's.
    url = site.gradebook_url()
    assert url.startswith("postgresql://")
    from nbgrader.api import Gradebook
    with Gradebook(url) as gb:
        scores = {s.student.id: (s.score, s.max_score) for s in gb.find_assignment(AID).submissions}
    alice_id, bob_id, mallory_id = hub.names["alice"], hub.names["bob"], hub.names["mallory"]
    listed = {s["student"]: s for s in ta.formgrader("get", f"submissions/{AID}")}
    assert set(scores) == set(listed) == {alice_id, bob_id, mallory_id}
    # Every autograded point for alice; written answers wait for manual grading.
    graded = [c for c in nbformat.read(REPO / "notebooks" / AID / f"{AID}.ipynb", as_version=4).cells
              if c.metadata.get("nbgrader", {}).get("grade")]
    auto = sum(c.metadata.nbgrader.points for c in graded if c.cell_type == "code")
    assert scores[alice_id] == (auto, sum(c.metadata.nbgrader.points for c in graded)), scores
    assert 0 < scores[bob_id][0] < auto, scores                   # kl_normal (and what uses it) fail

    # mallory's kernel ran as a uid of the sandbox's, without groups, and reached none of the secrets
    # (each of which is there for the staff's and root's processes), nor the gradebook or the hub.
    autograded = nbformat.read(site.course / "autograded" / mallory_id / AID / f"{AID}.ipynb", as_version=4)
    [cell] = [c for c in autograded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "kl_discrete"]
    [line] = [l for o in cell.outputs if o.output_type == "stream" for l in o.text.splitlines()
              if l.startswith("SANDBOX ")]
    seen = json.loads(line.removeprefix("SANDBOX "))
    print(f"mallory's probe in the sandbox: {seen}")
    assert seen.pop("uid") >= sandbox.UID_BASE and seen.pop("groups") == [], seen
    assert set(seen) == {*hostile_targets(site), "gradebook_port", "hub_port"}, seen
    assert not {v for v in seen.values() if v in ("read", "connected")}, seen
    assert all(v.endswith("Error") for v in seen.values()), seen
    assert scores[mallory_id] == scores[alice_id], scores         # her answers are right: graded as such
    assert {name: Path(hostile_targets(site)[name]).read_bytes() for name in kept} == secrets_before
    assert site.gradebook_url() == url                             # the gradebook intact, and still ours

    # Each student fetches their own feedback into their home.
    for who in submitted:
        p = hub.people[who]
        p.server("post", "assignments/fetch_feedback", json={"course_id": "dgm", "assignment_id": AID})
        [stamp] = p.server("get", f"api/contents/{AID}/feedback")["content"]
        [html] = p.server("get", f"api/contents/{stamp['path']}")["content"]
        text = p.server("get", f"api/contents/{html['path']}")["content"]
        assert "hidden tests ran here" in text and "BEGIN HIDDEN TESTS" not in text
        if who == "bob":
            assert "= 1.3069, got" in text                         # the visible test kl_normal fails


PROBE = '''
import json, os, pwd
result = {"user": pwd.getpwuid(os.getuid()).pw_name}
def probe(name, path):
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            open(path, "rb").close()
        result[name] = "read"
    except Exception as e:
        result[name] = type(e).__name__
for name, path in PATHS.items():
    probe(name, path)
try:
    import psycopg
    psycopg.connect(host="127.0.0.1", port=PG_PORT, dbname="dgm", user="dgm", connect_timeout=10).close()
    result["database"] = "connected"
except Exception as e:
    result["database"] = type(e).__name__
import helpers.data
result["data"] = list(helpers.data.load("mnist", "test")[0].shape)
print(json.dumps(result))
'''


def run_in_kernel(p: Person, code: str, then=None) -> str:
    """Run ``code`` in a new kernel of ``p``'s own server; returns its stdout. ``then()`` is called
    once the code has run, before the kernel is shut down."""
    kernel = p.kernel()
    try:
        out = kernel.run(code)
        if then is not None:
            then()
        return out
    finally:
        kernel.shutdown()


def test_a_students_kernel_cannot_read_what_is_not_theirs(hub, submitted):
    site, bob = hub.site, hub.people["bob"]
    alice_home = Path(hubmod.pwd.getpwnam(hub.names["alice"]).pw_dir)
    paths = {
        "course folder": site.course,
        "source notebook": site.course / "notebooks" / AID / f"{AID}.ipynb",
        "gradebook URL": site.gradebook_url_file,
        "gradebook cluster": site.postgres,
        "solutions in the instructor's repository": REPO / "notebooks" / AID / f"{AID}.ipynb",
        "grading code (answer keys)": REPO / "autograder" / "evaluators" / "conditional.py",
        "the repository's history": REPO / ".git",
        "other student's home": alice_home,
        "other student's notebook": alice_home / AID / f"{AID}.ipynb",
        "exchange inbound": site.exchange / "dgm" / "inbound",
        "other student's submission": submitted["alice"] / f"{AID}.ipynb",
        # what bob may read
        "own notebook": Path(hubmod.pwd.getpwnam(bob.name).pw_dir) / AID / f"{AID}.ipynb",
        "released notebook": site.exchange / "dgm" / "outbound" / AID / f"{AID}.ipynb",
    }
    code = f"PATHS = {json.dumps({k: str(v) for k, v in paths.items()})}\nPG_PORT = {site.pg_port}\n" + PROBE
    uid = hubmod.pwd.getpwnam(bob.name).pw_uid

    def measure():
        pss, rss, n = memory_mib(uid)
        print(f"\nstudent server with a kernel that loaded torch and MNIST: {pss:.0f} MiB PSS, {rss:.0f} MiB RSS, "
              f"{n} processes")
    result = json.loads(run_in_kernel(bob, code, then=measure).strip().splitlines()[-1])
    assert result.pop("user") == bob.name
    assert result.pop("own notebook") == result.pop("released notebook") == "read"
    assert result.pop("data") == [10000, 784]                       # helpers and the data sets
    assert result.pop("database") == "OperationalError"             # no password, no gradebook
    assert result == {name: "PermissionError" for name in result}, result


# --- caps and culling -------------------------------------------------------------------------

def group_of(pid: int) -> str:
    """The memory cgroup of ``pid`` (v1), or its unified one (v2)."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    return next((l.split(":", 2)[2] for l in lines if "memory" in l.split(":")[1].split(",")),
                next(l[3:] for l in lines if l.startswith("0::")))


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError):
            pass
    return total / os.sysconf("SC_CLK_TCK")


HOG = "chunks = []\nwhile True:\n    chunks.append(b'\\1' * (64 << 20))  # touched pages, 64 MiB at a time\n"
SPIN = """
import subprocess, sys
spinners = [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(3)]
print(len(spinners))
"""
THREADS = """
import threading
stop, started = threading.Event(), []
try:
    while len(started) < 4 * TASKS:
        t = threading.Thread(target=stop.wait)
        t.start()
        started.append(t)
except RuntimeError as e:
    print(len(started), e)
stop.set()
"""


@pytest.fixture(scope="module")
def clients(hub, submitted):
    """alice and bob, logged in (their servers run: ``submitted``)."""
    return {who: hub.login(who) for who in ("alice", "bob")}


def test_each_server_runs_in_its_own_capped_group(hub, clients):
    """Everything alice's and bob's servers run is in ``<prefix>/users/<name>``, with the caps."""
    for who, person in clients.items():
        group = hubcaps.Cgroup(hubcaps.server_group(hub.site.prefix, person.name))
        uid = hubmod.pwd.getpwnam(person.name).pw_uid
        pids = hubmod.processes_of({uid})
        assert pids and {group_of(pid) for pid in pids} == {"/" + group.name}, who
        assert set(pids) <= set(group.pids())
        folders = group.folders()
        if group.version == 1:
            assert int((folders["memory"] / "memory.limit_in_bytes").read_text()) == MEMORY_MB << 20
            assert (folders["cpu"] / "cpu.cfs_quota_us").read_text().strip() == str(int(CPUS * 100_000))
        else:
            assert int((folders["memory"] / "memory.max").read_text()) == MEMORY_MB << 20
            assert (folders["memory"] / "memory.swap.max").read_text().strip() == "0"
        assert (folders["pids"] / "pids.max").read_text().strip() == str(TASKS)


def test_a_memory_hog_loses_only_its_own_kernel_and_is_told_why(hub, clients):
    alice, bob = clients["alice"], clients["bob"]
    neighbour = alice.kernel()
    hog = bob.kernel()
    try:
        neighbour.run("x = 41")
        bob_group = hubcaps.Cgroup(hubcaps.server_group(hub.site.prefix, bob.name))
        alice_group = hubcaps.Cgroup(hubcaps.server_group(hub.site.prefix, alice.name))
        # tmpfs pages count: a file in /dev/shm is charged to bob's group
        before = int((bob_group.folders()["memory"] / ("memory.usage_in_bytes" if bob_group.version == 1
                                                       else "memory.current")).read_text())
        hog.run("open('/dev/shm/dgm-test-%s' % __import__('os').getuid(), 'wb').write(b'\\1' * (256 << 20))")
        after = int((bob_group.folders()["memory"] / ("memory.usage_in_bytes" if bob_group.version == 1
                                                      else "memory.current")).read_text())
        hog.run("import os; os.remove('/dev/shm/dgm-test-%s' % os.getuid())")
        assert after - before >= 200 << 20, (before, after)

        started = time.monotonic()
        with pytest.raises(hubclient.KernelDied):
            hog.execute(HOG, timeout=120)
        killed_s = time.monotonic() - started
        assert bob_group.oom_kills() >= 1 and alice_group.oom_kills() == 0
        hog.wait_restarted()                                        # restarted by bob's server
        server = bob.server_state()
        assert server.get("ready"), server                      # bob's server itself lives on
        note = hog.execute("print('after')")
        assert note.stdout == "after\n" and "your server reached its memory limit" in note.stderr, note
        assert f"{MEMORY_MB} MiB" in note.stderr
        assert "memory limit" not in hog.execute("print('again')").stderr   # said once
        assert neighbour.run("print(x + 1)") == "42\n"          # alice's kernel kept its state
        print(f"\nmemory hog: killed {killed_s:.1f} s after it started, at {bob_group.memory_peak_mb():.0f} MiB "
              f"(cap {MEMORY_MB} MiB); alice's kernel untouched")
    finally:
        neighbour.shutdown()
        hog.shutdown()


def test_cpu_and_task_caps_hold(hub, clients):
    bob = clients["bob"]
    group = hubcaps.Cgroup(hubcaps.server_group(hub.site.prefix, bob.name))
    k = bob.kernel()
    try:
        k.run(f"TASKS = {TASKS}\n" + THREADS.strip())
        assert group.tasks_capped() > 0
        out = k.run(f"TASKS = {TASKS}\n" + THREADS.strip())
        started = int(out.split()[0])
        assert started < TASKS, out                               # the server's own threads count too
        assert k.run(SPIN).strip() == "3"                         # three busy processes, 1 core allowed
        time.sleep(1)
        pids, t0 = group.pids(), time.monotonic()
        c0 = cpu_seconds(pids)
        time.sleep(3)
        cores = (cpu_seconds(pids) - c0) / (time.monotonic() - t0)
        print(f"\nthree busy loops in one server: {cores:.2f} cores (cap {CPUS}); "
              f"{started} threads started before the task cap ({TASKS})")
        assert cores <= CPUS * 1.15, cores
        stat = (group.folders()["cpu"] / "cpu.stat").read_text().split()
        throttled = int(stat[stat.index("nr_throttled") + 1])
        assert throttled > 0, stat                               # the quota, not a busy machine, held them
        k.run("[s.kill() for s in spinners]; [s.wait() for s in spinners]")
    finally:
        k.shutdown()


def test_the_idle_culler_runs_as_a_hub_service(hub):
    inst = hub.login("instructor")
    services = inst.ok("get", "/hub/api/services")
    assert hubcaps.CULLER in services, services
    deadline = time.monotonic() + 30  # started with the hub; restarted by it if it died
    while not (culler := [p for p in hubmod.processes_of({hubmod.pwd.getpwnam("nobody").pw_uid})
                          if "jupyterhub_idle_culler" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]):
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    assert culler, "the idle culler is not running (as nobody)"


# --- in the browser --------------------------------------------------------------------------
# Each step's screenshot goes to test-artifacts/; with DGM_SCREENSHOTS=docs, also to docs/ for the guides.

VIEWPORT = {"width": 1280, "height": 800}
FEEDBACK_S = 300  # the grading service's feedback after a submit, on a busy 2-core machine


@pytest.fixture(scope="module")
def chromium(hub):
    with browser.launched() as b:
        yield b


def log_in(chromium, hub: ScratchHub, who: str, next_url: str = ""):
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(browser.TIMEOUT_MS)
    page.goto(f"{hub.base}/hub/login" + (f"?next={next_url}" if next_url else ""))
    page.fill("#username_input", hub.names[who])
    page.fill("#password_input", hub.passwords[hub.names[who]])
    page.click("#login_submit")
    return context, page


def assignments_tab(page, hub: ScratchHub, name: str) -> None:
    """JupyterLab of ``name`` with nbgrader's Assignments tab open (and nothing else)."""
    page.goto(f"{hub.base}/user/{name}/lab?reset")
    browser.menu(page, "Nbgrader", "nbgrader:open-assignment-list")
    page.locator("#refresh_assignments_list").wait_for()


def wait_for_fetch_feedback(page, hub: ScratchHub, who: str, timeout: float):
    """The Assignments tab's Fetch Feedback button (there for every submission) once feedback new
    to ``who`` waits in the exchange: the server's Assignments API is asked every 2 s (the tab's
    own refresh takes longer than that on a busy server), then the tab shows it."""
    p, started = hub.login(who), time.monotonic()

    def waiting() -> bool:
        return any(s.get("has_exchange_feedback") and (not s.get("has_local_feedback") or s.get("feedback_updated"))
                   for a in p.server("get", "assignments?course_id=dgm")["value"] if a["assignment_id"] == AID
                   for s in a.get("submissions", []))
    while not waiting():
        assert time.monotonic() - started < timeout, f"no feedback to fetch in {timeout:.0f} s"
        time.sleep(2)
    assignments_tab(page, hub, p.name)
    submitted = page.locator("#submitted_assignments_list")
    submitted.get_by_text("(feedback available to fetch)").wait_for()
    return submitted.locator(".list_item:not(.nested_list_item)", has_text=AID).get_by_role(
        "button", name="Fetch Feedback").first


def feedback_text(page, hub: ScratchHub, name: str) -> str:
    """The feedback page of ``name``'s (one) submission, as the browser shows it."""
    home = Path(hubmod.pwd.getpwnam(name).pw_dir)
    [html] = (home / AID / "feedback").glob(f"*/{AID}.html")
    page.goto(f"{hub.base}/user/{name}/files/{html.relative_to(home)}")
    return page.locator("body").inner_text()


def test_a_student_logs_in_and_sees_the_assignment(chromium, hub, submitted):
    context, page = log_in(chromium, hub, "alice")
    try:
        page.wait_for_url(f"**/user/{hub.names['alice']}/lab**")
        browser.menu(page, "Nbgrader", "nbgrader:open-assignment-list")
        page.locator(".list_item", has_text=AID).first.wait_for()
        page.locator(".lm-MenuBar-item", has_text="Nbgrader").click()  # no formgrader of her own
        page.locator("li.lm-Menu-item[data-command='nbgrader:open-assignment-list']").wait_for()
        assert page.locator("li.lm-Menu-item[data-command^='nbgrader:open-formgrader']"
                            ":not(.lm-mod-disabled)").count() == 0
    finally:
        context.close()


def test_a_students_whole_journey_in_the_browser(chromium, hub, released):
    """carol logs in, fetches 00 in the Assignments tab, opens it, runs a cell, validates, submits,
    and reads the grading service's feedback: her own work and every verdict, no hidden test."""
    name = hub.names["carol"]
    home = Path(hubmod.pwd.getpwnam(name).pw_dir)
    context, page = log_in(chromium, hub, "carol")
    shots = []

    def shot(step):
        shots.append(browser.screenshot(page, f"hub-student-{len(shots) + 1}-{step}", guide=True))
    try:
        page.wait_for_url(f"**/user/{name}/lab**")
        browser.menu(page, "Nbgrader", "nbgrader:open-assignment-list")
        page.locator("#released_assignments_list .list_item:not(.nested_list_item)", has_text=AID).get_by_role("button", name="Fetch").click()
        page.locator("#fetched_assignments_list .list_item:not(.nested_list_item)", has_text=AID).wait_for()
        shot("fetched")
        # Her answers (the reference solutions), as she would have typed them.
        nb = submissions.answered(home / AID / f"{AID}.ipynb", REPO / "notebooks" / AID / f"{AID}.ipynb")
        nbformat.write(nb, home / AID / f"{AID}.ipynb")
        os.chown(home / AID / f"{AID}.ipynb", *hubmod.pwd.getpwnam(name)[2:4])
        page.goto(f"{hub.base}/user/{name}/lab/tree/{AID}/{AID}.ipynb")
        panel = page.locator(browser.PANEL)
        panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()
        first = panel.locator(".jp-Notebook .jp-CodeCell").first
        # Run it (Shift+Enter). Pressed as soon as the kernel looks idle, JupyterLab may not be connected
        # to it yet and ask for a kernel (the notebook's own, kept) or drop the request: pressed again.
        select = page.locator(".jp-Dialog", has_text="Select Kernel")
        prompt, busy = (first.locator(".jp-InputArea-prompt", has_text=t) for t in ("[1]", "[*]"))
        deadline, pressed = time.monotonic() + browser.TIMEOUT_MS / 1000, 0.0
        while not prompt.count():
            assert time.monotonic() < deadline, "the first cell did not run"
            if select.count():
                select.get_by_role("button", name="Select").click()
                select.wait_for(state="detached")
                pressed = 0.0
            elif not busy.count() and time.monotonic() - pressed > 10:
                first.locator(".jp-InputArea-editor").click()
                page.keyboard.press("Shift+Enter")
                pressed = time.monotonic()
            time.sleep(0.5)
        shot("ran-a-cell")
        dialog = browser.validate(page)
        dialog.locator(".validation-success").wait_for()
        shot("validated")
        dialog.get_by_role("button").last.click()
        assignments_tab(page, hub, name)
        page.locator("#fetched_assignments_list .list_item:not(.nested_list_item)", has_text=AID).get_by_role("button", name="Submit").click()
        page.locator("#submitted_assignments_list .list_item:not(.nested_list_item)", has_text=AID).first.wait_for()
        started = time.monotonic()
        fetch_feedback = wait_for_fetch_feedback(page, hub, "carol", FEEDBACK_S)  # the grading service's, minutes at most
        print(f"\nfeedback in the browser {time.monotonic() - started:.0f} s after Submit")
        shot("feedback-arrived")
        fetch_feedback.click()
        page.get_by_text("(view feedback)").first.wait_for()
        text = feedback_text(page, hub, name)
        shot("feedback-page")
        assert "Score:" in text and "Early feedback on your submission" in text
        assert "def kl_normal" in text                           # her own work
        assert "hidden tests ran here" in text and "BEGIN HIDDEN TESTS" not in text
    except Exception:
        browser.screenshot(page, "hub-student-failed")  # what the page showed when it failed
        raise
    finally:
        context.close()


@pytest.fixture(scope="module")
def carol_submitted(hub, released):
    """carol's submission in the exchange: the one of her journey in the browser, or (that test
    deselected or stopped before Submit) one made through her server's API."""
    inbound = hub.site.exchange / "dgm" / "inbound"
    name = hub.names["carol"]
    if not any(d.name.startswith(f"{name}+{AID}+") for d in inbound.iterdir()):
        p = hub.login("carol")
        p.start_server(timeout=180)
        if not (Path(hubmod.pwd.getpwnam(name).pw_dir) / AID).is_dir():
            p.server("post", "assignments/fetch", json={"course_id": "dgm", "assignment_id": AID})
        path = f"api/contents/{AID}/{AID}.ipynb"
        with tempfile.TemporaryDirectory() as tmp:
            nbformat.write(nbformat.from_dict(p.server("get", path)["content"]), Path(tmp) / "released.ipynb")
            nb = submissions.answered(Path(tmp) / "released.ipynb", REPO / "notebooks" / AID / f"{AID}.ipynb")
        p.server("put", path, json={"type": "notebook", "format": "json", "content": nb})
        p.server("post", "assignments/submit", json={"course_id": "dgm", "assignment_id": AID})
    return name


def close_modal(page, says: str) -> None:
    """Wait for the formgrader's dialog, which must say ``says`` (its error dialog fails the test
    with the log it shows), and close it."""
    modal = page.locator("#success-modal, #error-modal").first
    modal.wait_for()
    text = modal.inner_text()
    assert modal.get_attribute("id") == "success-modal" and says in text, text[-4000:]
    modal.locator(".modal-footer button").click()
    modal.wait_for(state="detached")


def test_the_ta_grades_in_the_formgrader_and_the_student_fetches_it(chromium, hub, carol_submitted):
    """The TA logs in, opens the formgrader, collects, autogrades carol's submission (in the sandbox,
    through the executor), grades a written answer by hand, generates and releases her feedback;
    carol fetches it in her Assignments tab and reads the TA's score and comment."""
    carol = carol_submitted
    formgrader = f"{hub.base}/services/{hubmod.SERVICE}/formgrader"
    context, page = log_in(chromium, hub, "ta", f"/services/{hubmod.SERVICE}/formgrader")
    shots = []

    def shot(step):
        shots.append(browser.screenshot(page, f"hub-ta-{len(shots) + 1}-{step}", guide=True))
    comment = "Right: log t <= t - 1 with t = q/p, summed over the support of p."
    try:
        page.wait_for_url(f"**/services/{hubmod.SERVICE}/formgrader**")
        row = page.locator("tr", has_text=AID).first
        row.locator(".collect a").click()
        close_modal(page, "Successfully collected")
        shot("collected")
        page.goto(f"{formgrader}/manage_submissions/{AID}")
        row = page.locator("#main-table tr", has_text=carol).first
        started = time.monotonic()
        row.locator(".autograde a").click()
        close_modal(page, "Successfully autograded")
        print(f"\nautograde of carol from the formgrader page: {time.monotonic() - started:.0f} s")
        page.locator("#main-table tr", has_text=carol).locator(".status", has_text="needs manual grading").wait_for()
        shot("autograded")

        # A written answer, by hand: the proof that KL >= 0 (5 points), 4 of them and a comment.
        ta = hub.login("ta")
        [nb_sub] = [s for s in ta.formgrader("get", f"submitted_notebooks/{AID}/{AID}") if s["student"] == carol]
        page.goto(f"{formgrader}/gradebook/{AID}/{AID}")
        page.locator(f"a[href$='/submissions/{nb_sub['id']}']").first.click()
        score, note = page.locator("input.score#kl_nonneg_proof"), page.locator("textarea#kl_nonneg_proof-comment")
        from nbgrader.api import Gradebook
        deadline = time.monotonic() + 60
        while True:  # typed again until saved: typed before the page's scripts listen, a change is lost
            for box, value in ((score, "4"), (note, comment)):
                box.fill(value)
                box.press("Tab")
            time.sleep(2)
            with Gradebook(hub.site.gradebook_url()) as gb:
                grade = gb.find_grade("kl_nonneg_proof", AID, AID, carol)
                saved = (grade.manual_score, gb.find_comment("kl_nonneg_proof", AID, AID, carol).manual_comment)
            if saved == (4, comment):
                break
            assert time.monotonic() < deadline, f"the manual grade was not saved: {saved}"
        page.locator("textarea#kl_nonneg_proof-comment").scroll_into_view_if_needed()
        shot("graded-by-hand")

        page.goto(f"{formgrader}/manage_submissions/{AID}")
        row = page.locator("#main-table tr", has_text=carol).first
        row.locator(".generate-feedback a").click()
        close_modal(page, "Successfully generated feedback")
        row.locator(".release-feedback a").click()
        close_modal(page, "Successfully released feedback")
        shot("feedback-released")
    except Exception:
        browser.screenshot(page, "hub-ta-failed")
        raise
    finally:
        context.close()

    context, page = log_in(chromium, hub, "carol")
    try:
        page.wait_for_url(f"**/user/{carol}/lab**")
        wait_for_fetch_feedback(page, hub, "carol", 60).click()
        page.get_by_text("(view feedback)").first.wait_for()
        browser.screenshot(page, "hub-ta-5-student-fetched", guide=True)
        text = feedback_text(page, hub, carol)
        assert comment in text, text[:3000]
        assert "Early feedback on your submission" not in text      # the TA's, not the service's
        assert "hidden tests ran here" in text and "BEGIN HIDDEN TESTS" not in text
    finally:
        context.close()
