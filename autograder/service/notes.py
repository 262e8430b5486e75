"""What early feedback says to the student: the note at the top of a graded submission's
feedback (its slot of the day's limit, that the score is feedback only, what the intake left out)
and the page of a submission over the day's limit."""
from __future__ import annotations

import html
from datetime import datetime, timedelta

from ..course.schedule import FORMAT, Policy
from ..inbound import intake
from .journal import Entry


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def next_day(day: str) -> str:
    return f"{datetime.strptime(day, '%Y-%m-%d') + timedelta(days=1):%Y-%m-%d} 00:00"


def limit_note(entry: Entry, policy: Policy, used: int, due: datetime | None, masked: bool) -> str:
    """The markdown note at the top of early feedback (``used``: graded submissions of that day so far)."""
    left = max(0, policy.daily_limit - used)
    nxt = (f"You have {_plural(left, 'more graded submission')} of {entry.assignment} on {entry.day} (UTC)."
           if left else
           f"You have used all {_plural(policy.daily_limit, 'graded submission')} of {entry.assignment} on "
           f"{entry.day} (UTC): the next one counts from {next_day(entry.day)} UTC (those before are kept, "
           "not graded now).")
    due_text = f"the due date ({due:{FORMAT}} UTC)" if due else "the due date"
    received = f" (received {entry.when:{FORMAT}} UTC)" if entry.submitted else ""
    lines = [f"**Early feedback** on your submission of {entry.timestamp}{received}: graded submission "
             f"{entry.slot} of {policy.daily_limit} on {entry.day} (UTC). {nxt}",
             f"This score is feedback only: the grade that counts is your latest submission's, "
             f"graded after {due_text}."]
    if masked:
        lines.append(f"Until {due_text}, a failing hidden test says only *failed*; its message shows after it.")
    if entry.refused:
        lines.append("**Not every file of this submission was taken** (the course takes regular files only, "
                     "within size limits):\n\n" + "\n".join(f"- {intake.markdown_text(r)}" for r in entry.refused))
    return "\n\n".join(lines)


def over_limit_page(entry: Entry, policy: Policy, due: datetime | None) -> str:
    """The feedback page of a submission over the day's limit."""
    e = html.escape
    due_text = f"the due date ({due:{FORMAT}} UTC)" if due else "the due date"
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{e(entry.assignment)}: not graded yet"
            f"</title></head><body>\n<h1>{e(entry.assignment)}: submission kept, not graded now</h1>\n"
            f"<p>Your submission of {e(entry.timestamp)} was received and is kept, but it is over the limit of "
            f"{_plural(policy.daily_limit, 'graded submission')} of {e(entry.assignment)} per day: you have used "
            f"all of {e(entry.day)} (UTC). The next submission counts from {next_day(entry.day)} UTC.</p>\n"
            f"<p>Your latest submission is graded after {e(due_text)}, as usual: this one, "
            f"unless you submit again.</p>\n</body></html>\n")
