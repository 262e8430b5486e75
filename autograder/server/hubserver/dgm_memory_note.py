"""An IPython extension of every kernel on the class hub (``autograder.server.hubcaps``): after the
kernel's server reached its memory cap and the kernel OOM killer stopped a kernel, the next cell
run in any kernel of that server starts with a note that says so, and what to do.

JupyterLab itself only says "The kernel for ... appears to have died. It will restart
automatically"; a kernel killed for memory cannot explain itself, so its successor does. The count
of the server group's OOM kills is read from the control group the kernel runs in (cgroup v1
``memory.oom_control``, v2 ``memory.events``); what this person has already been told is kept in
``~/.local/share/dgm/memory_note.json``. (Copied into the site by ``install_server_files``.)
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
STATE = Path.home() / ".local" / "share" / "dgm" / "memory_note.json"
NOTE = ("\N{WARNING SIGN} A kernel of yours was stopped: your server reached its memory limit "
        "({limit}). Everything you run on the hub counts towards it: all your kernels, terminals and "
        "files in /dev/shm. The variables that kernel held are gone; run its notebook again from the top. "
        "To stay under the limit: shut down kernels you no longer use (Kernel > Shut Down All Kernels), "
        "free large tensors (del x), and use smaller batches or fewer samples.\n")


def memory_group(proc_cgroup: str = "/proc/self/cgroup", root: Path = CGROUP_ROOT) -> Path | None:
    """The folder of this process's memory cgroup (v1 or v2), or None."""
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return root / "memory" / path.lstrip("/")
    for line in lines:
        if line.startswith("0::"):
            return root / line[3:].lstrip("/")
    return None


def _word(path: Path, key: str) -> int | None:
    try:
        words = path.read_text().split()
    except OSError:
        return None
    return int(words[words.index(key) + 1]) if key in words[:-1] else None


def oom_kills(group: Path) -> int | None:
    found = _word(group / "memory.oom_control", "oom_kill")
    return found if found is not None else _word(group / "memory.events", "oom_kill")


def limit(group: Path) -> str:
    for name in ("memory.limit_in_bytes", "memory.max"):
        try:
            value = (group / name).read_text().strip()
        except OSError:
            continue
        if value.isdigit() and int(value) < 2**60:
            return f"{int(value) / 2**20:.0f} MiB"
    return os.environ.get("DGM_SERVER_MEMORY_MB", "?") + " MiB"


def pending_note(group: Path | None, state: Path = STATE) -> str | None:
    """The note if the group has OOM kills this person was not told about (and remember them)."""
    if group is None:
        return None
    kills = oom_kills(group)
    if kills is None:
        return None
    try:
        identity = f"{group}:{group.stat().st_ino}:{group.stat().st_ctime_ns}"  # a new server: a new group
    except OSError:
        return None
    try:
        seen = json.loads(state.read_text())
    except (OSError, ValueError):
        seen = {}
    told = seen.get("told", 0) if seen.get("group") == identity else 0
    if kills <= told:
        return None
    try:
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"group": identity, "told": kills}))
    except OSError:
        pass
    return NOTE.format(limit=limit(group))


def load_ipython_extension(ip):
    group = memory_group()

    def before_cell(*args):
        note = pending_note(group)
        if note:
            print(note, file=sys.stderr, flush=True)
    ip.events.register("pre_run_cell", before_cell)
