"""Test verdicts that a submission cannot fake.

nbgrader runs a student's cells and the test cells after them in one IPython kernel and gives
a test cell its points when its outputs hold no error. Student code can change how every
later cell is transformed (input and AST transformers), run and reported (exception handlers,
the traceback display, tracing hooks, the kernel's message handlers) and observed (event
callbacks), and it can patch the libraries the tests call. The guard takes the verdict out of
its reach in three layers:

1. **The kernel** (``autograder.grading.kernel``, started by the grading kernelspec) takes a snapshot
   of its machinery and of the libraries tests use before any student code runs, and arms a
   Python audit hook, which cannot be removed: no ``sys.settrace``/``setprofile``, no other audit
   hook, no ``gc`` walks or ``ctypes`` (the ways to find and poke at the snapshot), no rewriting
   of functions' code or of the guard's own defaults. Before and after every message it puts
   back the kernel's objects, handler tables, classes, module globals, ``sys`` hooks, signal
   handlers and timers, so what a cell changed, or what ran between two messages, does not
   reach the next one. The snapshot sits in the default arguments of the function that the
   message streams have held since the kernel started.
2. **Test cells bypass IPython.** The executor below prefixes each test cell with
   ``kernel.MARK`` when it sends it (the notebook keeps its source). The kernel then restores
   everything, libraries included, and runs the cell itself: compiled under a file name that
   is never in ``linecache`` or the history, the hidden part in a copy of the namespace, and
   the verdict is its own ``try`` around ``exec``. While a test's code is on the stack, student
   code it calls cannot get hold of a frame (and so of the test's code or locals).
3. **The executor** (``GuardedExecute``, outside the kernel) gives a test cell its points only if
   the reply carries the kernel's verdict for it, and fails every later test once a student
   cell left a thread running or came back without the kernel's stamp (its code did not run).
   It also caps what a cell may print (``max_cell_output``, ``max_notebook_output``).

Hidden tests never reach feedback: ``autograder.feedback.redact`` drops any output, of any cell, that
quotes a line of them. What stays out of reach of this guard: code that runs between two
messages (a finalizer, an event-loop callback) and rewires the objects that carry a message
*to* that function, before it runs; the executor's stamp check and thread taint catch what
they can of it, and ``autograder.grading.sandbox`` contains what such code can do beyond its own grade.
"""
from __future__ import annotations

import json
import os
import sys

import nbformat

from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec
from jupyter_core.utils import run_sync
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Integer, Unicode

from . import sandbox
from ..course.cells import is_test_cell
from .cgroups import Caps
from .kernel import MARK, STAMP

UNGUARDED = "the grader could not run this test in a clean kernel"


class GradingKernelManager(AsyncKernelManager):
    """Starts ``autograder.grading.kernel`` through ``autograder.grading.sandbox``, whatever the notebook's kernel:
    its messages go through Unix sockets in a folder made for it (it has no network), under the
    caps of its cgroup. Refuses to start one without the sandbox unless that was asked for."""

    cgroup = Unicode("", help="the cgroup to run the kernel in (made with the caps if missing; "
                              "default: one of its own, removed with the kernel)").tag(config=True)
    memory_mb = Integer(6144, help="memory cap of the kernel and its children, tmpfs included").tag(config=True)
    threads = Integer(1, help="CPU cores the kernel may use (a quota) and its torch threads").tag(config=True)

    @property
    def kernel_spec(self) -> KernelSpec:
        return KernelSpec(argv=[sys.executable, "-I", "-m", "autograder.grading.sandbox", "{connection_file}"],
                          display_name="Python 3 (grading)", language="python",
                          interrupt_mode="message")  # a signal would not cross into the sandbox

    async def _async_pre_start_kernel(self, **kw):
        caps = Caps(memory_mb=self.memory_mb, cpus=self.threads, tasks=sandbox.NPROC)
        self._sandbox = sandbox.prepare(self.cgroup or None, caps)
        self.transport, self.ip = "ipc", str(self._sandbox.runtime / "kernel")
        self.connection_file = str(self._sandbox.runtime / "kernel.json")
        kw["env"] = {**(kw.get("env") or os.environ),
                     **self._sandbox.env(os.environ.get("DGM_DATA"), self.threads)}
        return await super()._async_pre_start_kernel(**kw)

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart)
        if not restart and getattr(self, "_sandbox", None) is not None:
            self._sandbox.close()
            self._sandbox = None


class GuardedExecute(Execute):
    """nbgrader's ``Execute`` that sends test cells to the grading kernel's own runner,
    takes their verdict from it, and caps cell output."""

    max_cell_output = Integer(4 << 20, help="bytes of output kept per cell").tag(config=True)
    max_notebook_output = Integer(16 << 20, help="bytes of output kept per notebook").tag(config=True)

    def __init__(self, **kwargs):
        kwargs.setdefault("kernel_manager_class", GradingKernelManager)
        super().__init__(**kwargs)

    executor = Unicode(os.environ.get("DGM_EXECUTOR", ""), help="the socket of the root executor "
                       "(autograder.executor) that runs notebooks in the sandbox for accounts that cannot "
                       "(default: $DGM_EXECUTOR)").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        if km is None and self.executor and not sandbox.available():
            return self._remote(nb), resources
        self._taint, self._sizes, self._total = None, {}, 0
        return super().preprocess(nb, resources, km)

    def _remote(self, nb):
        """Have the root executor run ``nb`` in the sandbox; the executed notebook replaces it."""
        from .executor import execute_remote
        done = nbformat.from_dict(execute_remote(self.executor, nb, timeout=None))
        nb.cells, nb.metadata = done.cells, done.metadata
        return nb

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if not is_test_cell(cell):
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        source = cell.source
        cell.source = MARK + source
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history=False)
        finally:
            cell.source = source

    execute_cell = run_sync(async_execute_cell)  # nbclient binds the base class's coroutine otherwise

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        cell, content = kwargs["cell"], kwargs["execute_reply"]["content"]
        verdict = content.get(STAMP)
        if not is_test_cell(cell):
            if content == {**self.error_on_timeout, "status": "error"}:
                return  # nbclient's own reply to a cell it interrupted after its timeout
            if not isinstance(verdict, dict) or not verdict.get("cell"):
                self._taint = self._taint or "a cell's code took over the kernel"
            elif verdict.get("threads"):
                self._taint = self._taint or f"a cell left threads running: {verdict['threads']}"
            return
        if self._taint or not isinstance(verdict, dict) or verdict.get("test") is not True:
            if not any(o.output_type == "error" for o in cell.outputs):
                reason = f"{UNGUARDED}: {self._taint}" if self._taint else UNGUARDED
                cell.outputs.append(NotebookNode(output_type="error", ename="GradingError", evalue=reason,
                                                 traceback=[f"GradingError: {reason}"]))

    def output(self, outs, msg, display_id, cell_index):
        out = super().output(outs, msg, display_id, cell_index)
        if out is None:
            return None
        size = len(out.get("text", "")) if out.output_type == "stream" else len(json.dumps(out.get("data", {})))
        used = self._sizes.get(cell_index, 0)
        room = min(self.max_cell_output - used, self.max_notebook_output - self._total)
        if size <= room:
            self._sizes[cell_index] = used + size
            self._total += size
            return out
        if outs and outs[-1] is out:
            outs.pop()
        if used > self.max_cell_output:  # already cut
            return None
        if out.output_type == "stream" and room > 0:
            outs.append(NotebookNode(output_type="stream", name=out.name, text=out.text[:room]))
            self._total += room
        outs.append(NotebookNode(output_type="stream", name="stdout", text=(  # stderr would fail a test cell
            f"\n[output cut: the grader keeps {self.max_cell_output >> 20} MiB per cell and "
            f"{self.max_notebook_output >> 20} MiB per notebook]\n")))
        self._sizes[cell_index] = self.max_cell_output + 1
        return None
