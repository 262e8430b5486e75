"""nbgrader reads this file from the working directory: run nbgrader from the repository root."""
from pathlib import Path

from autograder.course.config import apply

apply(get_config(), Path(__file__).resolve().parent)  # noqa: F821 (get_config is nbgrader's)
