"""Driving JupyterLab in Debian's Chromium with Playwright (sync API), for tests/test_browser.py.

Playwright's own browser download is not used: ``launch`` starts ``/usr/bin/chromium``
(``$DGM_CHROMIUM`` to override), headless. Screenshots go to ``$DGM_ARTIFACTS`` or
``test-artifacts/`` at the repository root; those meant for the guides (``screenshot(..., guide=True)``)
also go to ``$DGM_SCREENSHOTS`` when it is set (``DGM_SCREENSHOTS=docs``: the committed ones), so
an ordinary ``make test`` leaves ``docs/`` as it is.
"""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

from autograder.course.config import REPO
from autograder.server.lab import Lab

CHROMIUM = Path(os.environ.get("DGM_CHROMIUM", "/usr/bin/chromium"))
# Headless as root, no network of its own, no first-run chores.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 180_000  # a cold kernel (or Validate, which runs the whole notebook) on a busy machine
# The notebook on screen (JupyterLab keeps other opened notebooks in the page, hidden).
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"


def unavailable() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.is_file():
        return (f"Chromium not found at {CHROMIUM}: install it with `apt-get install chromium` "
                "(`make test` does so when run as root)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        return f"playwright cannot be imported ({e}): pip install -e '.[dev]'"
    return None


@contextmanager
def launched():
    """Headless Chromium (Playwright's ``Browser``), or the test is skipped with the reason."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def artifacts() -> Path:
    """The folder for screenshots (created)."""
    folder = Path(os.environ.get("DGM_ARTIFACTS") or REPO / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def screenshot(page, name: str, guide: bool = False) -> Path:
    """``name``.png of what ``page`` shows, in ``artifacts()``; with ``guide``, copied to
    ``$DGM_SCREENSHOTS`` (relative to the repository) when that is set."""
    path = artifacts() / f"{name}.png"
    page.screenshot(path=str(path))
    if guide and os.environ.get("DGM_SCREENSHOTS"):
        folder = REPO / os.environ["DGM_SCREENSHOTS"]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / path.name)
    return path


def open_notebook(page, lab: Lab, path: str):
    """Open ``path`` (relative to the server's root) in a fresh layout and wait until its kernel
    is idle; returns the notebook panel."""
    page.goto(lab.url(f"lab/tree/{path}?reset"))
    panel = page.locator(PANEL)
    panel.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=TIMEOUT_MS)
    return panel


def menu(page, name: str, command: str) -> None:
    """Click the main menu ``name``, then its item running ``command`` (e.g. ``runmenu:run-all``)."""
    page.locator(".lm-MenuBar-item", has_text=name).click()
    page.locator(f"li.lm-Menu-item[data-command='{command}']").click()


def validate(page):
    """Click the notebook toolbar's Validate button (nbgrader); returns the results dialog."""
    page.locator(f"{PANEL} .jp-NotebookPanel-toolbar .validate-button").click()
    dialog = page.locator(".jp-Dialog", has_text="Validation Results")
    dialog.wait_for(timeout=TIMEOUT_MS)
    return dialog


# The pixels an <img> shows (RGBA, row-major), read through a canvas once it has loaded.
PIXELS_JS = """async img => {
  if (!img.complete || !img.naturalWidth)
    await new Promise(done => img.addEventListener("load", done, {once: true}));
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  return Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data);
}"""


def pixels(image) -> bytes:
    """What the ``<img>`` located by ``image`` shows, as RGBA bytes. Read from the element, not
    its URL: a widget image revokes the ``blob:`` URL of the previous picture on every update."""
    return bytes(image.evaluate(PIXELS_JS))
