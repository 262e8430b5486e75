"""What goes to students: the course file's calendar, the release policy, the student repository,
and that nothing released holds a distinctive line of any solution or hidden test."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import nbformat
import pytest

from autograder.__main__ import main
from autograder.course.bundle import write_bundle
from autograder.course.config import REPO
from autograder.course.course import Course
from autograder.feedback.leaks import calendar_secrets, open_leaks, public_text
from autograder.course.schedule import Dates, Schedule, ScheduleError

ASSIGNMENTS = sorted(p.name for p in (REPO / "notebooks").iterdir() if p.is_dir())
SCHEDULE = Schedule.load()


@pytest.fixture(scope="module")
def bundle(course, tmp_path_factory):
    return write_bundle(course, tmp_path_factory.mktemp("student-repo"), ASSIGNMENTS)


SOURCES = {aid: nbformat.read(REPO / "notebooks" / aid / f"{aid}.ipynb", as_version=4) for aid in ASSIGNMENTS}
RELEASE = {aid: SCHEDULE.assignments[aid].release for aid in ASSIGNMENTS}
CLOSES = {aid: SCHEDULE.closes(aid) for aid in ASSIGNMENTS}
# public for an assignment: only what was released no later than it, by the calendar
SECRETS = calendar_secrets(SOURCES, RELEASE)


def lines_of(path: Path) -> set[str]:
    """The stripped lines of a file; of a notebook, of its cells' sources and outputs."""
    if path.suffix != ".ipynb":
        return {line.strip() for line in path.read_text(errors="replace").splitlines()}
    nb = nbformat.read(path, as_version=4)
    text = [c.source for c in nb.cells] + [str(o) for c in nb.cells for o in c.get("outputs", [])]
    return {line.strip() for t in text for line in t.splitlines()}


def leaks_in(lines: set[str], skip: set[str] = frozenset()) -> dict[str, list[str]]:
    """``assignment -> its secret lines among lines`` (assignments in ``skip`` not checked)."""
    found = {}
    for aid in ASSIGNMENTS:
        if aid not in skip:
            hits = sorted(SECRETS[aid] & lines)
            if hits:
                found[aid] = hits
    return found


def test_no_student_file_holds_a_solution_or_hidden_test_line(bundle):
    files = [p for p in bundle.rglob("*") if p.is_file()]
    assert any(p.suffix == ".ipynb" for p in files) and any(p.parts[-2] == "helpers" for p in files)
    for path in files:
        text = lines_of(path)
        aid = path.parent.name if path.suffix == ".ipynb" else None
        # a later notebook may hold what answers an earlier one only once that one is closed
        allowed = ({a for a in ASSIGNMENTS if CLOSES[a] <= RELEASE[aid]} | set(SCHEDULE.assignments[aid].after)
                   if aid in SCHEDULE.assignments else set())
        assert not leaks_in(text, allowed), f"{path.relative_to(bundle)} gives away {leaks_in(text, allowed)}"


def test_no_notebook_released_while_another_is_open_holds_its_answers():
    """By the calendar: a notebook released before an assignment is closed (due, plus the days a
    late submission still earns points) holds no distinctive line of that assignment's solutions or
    hidden tests, where only what was released no later than the assignment counts as public."""
    assert not open_leaks(SOURCES, RELEASE, CLOSES)


# Given code that once answered an open assignment (before #26): 06's ConvVAE, released 02-12 while
# 04 could still earn points, held 04's reparameterised sample. The calendar-aware check must see it,
# where counting every notebook's public text as public did not.
GIVEN_06 = """class ConvVAE(nn.Module):
    def forward(self, x):
        mu, logvar = self.encoder(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        return self.decoder(z)
"""


def test_the_calendar_aware_check_sees_a_later_notebook_that_answers_an_open_one():
    later = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(GIVEN_06)])
    sources = {**SOURCES, "06_celeba_bonus": later}
    found = open_leaks(sources, RELEASE, CLOSES)
    assert found == {("04_conditional_generation", "06_celeba_bonus"): ["z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)"]}
    # the same notebook released once 04 is closed gives nothing away any more
    assert not open_leaks(sources, {**RELEASE, "06_celeba_bonus": CLOSES["04_conditional_generation"]}, CLOSES)
    # counting every notebook's text as public, the line was not secret at all
    everything = "\n".join(public_text(nb) for nb in sources.values())
    from autograder.feedback.leaks import secret_lines
    assert "z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)" not in secret_lines(SOURCES["04_conditional_generation"], everything)
    assert "z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)" in calendar_secrets(sources, RELEASE)["04_conditional_generation"]


def test_the_student_repository_holds_no_grading_code(bundle):
    names = {p.relative_to(bundle).parts[0] for p in bundle.iterdir()}
    assert {"assignments", "helpers", "data", "tests", "README.md", "Makefile", "pyproject.toml",
            "environment.yml", ".gitignore"} <= names
    assert not {"notebooks", "autograder", "course.toml", "nbgrader_config.py"} & names
    assert not list(bundle.rglob("*evaluate*")) and not list(bundle.rglob("gradebook*"))
    assert "BEGIN HIDDEN TESTS" not in "".join(p.read_text() for p in bundle.rglob("*.ipynb"))
    assert "make lab" in (bundle / "README.md").read_text()


def test_the_student_repositorys_own_tests_pass(bundle):
    env = {**os.environ, "PYTHONPATH": str(bundle), "DGM_DATA": str(REPO / "data")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=bundle,
                         env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert f"{len(ASSIGNMENTS) + 1} passed" in run.stdout


def test_release_hands_out_what_the_calendar_allows(tmp_path):
    first = SCHEDULE.assignments["00_kl_elbo"].release
    assert SCHEDULE.released(first) == ["00_kl_elbo"]
    assert SCHEDULE.released(datetime(2000, 1, 1)) == []
    with pytest.raises(ScheduleError, match="released on"):
        SCHEDULE.check_release("01_autoencoder", first)
    # notebook 03 gives away 02's bound: never out while a late 02 can still earn points
    assert SCHEDULE.closes("02_vae") > SCHEDULE.assignments["02_vae"].due
    early = Dates(SCHEDULE.assignments["02_vae"].due, SCHEDULE.closes("02_vae"), ("02_vae",))
    with pytest.raises(ScheduleError, match="02_vae is closed"):  # a calendar built in code, not loaded
        Schedule({**SCHEDULE.assignments, "03_latent_manifolds": early}).check_release("03_latent_manifolds", early.release)
    SCHEDULE.check_release("03_latent_manifolds", SCHEDULE.assignments["03_latent_manifolds"].release)


def test_notebook_03_holds_notebook_01s_models_so_it_waits_until_01_is_closed():
    """03 draws the manifolds of 01's autoencoder and VAE, whose classes it gives: 01's answers."""
    given = {line.strip() for line in public_text(SOURCES["03_latent_manifolds"]).splitlines()}
    assert len(SECRETS["01_autoencoder"] & given) >= 5, "03 gives 01's models"
    dates = SCHEDULE.assignments["03_latent_manifolds"]
    assert {"01_autoencoder", "02_vae"} <= set(dates.after) and dates.release >= CLOSES["01_autoencoder"]
    early = Dates(CLOSES["01_autoencoder"] - timedelta(days=1), dates.due, ("01_autoencoder",))
    with pytest.raises(ScheduleError, match="01_autoencoder is closed"):
        Schedule({**SCHEDULE.assignments, "03_latent_manifolds": early}).check_release("03_latent_manifolds", early.release)
    # without the rule, the released 03 would answer 01 for a late submission
    assert open_leaks(SOURCES, {**RELEASE, "03_latent_manifolds": early.release}, CLOSES).get(
        ("01_autoencoder", "03_latent_manifolds"))


@pytest.mark.parametrize("text, error", [
    ('[assignments.00_kl_elbo]\nrelease = "2027-01-08"\ndue = "2027-01-15 23:59"\n', "is not a date"),
    ('[assignments.99_nope]\nrelease = "2027-01-08 09:00"\ndue = "2027-01-15 23:59"\n', "unknown assignment"),
    ('[assignments.00_kl_elbo]\nrelease = "2027-02-08 09:00"\ndue = "2027-01-15 23:59"\n', "released after it is due"),
    ('[assignments.02_vae]\nrelease = "2027-01-08 09:00"\ndue = "2027-01-15 23:59"\n'
     '[assignments.03_latent_manifolds]\nrelease = "2027-01-10 09:00"\ndue = "2027-01-20 23:59"\nafter = ["02_vae"]\n',
     "must be released after 02_vae is closed"),
    ("late_penalty_per_day = 3\n", "at most 1"),
    ("[assignments\n", "not valid TOML"),
])
def test_a_bad_course_file_gets_a_clear_error(tmp_path, text, error):
    path = tmp_path / "course.toml"
    path.write_text(text)
    with pytest.raises(ScheduleError, match=error):
        Schedule.load(path)


def test_bundle_command_writes_the_released_assignments(tmp_path, capsys):
    Course(tmp_path / "course", notebooks=REPO / "notebooks")
    args = ["--course", str(tmp_path / "course"), "bundle", str(tmp_path / "repo")]
    assert main(args + ["00_kl_elbo"]) == 2 and "released on" in capsys.readouterr().err  # not yet
    assert main(args + ["--now", "2027-01-16 00:00"]) == 0  # 00 and 01 are out by then
    assert (tmp_path / "repo" / "assignments" / "01_autoencoder" / "01_autoencoder.ipynb").is_file()
    assert sorted(p.name for p in (tmp_path / "repo" / "assignments").iterdir()) == ["00_kl_elbo", "01_autoencoder"]
