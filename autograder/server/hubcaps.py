"""What keeps the class hub's servers apart and within bounds (``autograder.hub``):

* **Caps, enforced by the kernel** (``CappedSpawner``): each person's JupyterLab and everything it
  starts (kernels, terminals, their children) run in a control group of their own,
  ``<prefix>/users/<name>`` (``autograder.grading.cgroups``, cgroup v1 or v2), with a memory cap that
  counts swap and tmpfs (``/dev/shm``) pages, a CPU quota and share, and a cap on processes and
  threads. The server joins its group in the child process, as root, before it drops to the
  person's account, so nothing it starts escapes. All servers together sit in
  ``<prefix>/users``, capped at the machine's memory minus a reserve for the hub, PostgreSQL and
  grading: however many servers are open, the kernel's OOM killer picks a student's process,
  never the hub. Over the cap, the biggest process of the group (the kernel that allocated) is
  killed; JupyterLab says "The kernel ... appears to have died. It will restart automatically",
  and the next cell run in any of that person's kernels prints ``dgm_memory_note``'s note: why,
  and what to do.
* **Activity** (``dgm_hub_server``, a server extension of every server): a kernel that is running
  a cell counts as activity, even when it prints nothing, so the idle culler keeps it.
* **Idle culling** (``culler_service``): ``jupyterhub-idle-culler`` as a hub service stops
  servers idle longer than the site's ``cull_idle_s``.

The files students' servers and kernels load are copied into ``<root>/jupyter/servers`` by
``install_server_files`` (this package is closed to students: ``hub.lock_repo``).
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Float, Integer, Unicode

from ..grading.cgroups import Caps, Cgroup, version

HERE = Path(__file__).resolve().parent / "hubserver"
CULLER = "idle-culler"
MB = 2**20


def users_group(prefix: str) -> str:
    return f"{prefix}/users"


def server_group(prefix: str, name: str) -> str:
    return f"{prefix}/users/{name}"


def machine_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def users_memory_mb(reserve_mb: int) -> int:
    """What all servers together may use: the machine's memory less ``reserve_mb`` (at least 1 GiB)."""
    return max(1024, machine_memory_mb() - reserve_mb)


class CappedSpawner(LocalProcessSpawner):
    """``LocalProcessSpawner`` whose server (and all it starts) runs in its own control group."""

    cgroup_prefix = Unicode("dgm", config=True, help="the groups are <prefix>/users/<name>")
    memory_mb = Integer(2048, config=True, help="RAM + swap + tmpfs of one server and all it starts; 0: none")
    cpus = Float(1.0, config=True, help="CPU quota of one server, in cores; 0: none")
    cpu_weight = Integer(100, config=True, help="CPU share when the CPUs are contended (100: as any other)")
    tasks = Integer(512, config=True, help="processes and threads of one server; 0: none")
    reserve_mb = Integer(4096, config=True, help="memory kept from all servers together (hub, database, grading)")
    server_files = Unicode("", config=True, help="install_server_files' folder: extension, kernel, notes")
    activity_interval = Integer(60, config=True, help="seconds between a server's activity reports")

    @property
    def cgroup(self) -> Cgroup:
        return Cgroup(server_group(self.cgroup_prefix, self.user.name))

    def caps(self) -> Caps:
        return Caps(memory_mb=self.memory_mb or None, cpus=self.cpus or None,
                    cpu_weight=self.cpu_weight, tasks=self.tasks or None)

    def get_env(self):
        env = super().get_env()
        env["JUPYTERHUB_ACTIVITY_INTERVAL"] = str(self.activity_interval)
        if self.memory_mb:
            env["DGM_SERVER_MEMORY_MB"] = str(self.memory_mb)
        if self.server_files:
            files = Path(self.server_files)
            env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
                filter(None, [env.get("JUPYTER_CONFIG_PATH", ""), str(files / "config")]))
            env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(files / "share"), env.get("JUPYTER_PATH", "")]))
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(files / "lib"), env.get("PYTHONPATH", "")]))
        return env

    async def start(self):
        problems = await asyncio.get_running_loop().run_in_executor(None, self.make_group)
        if problems:
            self.log.error("caps for %s: %s", self.user.name, "; ".join(problems))
            raise RuntimeError(f"the server's caps could not be set ({'; '.join(problems)}); "
                               "ask the course's administrator")
        return await super().start()

    def make_group(self) -> list[str]:
        """The person's group with its caps, emptied of anything a previous server left, and its
        parent capped at the machine's memory less the reserve."""
        parent = Cgroup(users_group(self.cgroup_prefix))
        problems = parent.create(Caps(memory_mb=users_memory_mb(self.reserve_mb), cpu_weight=None))
        group = self.cgroup
        group.kill(timeout=5)
        return problems + group.create(self.caps())

    def make_preexec_fn(self, name):
        drop = super().make_preexec_fn(name)
        group = self.cgroup

        def preexec():  # in the child, as root: join the group, then become the person
            problems = group.add()
            if problems:
                raise OSError("; ".join(problems))
            drop()
        return preexec

    async def stop(self, now=False):
        try:
            await super().stop(now=now)
        finally:  # kernels and whatever else the server started, even in sessions of their own
            await asyncio.get_running_loop().run_in_executor(None, self.cgroup.remove)


def culler_service(python: str, timeout_s: int, every_s: int, environment: dict | None = None
                   ) -> tuple[dict, dict]:
    """``jupyterhub-idle-culler`` as a hub service (``c.JupyterHub.services``) and its role
    (``c.JupyterHub.load_roles``): it stops servers idle ``timeout_s`` seconds (checked every
    ``every_s``), admins' and staff's included; it never deletes users. It runs as ``nobody``."""
    service = {"name": CULLER, "user": "nobody", "cwd": "/", "environment": dict(environment or {}),
               "command": [python, "-m", "jupyterhub_idle_culler", f"--timeout={timeout_s}",
                           f"--cull-every={every_s}", "--concurrency=10", "--cull-users=False"]}
    role = {"name": CULLER, "description": "stop idle servers",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": [CULLER]}
    return service, role


def install_server_files(folder: Path, python: str) -> Path:
    """Copy into ``folder`` what every server and kernel of the hub loads, readable by all:

    * ``lib/dgm_hub_server.py``: the server extension (busy kernels are activity);
    * ``lib/dgm_memory_note.py``: the IPython extension that explains a kernel stopped for memory;
    * ``config/jupyter_server_config.d/dgm_hub.json``: turns the server extension on;
    * ``share/kernels/python3/``: the ``python3`` kernel, which loads the note.
    """
    lib, conf, kernel = folder / "lib", folder / "config" / "jupyter_server_config.d", folder / "share" / "kernels" / "python3"
    for path in (lib, conf, kernel):
        path.mkdir(parents=True, exist_ok=True)
    for name in ("dgm_hub_server.py", "dgm_memory_note.py"):
        shutil.copyfile(HERE / name, lib / name)
    (conf / "dgm_hub.json").write_text(json.dumps({"ServerApp": {"jpserver_extensions": {"dgm_hub_server": True}}},
                                                 indent=1) + "\n")
    (kernel / "ipython_kernel_config.py").write_text(
        '"""The hub\'s python3 kernel (autograder/hubcaps.py)."""\n'
        'c = get_config()  # noqa: F821\nc.InteractiveShellApp.extensions = ["dgm_memory_note"]\n')
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 f"--config={kernel / 'ipython_kernel_config.py'}"],
        "display_name": "Python 3 (ipykernel)", "language": "python", "metadata": {"debugger": True}}, indent=1) + "\n")
    for path in (folder, *folder.rglob("*")):
        os.chown(path, 0, 0)
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    return folder


def remove_groups(prefix: str) -> None:
    """Every server group of the site and their parents (``up`` at exit, tests)."""
    if version() is None:
        return
    users = Cgroup(users_group(prefix))
    for folder in set(users.folders().values()):
        if folder.is_dir():
            for child in sorted(p for p in folder.iterdir() if p.is_dir()):
                Cgroup(f"{users.name}/{child.name}").remove()
    users.remove()
    for folder in set(Cgroup(prefix).folders().values()):  # the site's own folder, if nothing else uses it
        try:
            folder.rmdir()
        except OSError:
            pass


if __name__ == "__main__":  # pragma: no cover
    print(__doc__, file=sys.stderr)
