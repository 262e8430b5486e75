"""Late-submission penalty for nbgrader's ``AssignLatePenalties`` (set in ``config.py``)."""
from __future__ import annotations

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float


class PerDayPenalty(LateSubmissionPlugin):
    """Take ``fraction_per_day`` of the score for each started day late, down to 0."""

    fraction_per_day = Float(0.1, help="fraction of the score lost per started day late").tag(config=True)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float:
        days = math.ceil(total_seconds_late / 86_400)
        return min(score, score * self.fraction_per_day * days)
