"""The hub servers' extension (``autograder/server/hubserver/dgm_hub_server.py``) in a real Jupyter
server with real kernels: a silent running cell is activity; a kernel killed in a cell (as the
memory cap kills one) and restarted is idle, so the culler can stop a server left alone, and the
restarted kernel is busy again when it runs a cell."""
from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from datetime import datetime

import pytest
import requests

from autograder.server import hubcaps
from autograder.server.hubclient import Kernel, Person
from autograder.server.lab import free_port

KILLED_IN_A_CELL = "import os, time\ntime.sleep(1)\nos.kill(os.getpid(), 9)"
QUIET_CELL = "import time\ntime.sleep(40)"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A Jupyter server with the extension on (as the hub's ``install_server_files`` turns it on)."""
    tmp = tmp_path_factory.mktemp("server")
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": str(hubcaps.HERE), "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_DATA_DIR": str(tmp / "data"), "HOME": str(tmp)}
    log = open(tmp / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "jupyter_server", "--ip=127.0.0.1", f"--port={port}",
                             "--no-browser", f"--ServerApp.root_dir={tmp}", f"--IdentityProvider.token={token}",
                             "--ServerApp.jpserver_extensions={'dgm_hub_server': True}", "--allow-root"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    me = Person("me", f"http://127.0.0.1:{port}", token=token, prefix="/")
    deadline = time.monotonic() + 120
    while True:
        try:
            if me.get("/api/status", timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, (tmp / "server.log").read_text()[-3000:]
        time.sleep(0.3)
    assert "dgm_hub_server: busy kernels count as activity" in (tmp / "server.log").read_text()
    yield me
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()


def last_activity(me: Person) -> datetime:
    return datetime.fromisoformat(me.server("get", "api/status")["last_activity"].replace("Z", "+00:00"))


def wait_for(what, timeout: float, every: float = 0.5):
    deadline = time.monotonic() + timeout
    while not (value := what()):
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(every)
    return value


def test_a_silent_running_cell_is_activity(server: Person):
    kernel = server.kernel()
    try:
        kernel.execute(QUIET_CELL, wait=False)
        before = last_activity(server)
        wait_for(lambda: (last_activity(server) - before).total_seconds() >= 5, timeout=25)
    finally:
        kernel.shutdown()


def pid(kernel: Kernel) -> int:
    return int(kernel.run("import os\nprint(os.getpid())"))


def test_a_kernel_killed_in_its_cells_is_idle_once_restarted_and_busy_when_it_runs_again(server: Person):
    kernel: Kernel = server.kernel()
    try:
        pids = {pid(kernel)}
        for _ in range(3):  # as the memory hog's: jupyter_server alone left such a kernel "busy" for ever
            assert kernel.execute(KILLED_IN_A_CELL, wait=False) is None and kernel.state() == "busy"
            wait_for(lambda: kernel.state() != "busy", timeout=30)
        time.sleep(3)  # the new process's own start-up messages are activity
        settled = last_activity(server)
        time.sleep(12)  # more than the extension's interval (10 s): a "busy" kernel would move it by about 10 s
        assert (last_activity(server) - settled).total_seconds() < 5
        assert kernel.state() != "busy"
        pids.add(pid(kernel))
        assert len(pids) == 2, "the kernel was restarted"
        assert kernel.state() == "idle"
        kernel.execute(QUIET_CELL, wait=False)  # the new process is listened to
        wait_for(lambda: kernel.state() == "busy", timeout=10)
    finally:
        kernel.shutdown()
