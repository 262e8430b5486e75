"""A Jupyter server extension of every server on the class hub (``autograder.server.hubcaps``): a kernel
that is running a cell counts as activity of the server, printed output or not, so JupyterHub's
idle culler keeps a server whose training loop runs quietly for an hour.

jupyter_server counts a kernel's messages as activity, and any ``*_last_activity`` setting; this
sets ``dgm_busy_kernels_last_activity`` to now, every ``INTERVAL_S`` seconds, while a kernel is busy.

A kernel that dies in a cell (killed for its memory) is restarted by jupyter_client's restarter,
which jupyter_server's kernel manager does not hear of: the kernel would read ``busy`` for ever (its
last status before it died), and after a restart on new ports nobody would listen to the new
process. On the ``restart`` event (``kernel_actions``, emitted for those restarts too) the new
process is watched anew, from ``starting``: a restarted kernel is busy only when it runs a cell,
and the culler can stop a server left alone.
(Copied into the site by ``install_server_files``; it imports nothing of the course.)
"""
from __future__ import annotations

from datetime import datetime, timezone

INTERVAL_S = 10
SETTING = "dgm_busy_kernels_last_activity"
KERNEL_ACTIONS = "https://events.jupyter.org/jupyter_server/kernel_actions/v1"


def _jupyter_server_extension_points():
    return [{"module": "dgm_hub_server"}]


def _alive(kernel) -> bool:
    process = getattr(getattr(kernel, "provisioner", None), "process", None)
    return process is None or process.poll() is None


class BusyKernels:
    """The kernels of ``kernel_manager`` (jupyter_server's ``MappingKernelManager``) running a cell."""

    def __init__(self, kernel_manager):
        self.km = kernel_manager

    def restarted(self, kernel_id: str) -> None:
        """After any restart: listen to the new process, whose state is ``starting`` until it
        reports (jupyter_server does this only for restarts asked through its API)."""
        if kernel_id in self.km:
            self.km.stop_watching_activity(kernel_id)
            self.km.start_watching_activity(kernel_id)
            self.km.get_kernel(kernel_id).execution_state = "starting"

    def busy(self) -> list[str]:
        """Kernel ids running a cell. One that died in a cell counts only while its process lives."""
        return [k for k in self.km.list_kernel_ids()
                if getattr(self.km.get_kernel(k), "execution_state", None) == "busy"
                and _alive(self.km.get_kernel(k))]


def _load_jupyter_server_extension(serverapp):
    from tornado.ioloop import PeriodicCallback

    settings = serverapp.web_app.settings
    kernels = BusyKernels(serverapp.kernel_manager)

    async def on_action(logger, schema_id, data):  # also emitted for the restarter's restarts
        if data.get("action") == "restart" and data.get("status") == "success" and data.get("kernel_id"):
            kernels.restarted(data["kernel_id"])
    serverapp.event_logger.add_listener(schema_id=KERNEL_ACTIONS, listener=on_action)

    def check():
        if kernels.busy():
            settings[SETTING] = datetime.now(timezone.utc)
    callback = PeriodicCallback(check, INTERVAL_S * 1000)
    callback.start()
    serverapp.log.info("dgm_hub_server: busy kernels count as activity (checked every %s s)", INTERVAL_S)
