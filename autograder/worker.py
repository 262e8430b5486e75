"""``python -m autograder.worker ROOT ASSIGNMENT STUDENT MEMORY_MB``: autograde one submission
in a scratch course, under a memory cap that the student's kernel inherits (started by
``autograder.workers.run_task``). Exits 1 with the reason on failure."""
import resource
import sys

if __name__ == "__main__":
    root, assignment, student, memory_mb = sys.argv[1:5]
    cap = int(memory_mb) << 20
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    from pathlib import Path

    from .course import Course, GradingError

    try:
        Course(Path(root)).autograde(assignment, student, release=False)
    except GradingError as e:
        sys.exit(str(e))
