"""The staff's side of the course (never shipped to students), in rooms by role, in the order a
submission passes through them (docs/contributors.md has the diagram and the rules):

- ``inbound/``     taking in what students hand in (intake, nbgrader's collect)
- ``course/``      the nbgrader course: settings, calendar, cells, release/autograde, solutions
- ``grading/``     grading in isolation: workers, sandbox, the grading kernel and its guard
- ``evaluators/``  trusted evaluation that hidden tests call inside the grading kernel
- ``feedback/``    feedback without hidden tests; students' HTML made harmless; leaks
- ``reports/``     the staff's views after grading: report, similarity, LMS export
- ``service/``     feedback minutes after submitting (``python -m autograder serve``)
- ``server/``      serving a class: JupyterHub, the student's JupyterLab

``__main__`` is the command line; ``hub.py``, ``lab.py`` and ``executor.py`` only keep
``python -m autograder.hub``/``.lab``/``.executor`` working. tests/test_layering.py checks which
room may import which."""

import os as _os
import sys as _sys

# nbgrader runs the `alembic` script by name (to check the gradebook's schema): make the
# scripts installed beside this interpreter findable when the virtualenv is not activated.
_bin = _os.path.dirname(_sys.executable)
if _bin not in _os.environ.get("PATH", "").split(_os.pathsep):
    _os.environ["PATH"] = _bin + _os.pathsep + _os.environ.get("PATH", "")

import warnings as _warnings

# nbgrader 0.9.6 with SQLAlchemy 2.x warns on every new submission; the data it writes is right.
_warnings.filterwarnings("ignore", message=r"Object of type <Submitted\w+> not in session")
