"""A Jupyter server extension of every server on the class hub (``autograder.server.hubcaps``): a kernel
that is running a cell counts as activity of the server, printed output or not, so JupyterHub's
idle culler keeps a server whose training loop runs quietly for an hour.

jupyter_server counts a kernel's messages as activity, and any ``*_last_activity`` setting; this
sets ``dgm_busy_kernels_last_activity`` to now, every ``INTERVAL_S`` seconds, while a kernel is busy.
(Copied into the site by ``install_server_files``; it imports nothing of the course.)
"""
from __future__ import annotations

from datetime import datetime, timezone

INTERVAL_S = 10
SETTING = "dgm_busy_kernels_last_activity"


def _jupyter_server_extension_points():
    return [{"module": "dgm_hub_server"}]


def busy_kernels(kernel_manager) -> list[str]:
    """Kernels running a cell. One that died in a cell (killed for memory) never reports idle again:
    it counts only while its process lives."""
    return [k for k in kernel_manager.list_kernel_ids()
            if getattr(kernel_manager.get_kernel(k), "execution_state", None) == "busy"
            and _alive(kernel_manager.get_kernel(k))]


def _alive(kernel) -> bool:
    process = getattr(getattr(kernel, "provisioner", None), "process", None)
    return process is None or process.poll() is None


def _load_jupyter_server_extension(serverapp):
    from tornado.ioloop import PeriodicCallback

    settings = serverapp.web_app.settings

    def check():
        if busy_kernels(serverapp.kernel_manager):
            settings[SETTING] = datetime.now(timezone.utc)
    callback = PeriodicCallback(check, INTERVAL_S * 1000)
    callback.start()
    serverapp.log.info("dgm_hub_server: busy kernels count as activity (checked every %s s)", INTERVAL_S)
