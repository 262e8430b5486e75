"""The class on the hub, as locust users (driven by ``bench/class_load.py``, which sets up the hub,
the accounts and ``$DGM_CLASS_LOAD``, a JSON file naming them).

* ``Student``: logs in through the hub's login form, starts the server, fetches the assignment
  through the Assignments API, runs one cell in a kernel (``import torch``), puts the answered
  notebook, submits, then asks the Assignments API every 2 s until the grading service's feedback
  is there. Once; the kernel is left running, as students leave it.
* ``MemoryHog``: one student whose kernel allocates until the memory cap stops it, again and again.
* ``CpuLoop``: one student whose kernel keeps three CPU-bound loops running (a busy cell).

Each step is a locust request (``login``, ``spawn``, ``fetch``, ``cell``, ``submit``, ``feedback``)
and a line in the results file. The run ends when every student is done.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import gevent
from gevent.queue import Queue
from locust import User, events, task

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder.server.hubclient import HubClientError, KernelDied, Person  # noqa: E402

CONFIG = json.loads(Path(os.environ["DGM_CLASS_LOAD"]).read_text())
QUEUES = {role: Queue() for role in ("student", "hog", "spinner")}
for role, people in CONFIG["people"].items():
    for person in people:
        QUEUES[role].put(person)
STUDENTS = len(CONFIG["people"]["student"])
FINISHED: list[str] = []
CELL = "import torch\nprint(torch.ones(3).sum().item())"
HOG = "chunks = []\nwhile True:\n    chunks.append(b'\\1' * (64 << 20))\n"
SPIN = ("import subprocess, sys\n"
        "spinners = [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(2)]\n"
        "while True:\n    pass\n")


def record(line: dict) -> None:
    with open(CONFIG["results"], "a") as f:
        f.write(json.dumps(line) + "\n")


class Journey(User):
    abstract = True
    role = ""

    def on_start(self):
        self.me = QUEUES[self.role].get_nowait()
        self.person = Person(self.me["name"], CONFIG["base"])
        self.times: dict = {"name": self.me["name"], "role": self.role}

    def step(self, name: str, call):
        started = time.perf_counter()
        try:
            result = call()
        except Exception as e:
            seconds = time.perf_counter() - started
            events.request.fire(request_type="journey", name=name, response_time=seconds * 1000,
                                response_length=0, exception=e, context={})
            raise
        seconds = time.perf_counter() - started
        self.times[name] = round(seconds, 3)
        events.request.fire(request_type="journey", name=name, response_time=seconds * 1000,
                            response_length=0, exception=None, context={})
        return result

    def log_in_and_spawn(self):
        self.step("login", lambda: self.person.log_in(self.me["password"]))
        self.step("spawn", lambda: self.person.start_server(timeout=CONFIG["spawn_timeout"]))

    def once(self, body) -> None:
        """``body()`` once; its line (times, and the error if it raised) goes to the results; then
        this user idles (locust would run a task again)."""
        try:
            body()
            self.times["error"] = None
        except Exception as e:
            self.times["error"] = f"{type(e).__name__}: {str(e)[:500]}"
        record(self.times)
        self.finished()
        while True:
            gevent.sleep(3600)

    def finished(self) -> None:
        pass


class Student(Journey):
    role = "student"
    weight = 1

    @task
    def journey(self):
        self.once(self.submit_and_wait)

    def submit_and_wait(self):
        aid = CONFIG["aid"]
        self.log_in_and_spawn()
        self.step("fetch", lambda: self.person.fetch(aid))
        kernel = self.step("kernel", self.person.kernel)
        out = self.step("cell", lambda: kernel.run(CELL))
        if out.strip() != "3.0":
            raise HubClientError(f"the cell printed {out!r}")
        self.step("save", lambda: self.person.server(
            "put", f"api/contents/{aid}/{aid}.ipynb",
            json={"type": "notebook", "format": "json", "content": CONFIG["answered"]}))
        self.step("submit", lambda: self.person.submit(aid))
        self.step("feedback", self.wait_for_feedback)

    def finished(self) -> None:
        FINISHED.append(self.me["name"])
        if len(FINISHED) == STUDENTS:
            gevent.spawn_later(0.5, self.environment.runner.quit)

    def wait_for_feedback(self):
        deadline = time.monotonic() + CONFIG["feedback_timeout"]
        while not self.person.has_feedback(CONFIG["aid"]):
            if time.monotonic() > deadline:
                raise HubClientError(f"no feedback after {CONFIG['feedback_timeout']} s")
            gevent.sleep(2)


class MemoryHog(Journey):
    role = "hog"
    abstract = not CONFIG["people"]["hog"]  # fixed_count 0 would make it a weighted class
    fixed_count = 1

    @task
    def hog(self):
        self.once(self.allocate_until_the_class_is_done)

    def allocate_until_the_class_is_done(self):
        self.times["kernels_killed"] = 0
        self.log_in_and_spawn()
        kernel = self.person.kernel()
        while len(FINISHED) < STUDENTS:
            try:
                kernel.execute(HOG, timeout=600)
            except KernelDied:
                self.times["kernels_killed"] += 1
            try:
                kernel.wait_restarted()
            except HubClientError:  # the server gave up restarting it (5 deaths in a row): a new one
                kernel = self.person.kernel()
            gevent.sleep(CONFIG["hog_pause"])


class CpuLoop(Journey):
    role = "spinner"
    abstract = not CONFIG["people"]["spinner"]  # fixed_count 0 would make it a weighted class
    fixed_count = 1

    @task
    def spin(self):
        self.once(self.start_a_cell_that_never_ends)

    def start_a_cell_that_never_ends(self):
        self.log_in_and_spawn()
        self.person.kernel().execute(SPIN, wait=False)  # runs until the bench ends (the culler must keep it)
