"""The class on the hub under load, with locust (``bench/locustfile.py``), as root:

    python bench/class_load.py [--students 20] [--compare] [--no-hogs] [--cull-check] [--spawn-rate 1]

A scratch hub (``python -m autograder.hub setup --feedback``, its own PostgreSQL, loopback only,
free ports, the default caps unless ``--server-memory-mb`` etc. say otherwise) with an instructor
and N students, real Unix accounts from a roster; the instructor releases 00_kl_elbo through the
formgrader. Then locust runs N ``Student`` users: log in through the hub's login form, start the
server, fetch 00 through the Assignments API, run one cell in a kernel (``import torch``), save
the notebook answered with the reference solutions, submit, and wait for the grading service's
feedback. Meanwhile one more student runs a memory hog (``MemoryHog``: allocate until the cap
stops the kernel, again and again) and one a CPU-bound loop (``CpuLoop``: a cell that never ends,
with two more busy processes) unless ``--no-hogs``. ``--compare`` first runs N other students
without the hog and the loop, on the same hub, and prints the ratios of the p95s.

Each run ends with
``class: N students, login+spawn p95 X s, feedback p95 Y s, errors E, hub RSS Z MiB``
and a line on submissions (submitted, in the exchange, with feedback, lost). ``--cull-check``
(with ``--cull-idle S``) then waits for the idle culler: the students' idle servers must be stopped
and the busy CPU loop's kept. Everything it made (accounts, processes, cgroups, folders) is removed
at the end unless ``--keep``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nbformat  # noqa: E402

from autograder.server import hubcaps  # noqa: E402
from autograder.course import submissions  # noqa: E402
from autograder.course.config import COURSE_ID, REPO  # noqa: E402
from autograder.server.hubclient import Person  # noqa: E402
from autograder.server.scratch import ScratchHub  # noqa: E402

AID = "00_kl_elbo"
HERE = Path(__file__).resolve().parent
LOCUST = Path(sys.executable).parent / "locust"


def percentile(values: list[float], q: float) -> float:
    """Nearest rank; NaN for no values."""
    s = sorted(values)
    return s[max(0, math.ceil(q * len(s)) - 1)] if s else float("nan")


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Round:
    """One locust run and what it measured."""
    label: str
    students: list[str]
    lines: list[dict] = field(default_factory=list)
    hub_rss_mib: float = 0.0
    wall_s: float = 0.0

    def of(self, role: str) -> list[dict]:
        return [l for l in self.lines if l["role"] == role]

    @property
    def spawn(self) -> list[float]:
        return [l["login"] + l["spawn"] for l in self.of("student") if "spawn" in l]

    @property
    def feedback(self) -> list[float]:
        return [l["feedback"] for l in self.of("student") if "feedback" in l]

    @property
    def errors(self) -> list[str]:
        finished = {l["name"] for l in self.of("student")}
        return ([f"{l['name']}: {l['error']}" for l in self.lines if l.get("error")]
                + [f"{n}: never finished" for n in self.students if n not in finished])

    def summary(self) -> str:
        return (f"class: {len(self.students)} students, login+spawn p95 {percentile(self.spawn, 0.95):.1f} s, "
                f"feedback p95 {percentile(self.feedback, 0.95):.1f} s, errors {len(self.errors)}, "
                f"hub RSS {self.hub_rss_mib:.0f} MiB")


class ClassHub(ScratchHub):
    """The scratch hub (``autograder.server.scratch``) with an instructor and ``people`` as
    students, the grading service on, and the caps the command line gives."""

    def __init__(self, args, people: list[str]):
        caps = []
        for flag in ("server_memory_mb", "server_cpus", "server_tasks", "cull_idle", "cull_every", "activity_interval"):
            if getattr(args, flag) is not None:
                caps += [f"--{flag.replace('_', '-')}", str(getattr(args, flag))]
        super().__init__("dgml", {"instructor": "instructor", **{p: "student" for p in people}}, ["--feedback", *caps])

    @property
    def instructor(self) -> Person:
        return self.login("instructor")

    def release(self) -> dict:
        """The instructor releases 00 through the formgrader; the notebook answered with the
        reference solutions, as every student will save it."""
        for what in ("assign", "release"):
            self.instructor.formgrader("post", f"assignment/{AID}/{what}")
        released = self.site.exchange / COURSE_ID / "outbound" / AID / f"{AID}.ipynb"
        nb = submissions.answered(released, REPO / "notebooks" / AID / f"{AID}.ipynb", None)
        return json.loads(nbformat.writes(nb))

    def stop_servers(self, names: list[str]) -> None:
        for name in names:
            self.instructor.delete(f"/hub/api/users/{name}/server")
        deadline = time.monotonic() + 120
        while any(self.servers().get(n) for n in names) and time.monotonic() < deadline:
            time.sleep(1)


def run_round(h: ClassHub, label: str, students: list[str], hog: str | None, spinner: str | None,
              answered: dict, args) -> Round:
    r = Round(label, students)
    config = h.root / f"load-{label}.json"
    results = h.root / f"results-{label}.jsonl"
    people = {"student": [{"name": n, "password": h.passwords[n]} for n in students],
              "hog": [{"name": hog, "password": h.passwords[hog]}] if hog else [],
              "spinner": [{"name": spinner, "password": h.passwords[spinner]}] if spinner else []}
    config.write_text(json.dumps({"base": h.base, "aid": AID, "people": people, "answered": answered,
                                  "results": str(results), "spawn_timeout": 600, "feedback_timeout": 1800,
                                  "hog_pause": 5}))
    users = len(students) + (hog is not None) + (spinner is not None)
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            pid = h.hub_pid()
            if pid:
                r.hub_rss_mib = max(r.hub_rss_mib, rss_mib(pid))
            stop.wait(1)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    run = subprocess.run([str(LOCUST), "-f", str(HERE / "locustfile.py"), "--headless", "-u", str(users),
                          "-r", str(args.spawn_rate), "--run-time", f"{args.max_minutes}m", "--stop-timeout", "5",
                          "--only-summary", "--exit-code-on-error", "0", "--host", h.base],
                         env={**os.environ, "DGM_CLASS_LOAD": str(config)}, capture_output=True, text=True)
    r.wall_s = time.perf_counter() - started
    stop.set()
    watcher.join()
    if args.verbose or run.returncode != 0:
        print(run.stdout[-6000:], run.stderr[-6000:], sep="\n", file=sys.stderr)
    if results.exists():
        r.lines = [json.loads(l) for l in results.read_text().splitlines() if l.strip()]
    return r


def submissions_line(h: ClassHub, r: Round) -> tuple[str, dict]:
    inbound = h.site.exchange / COURSE_ID / "inbound"
    submitted = [l["name"] for l in r.of("student") if "submit" in l]
    arrived = {d.name.split("+")[0] for d in inbound.iterdir() if d.name.split("+")[0] in r.students}
    with_feedback = [l["name"] for l in r.of("student") if "feedback" in l]
    lost = sorted(set(submitted) - set(with_feedback))
    try:  # what the grading service made of them (its journal)
        journal = json.loads((h.site.course / "feedback-service" / "journal.json").read_text())["entries"]
    except (OSError, ValueError, KeyError):
        journal = {}
    mine = [e for e in journal.values() if e.get("student") in r.students]
    failed = sorted(f"{e['student']}: {str(e.get('error'))[:300]}" for e in mine if e.get("status") == "error")
    counts = {"submitted": len(submitted), "in_exchange": len(arrived), "feedback": len(with_feedback), "lost": lost,
              "graded": sum(e.get("status") == "graded" for e in mine), "grading_errors": failed}
    return (f"submissions: {len(submitted)} submitted, {len(arrived)} in the exchange, "
            f"{len(with_feedback)} with feedback, lost {len(lost)}; graded by the service "
            f"{counts['graded']}, grading errors {len(failed)}"), counts


def cull_check(h: ClassHub, idle: list[str], busy: str, timeout_s: float) -> dict:
    """Wait until every server of ``idle`` is stopped by the culler; ``busy`` must keep its own."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        servers = h.servers()
        if not any(servers.get(n) for n in idle):
            break
        time.sleep(2)
    servers = h.servers()
    return {"culled": [n for n in idle if not servers.get(n)], "kept": bool(servers.get(busy)),
            "seconds": time.monotonic() - started}


def machine() -> str:
    mem = hubcaps.machine_memory_mb() / 1024
    v = hubcaps.version()
    return f"machine: {os.cpu_count()} cores, {mem:.1f} GiB memory, cgroup v{v}"


def run(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--students", type=int, default=20)
    p.add_argument("--compare", action="store_true", help="a first run of other students without hog and loop")
    p.add_argument("--no-hogs", action="store_true", help="no memory hog and CPU loop")
    p.add_argument("--cull-check", action="store_true", help="then wait for the culler (set --cull-idle short)")
    p.add_argument("--spawn-rate", type=float, default=1.0, help="students starting per second")
    p.add_argument("--max-minutes", type=int, default=40)
    p.add_argument("--server-memory-mb", type=int)
    p.add_argument("--server-cpus", type=float)
    p.add_argument("--server-tasks", type=int)
    p.add_argument("--cull-idle", type=int)
    p.add_argument("--cull-every", type=int)
    p.add_argument("--activity-interval", type=int)
    p.add_argument("--keep", action="store_true", help="leave the hub running (Ctrl-C removes it)")
    p.add_argument("--verbose", action="store_true", help="print locust's statistics")
    args = p.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("run as root: the class's students are Unix accounts")
    if not LOCUST.exists():
        raise SystemExit(f"{LOCUST} not found: pip install -e '.[dev]'")
    n = args.students
    hogs = not args.no_hogs
    rounds = [("base", [f"a{i:03d}" for i in range(n)], False)] if args.compare else []
    rounds.append(("load", [f"s{i:03d}" for i in range(n)], hogs))
    people = [s for _, students, _ in rounds for s in students] + (["hog", "loop"] if hogs else [])
    h = ClassHub(args, people)
    result: dict = {"machine": machine()}
    try:
        start = time.perf_counter()
        h.start()
        answered = h.release()
        print(machine())
        print(f"hub: {len(people)} accounts and the hub up in {time.perf_counter() - start:.0f} s; caps per server: "
              f"{h.site.server_memory_mb} MiB, {h.site.server_cpus} cores, {h.site.server_tasks} tasks", flush=True)
        for label, students, with_hogs in rounds:
            names = [h.name(s) for s in students]
            r = run_round(h, label, names, h.name("hog") if with_hogs else None,
                          h.name("loop") if with_hogs else None, answered, args)
            line, counts = submissions_line(h, r)
            print(f"[{label}{' with memory hog and CPU loop' if with_hogs else ''}, {r.wall_s:.0f} s]")
            print(line)
            for error in r.errors + counts["grading_errors"]:
                print(f"  error: {error}")
            for extra in r.of("hog"):
                print(f"memory hog: {extra.get('kernels_killed', 0)} kernel(s) stopped by the cap"
                      + (f" ({extra['error']})" if extra.get("error") else ""))
            if with_hogs:
                groups = {n: hubcaps.Cgroup(hubcaps.server_group(h.prefix, n)).oom_kills() for n in names}
                counts["others_oom_killed"] = sorted(n for n, k in groups.items() if k)
                counts["hog_oom_kills"] = hubcaps.Cgroup(hubcaps.server_group(h.prefix, h.name("hog"))).oom_kills()
                print(f"OOM kills: hog {counts['hog_oom_kills']}, other students {sum(groups.values())}")
            print(r.summary(), flush=True)
            result[label] = {"round": r, **counts, "summary": r.summary()}
            if label == "base":
                h.stop_servers(names)
        if args.compare and "base" in result:
            b, l = result["base"]["round"], result["load"]["round"]
            ratios = (percentile(l.spawn, .95) / percentile(b.spawn, .95), percentile(l.feedback, .95) / percentile(b.feedback, .95))
            result["ratios"] = ratios
            print(f"with the hog and the loop: login+spawn p95 x{ratios[0]:.2f}, feedback p95 x{ratios[1]:.2f} "
                  f"(target: at most x2)")
        if args.cull_check:
            if not hogs:
                raise SystemExit("--cull-check needs the CPU loop (no --no-hogs)")
            last = result["load"]["round"]
            idle = [n for n in last.students] + [h.name("hog")]
            budget = 3 * (h.site.cull_idle_s + h.site.cull_every_s + 2 * h.site.activity_s) + 60
            c = cull_check(h, idle, h.name("loop"), budget)
            result["cull"] = c
            print(f"culler: {len(c['culled'])} of {len(idle)} idle servers stopped within {c['seconds']:.0f} s "
                  f"(idle timeout {h.site.cull_idle_s} s); the busy server (a cell running) "
                  f"{'kept' if c['kept'] else 'STOPPED'}")
        if args.keep:
            print(f"hub at {h.base}; passwords in {h.root / 'passwords.csv'}; Ctrl-C removes it", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return result
    finally:
        left = h.remove()
        if left:
            print(f"left behind: {'; '.join(left)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    run(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
