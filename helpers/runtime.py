"""Where a notebook runs: grading mode, training budgets, seeds, CPU threads, and the one
set-up call every notebook makes first (``start``)."""
from __future__ import annotations

import os
import random
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, TypeVar

import torch

T = TypeVar("T")
RESULTS = Path("results")  # every run folder, checkpoint and figure of a notebook lives under it


def grading() -> bool:
    """True while nbgrader autogrades or validates (it sets ``NBGRADER_EXECUTION``)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def budget(full: T, grading_value: T) -> T:
    """``full`` for a student's run, ``grading_value`` (a short budget) under nbgrader."""
    return grading_value if grading() else full


def seed(value: int = 0) -> torch.Generator:
    """Seed Python's and torch's global generators; returns a fresh seeded ``torch.Generator``."""
    random.seed(value)
    torch.manual_seed(value)
    return torch.Generator().manual_seed(value)


def device() -> torch.device:
    """The GPU if there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextmanager
def threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)`` and restore the old count after
    (``None``: leave as is)."""
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def start(seed_value: int = 0) -> Path:
    """A notebook's set-up: under grading, one CPU thread (graders run several notebooks side
    by side); seed every generator; print the mode, torch's version and the device. Returns
    the results folder, ``results/``."""
    if grading():
        torch.set_num_threads(1)
    seed(seed_value)
    print("grading mode" if grading() else "full run", "| torch", torch.__version__, "| device:", device())
    return RESULTS
