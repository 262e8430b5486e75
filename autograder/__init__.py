"""Grading side of the course: nbgrader configuration, release/grade/selfcheck tooling,
the loader of reference solutions and the trusted evaluators used by hidden tests."""

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
