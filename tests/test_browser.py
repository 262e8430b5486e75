"""What students see, in a real browser: JupyterLab on a student workspace (``autograder.lab``,
the code behind ``make lab``), driven by Playwright in Debian's Chromium, headless.

- the workspace: a rebuild adds new notebooks and never overwrites a student's file;
- nbgrader's Validate button: reference answers pass, the unanswered release fails;
- nbgrader's Assignments tab (students' config in the workspace): the workspace copy is listed
  as downloaded and Submit delivers it to the exchange;
- notebook 03's slider: Run All after a grading-mode run reuses the saved checkpoints, and
  moving the slider replaces the decoded image.

Screenshots go to ``$DGM_ARTIFACTS`` or ``test-artifacts/``. The browser tests are skipped,
with the reason, only where Chromium or Playwright is missing.
"""
from __future__ import annotations

import copy
import os
import time

import nbformat
import pytest
from nbclient import NotebookClient
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory

import browser
from autograder.server import lab
from autograder.course import submissions
from autograder.course.cells import grade_id

AID0, AID3 = "00_kl_elbo", "03_latent_manifolds"


def notebook(text: str):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(text)]
    return nb


def test_workspace_keeps_the_students_files_and_adds_new_notebooks(tmp_path):
    release, ws = tmp_path / "release", tmp_path / "workspace"
    (release / "00_a").mkdir(parents=True)
    nbformat.write(notebook("# YOUR CODE HERE"), release / "00_a" / "00_a.ipynb")
    assert lab.workspace(release, ws) == [ws / "00_a" / "00_a.ipynb"]
    nbformat.write(notebook("answer = 42  # the student's work"), ws / "00_a" / "00_a.ipynb")

    nbformat.write(notebook("# YOUR CODE HERE (fixed typo)"), release / "00_a" / "00_a.ipynb")  # re-released
    (release / "01_b" / "data").mkdir(parents=True)
    nbformat.write(notebook("# YOUR CODE HERE"), release / "01_b" / "01_b.ipynb")
    (release / "01_b" / "data" / "table.csv").write_text("x\n1\n")
    assert lab.main(["--release", str(release), "--workspace", str(ws), "--no-start"]) == 0  # make workspace

    assert nbformat.read(ws / "00_a" / "00_a.ipynb", as_version=4).cells[0].source.startswith("answer = 42")
    assert nbformat.read(ws / "01_b" / "01_b.ipynb", as_version=4).cells[0].source == "# YOUR CODE HERE"
    assert (ws / "01_b" / "data" / "table.csv").read_text() == "x\n1\n"
    assert (ws / "nbgrader_config.py").read_text() == lab.STUDENT_CONFIG.read_text()
    assert lab.workspace(release, ws) == [], "nothing new: nothing copied"


def test_workspace_without_a_release_says_what_to_do(tmp_path, capsys):
    assert lab.main(["--release", str(tmp_path / "release"), "--workspace", str(tmp_path / "ws"),
                     "--no-start"]) == 2
    assert "make release" in capsys.readouterr().err
    assert not (tmp_path / "ws").exists()


# --- in the browser ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium():
    with browser.launched() as b:
        yield b


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(browser.TIMEOUT_MS)
    yield pg
    context.close()


@pytest.fixture(scope="module")
def exchange(course, released, tmp_path_factory):
    """A scratch exchange (never ``$DGM_EXCHANGE``) to which the instructor released notebook 00
    (``nbgrader release_assignment``)."""
    released(AID0)
    config = copy.deepcopy(course.config)
    config.Exchange.root = str(tmp_path_factory.mktemp("exchange"))
    result = NbGraderAPI(CourseDirectory(config=config), config=config).release_assignment(AID0)
    assert result["success"], result.get("log")
    return config.Exchange.root


@pytest.fixture(scope="module")
def student(chromium, course, released, exchange, tmp_path_factory):
    """``(workspace, server)``: JupyterLab on a workspace built from the release, in which notebook
    00 is answered with the reference solutions (a student's file: the rebuild keeps it) and
    ``scratch/00_kl_elbo.ipynb`` is the unanswered release. Reuse of checkpoints is on."""
    ws, state = tmp_path_factory.mktemp("workspace"), tmp_path_factory.mktemp("lab")
    answered = submissions.answered(released(AID0), course.source(AID0))
    (ws / AID0).mkdir()
    nbformat.write(answered, ws / AID0 / f"{AID0}.ipynb")
    lab.workspace(course.root / "release", ws)
    (ws / "scratch").mkdir()
    (ws / "scratch" / f"{AID0}.ipynb").write_bytes(released(AID0).read_bytes())
    env = {"DGM_EXCHANGE": exchange, "DGM_REUSE_CHECKPOINTS": "1",
           "MPLBACKEND": None}  # conftest's Agg would hide the notebooks' inline figures
    with lab.running(ws, state, env=env) as server:
        yield ws, server


def test_validate_passes_with_the_reference_answers(page, student):
    _, server = student
    browser.open_notebook(page, server, f"{AID0}/{AID0}.ipynb")
    dialog = browser.validate(page)
    dialog.locator(".validation-success").wait_for()
    assert "Success! Your notebook passes all the tests." in dialog.inner_text()
    browser.screenshot(page, "validate-pass")


def test_validate_fails_without_answers(page, student):
    _, server = student
    browser.open_notebook(page, server, f"scratch/{AID0}.ipynb")
    dialog = browser.validate(page)
    dialog.locator(".validation-failed").wait_for()
    text = dialog.inner_text()
    assert "The following cell failed:" in text and "NotImplementedError" in text
    browser.screenshot(page, "validate-fail")


def test_assignments_tab_lists_the_workspace_copy_and_submits_it(page, student, exchange):
    ws, server = student
    page.goto(server.url("lab?reset"))
    browser.menu(page, "Nbgrader", "nbgrader:open-assignment-list")
    row = page.locator("#fetched_assignments_list .list_item", has_text=AID0)
    row.get_by_role("button", name="Submit").click()
    page.locator("#submitted_assignments_list .list_item", has_text=AID0).first.wait_for()
    browser.screenshot(page, "assignments-submitted")
    inbound = os.path.join(exchange, "dgm", "inbound")
    [sub] = [d for d in os.listdir(inbound) if d.split("+")[1] == AID0]
    handed_in = nbformat.read(os.path.join(inbound, sub, f"{AID0}.ipynb"), as_version=4)
    assert handed_in.cells == nbformat.read(ws / AID0 / f"{AID0}.ipynb", as_version=4).cells


def test_slider_reuses_checkpoints_and_redraws_the_decoded_image(page, student, course, released):
    """Contract with notebook 03: the cell ``slider-1d`` shows a FloatSlider (``dgm-slider-z``)
    above an Image (``dgm-decoded``); its trainings go through ``helpers.train.checkpointed``."""
    from playwright.sync_api import expect

    ws, server = student
    folder = ws / AID3
    released(AID3)
    added = lab.workspace(course.root / "release", ws)
    assert folder / f"{AID3}.ipynb" in added, "a rebuild adds the new notebook"
    nb = submissions.answered(released(AID3), course.source(AID3))  # the student's answers
    nbformat.write(nb, folder / f"{AID3}.ipynb")
    # One grading-mode run (short budgets) saves the checkpoints in results/, as a student's
    # earlier run would; then "after a kernel restart" Run All with reuse loads them.
    env = dict(os.environ, NBGRADER_EXECUTION="autograde", MPLBACKEND="Agg", OMP_NUM_THREADS="1")
    start = time.perf_counter()
    NotebookClient(nbformat.read(folder / f"{AID3}.ipynb", as_version=4), timeout=600,
                   kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute(env=env)
    graded_s = time.perf_counter() - start
    assert sorted(p.name for p in (folder / "results").glob("*.pt")), "the grading run saves checkpoints"

    panel = browser.open_notebook(page, server, f"{AID3}/{AID3}.ipynb")
    cells = panel.locator(".jp-Notebook .jp-Cell")
    expect(cells).to_have_count(len(nb.cells))
    cell = cells.nth([grade_id(c) for c in nb.cells].index("slider-1d"))
    start = time.perf_counter()
    browser.menu(page, "Run", "runmenu:run-all")
    image = cell.locator("img.dgm-decoded, .dgm-decoded img")
    image.wait_for(timeout=300_000)
    run_all_s = time.perf_counter() - start
    outputs = "".join(panel.locator(".jp-OutputArea").all_text_contents())
    for checkpoint in (folder / "results").glob("*.pt"):
        assert f"loaded saved weights from results/{checkpoint.name}" in outputs, "retrained, not reused"
    image.scroll_into_view_if_needed()
    browser.screenshot(page, "slider-before")

    before_src, before = image.get_attribute("src"), browser.pixels(image)
    assert any(before[i] for i in range(0, len(before), 4)), "a decoded digit, not a black square"
    readout = cell.locator(".dgm-slider-z .widget-readout")
    before_z = readout.inner_text()
    cell.locator(".dgm-slider-z .noUi-handle").focus()
    for _ in range(5):
        page.keyboard.press("ArrowRight")
    expect(readout).not_to_have_text(before_z)
    assert float(readout.inner_text()) > float(before_z)
    # The kernel decodes the new z and sends new PNG bytes: a new src, other pixels.
    expect(image).not_to_have_attribute("src", before_src, timeout=browser.TIMEOUT_MS)
    assert browser.pixels(image) != before, "the decoded image is redrawn"
    browser.screenshot(page, "slider-after")
    print(f"notebook 03: grading-mode run {graded_s:.1f} s; "
          f"Run All with reuse until the slider shows {run_all_s:.1f} s")
