"""``python -I -m autograder.executor`` (the hub's executor service, its sudo rule): the code is
``autograder.grading.executor``."""
import runpy

if __name__ == "__main__":
    runpy.run_module("autograder.grading.executor", run_name="__main__", alter_sys=True)
