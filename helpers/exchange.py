"""The students' side of the class server's exchange (``python -m autograder.hub``): nbgrader's
submit, with the submission's folder closed to other students.

nbgrader leaves a submission's folder mode 0777 (its files 0644) in the exchange's inbound and
hides it behind an unguessable name only. ``PrivateSubmit`` makes the folder 0770: it belongs to
the student and, through the inbound's set-group-id bit, to the staff group, so the staff collect
it and other students get ``PermissionError``. The hub's JupyterLab for students sets
``c.ExchangeFactory.submit = "helpers.exchange.PrivateSubmit"``; it lives here, not in
``autograder``, because students' servers cannot read the grading code.
"""
from __future__ import annotations

import os

from nbgrader.exchange.default.submit import ExchangeSubmit


class PrivateSubmit(ExchangeSubmit):
    def copy_files(self):
        super().copy_files()
        os.chmod(os.path.join(self.inbound_path, self.assignment_filename), 0o770)
