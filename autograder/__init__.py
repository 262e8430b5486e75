"""Grading side of the course: nbgrader configuration, release/grade/selfcheck tooling,
the loader of reference solutions and the trusted evaluators used by hidden tests."""
