"""Caps that the kernel enforces on a group of processes: memory (swap and tmpfs pages
included), CPU and the number of tasks, through Linux control groups, v1 or v2.

One ``Cgroup`` is one name (e.g. ``dgm/grade/<id>`` or ``dgm/users/<name>``) in every
controller the machine has: under cgroup v1 a folder in each of the ``memory``, ``cpu`` and
``pids`` hierarchies, under v2 one folder of the unified hierarchy with those controllers
enabled on the way down. Used by the grading sandbox (``autograder.grading.sandbox``) and by the hub's
spawner (``autograder.hub``). Only root (or whoever was delegated the base folder) can make
them; ``Cgroup.create`` says what it could not set up instead of raising.

Shared memory and tmpfs pages are charged to the memory cgroup of the process that touched
them, so a submission that fills ``/dev/shm`` is stopped by the same cap as one that allocates.
"""
from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "cpu", "pids")
PERIOD_US = 100_000


@dataclass(frozen=True)
class Caps:
    """What one group may use. ``None``: no cap of that kind.

    ``memory_mb``: RAM, swap and tmpfs pages together; ``cpus``: CPU time as a number of cores
    (a hard quota, e.g. 1.0); ``cpu_weight``: the group's share when CPUs are contended (100 is
    the default of every other process); ``tasks``: processes and threads.
    """
    memory_mb: int | None = None
    cpus: float | None = None
    cpu_weight: int | None = 100
    tasks: int | None = None


def version(root: Path = ROOT) -> int | None:
    """1 or 2 for the hierarchy mounted at ``root``, None if there is none to use."""
    if (root / "cgroup.controllers").exists():
        return 2
    if any((root / c).is_dir() for c in CONTROLLERS):
        return 1
    return None


class Cgroup:
    """The group ``name`` (a relative path such as ``dgm/grade/abc``) in every controller."""

    def __init__(self, name: str, root: Path = ROOT):
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"not a cgroup name: {name!r}")
        self.name, self.root, self.version = name, Path(root), version(Path(root))

    def folders(self) -> dict[str, Path]:
        """controller -> folder (v2: the same folder for all)."""
        if self.version == 2:
            return {c: self.root / self.name for c in CONTROLLERS}
        if self.version == 1:
            return {c: self.root / c / self.name for c in CONTROLLERS if (self.root / c).is_dir()}
        return {}

    # --- set up ----------------------------------------------------------------------------
    def create(self, caps: Caps) -> list[str]:
        """Make the group and write its caps; returns what could not be set (empty: all)."""
        problems: list[str] = []
        if self.version is None:
            return ["no cgroup hierarchy on this machine"]
        if self.version == 2:
            problems += self._enable_v2()
        for controller, folder in self.folders().items():
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                problems.append(f"{controller}: cannot make {folder} ({e.strerror})")
        missing = set(CONTROLLERS) - set(self.folders())
        problems += [f"{c}: controller not mounted" for c in sorted(missing)]
        for controller, settings in self._settings(caps).items():
            for file, value in settings:
                folder = self.folders().get(controller)
                if folder is None:
                    continue
                try:
                    (folder / file).write_text(value)
                except OSError as e:
                    if not file.startswith("memory.memsw") and file != "memory.swap.max":
                        problems.append(f"{controller}: cannot set {file} ({e.strerror})")
        return problems

    def _settings(self, caps: Caps) -> dict[str, list[tuple[str, str]]]:
        out: dict[str, list[tuple[str, str]]] = {"memory": [], "cpu": [], "pids": []}
        if self.version == 2:
            if caps.memory_mb is not None:
                out["memory"] += [("memory.max", str(caps.memory_mb << 20)), ("memory.swap.max", "0")]
            if caps.cpus is not None:
                out["cpu"].append(("cpu.max", f"{int(caps.cpus * PERIOD_US)} {PERIOD_US}"))
            if caps.cpu_weight is not None:
                out["cpu"].append(("cpu.weight", str(max(1, min(10000, caps.cpu_weight)))))
            if caps.tasks is not None:
                out["pids"].append(("pids.max", str(caps.tasks)))
            return out
        if caps.memory_mb is not None:  # memsw (RAM + swap) may only be set at or above the RAM cap
            out["memory"] += [("memory.limit_in_bytes", str(caps.memory_mb << 20)),
                              ("memory.memsw.limit_in_bytes", str(caps.memory_mb << 20))]
        if caps.cpus is not None:
            out["cpu"] += [("cpu.cfs_period_us", str(PERIOD_US)), ("cpu.cfs_quota_us", str(int(caps.cpus * PERIOD_US)))]
        if caps.cpu_weight is not None:
            out["cpu"].append(("cpu.shares", str(max(2, caps.cpu_weight * 1024 // 100))))
        if caps.tasks is not None:
            out["pids"].append(("pids.max", str(caps.tasks)))
        return out

    def _enable_v2(self) -> list[str]:
        """Turn the controllers on in every folder above the group (v2 delegates top-down)."""
        problems = []
        folder = self.root
        for part in Path(self.name).parts[:-1]:
            try:
                wanted = set(CONTROLLERS) & set((folder / "cgroup.controllers").read_text().split())
                (folder / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(wanted)))
            except OSError as e:
                problems.append(f"cannot enable controllers in {folder} ({e.strerror})")
            folder = folder / part
            folder.mkdir(exist_ok=True)
        try:
            wanted = set(CONTROLLERS) & set((folder / "cgroup.controllers").read_text().split())
            (folder / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(wanted)))
        except OSError as e:
            problems.append(f"cannot enable controllers in {folder} ({e.strerror})")
        return problems

    def add(self, pid: int | None = None) -> list[str]:
        """Move ``pid`` (default: this process) into the group; returns what failed."""
        pid = os.getpid() if pid is None else pid
        problems = []
        for folder in dict.fromkeys(self.folders().values()):
            try:
                (folder / "cgroup.procs").write_text(str(pid))
            except OSError as e:
                problems.append(f"cannot join {folder} ({e.strerror})")
        return problems

    # --- read ------------------------------------------------------------------------------
    def pids(self) -> list[int]:
        found: set[int] = set()
        for folder in dict.fromkeys(self.folders().values()):
            try:
                found.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
            except OSError:
                pass
        return sorted(found)

    def _count(self, controller: str, file: str, key: str) -> int:
        folder = self.folders().get(controller)
        try:
            words = (folder / file).read_text().split() if folder else []
        except OSError:
            return 0
        return int(words[words.index(key) + 1]) if key in words[:-1] else 0

    def tasks_capped(self) -> int:
        """How often a fork was refused for the task cap."""
        return self._count("pids", "pids.events", "max")

    def oom_kills(self) -> int:
        """Processes the kernel killed for the memory cap."""
        if self.version == 2:
            return self._count("memory", "memory.events", "oom_kill")
        return self._count("memory", "memory.oom_control", "oom_kill")

    def memory_peak_mb(self) -> float | None:
        folder = self.folders().get("memory")
        for file in ("memory.peak", "memory.max_usage_in_bytes"):
            try:
                return int((folder / file).read_text()) / 2**20 if folder else None
            except (OSError, ValueError):
                continue
        return None

    # --- end -------------------------------------------------------------------------------
    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL every process in the group until it is empty (or ``timeout`` seconds). The task
        cap drops to 0 first, so that nothing in the group (a fork bomb) can fork while it is emptied."""
        folder = self.folders().get("pids") or next(iter(self.folders().values()), None)
        if "pids" in self.folders():
            try:
                (self.folders()["pids"] / "pids.max").write_text("0")
            except OSError:
                pass
        if folder is not None and self.version == 2 and (folder / "cgroup.kill").exists():
            try:
                (folder / "cgroup.kill").write_text("1")
            except OSError:
                pass
        end = time.monotonic() + timeout
        while (pids := self.pids()) and time.monotonic() < end:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        """Kill what is left and remove the group's folders."""
        self.kill()
        for folder in dict.fromkeys(self.folders().values()):
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
