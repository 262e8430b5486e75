"""``python -m autograder.lab`` (``make lab``, ``make workspace``): the code is ``autograder.server.lab``."""
import runpy

if __name__ == "__main__":
    runpy.run_module("autograder.server.lab", run_name="__main__", alter_sys=True)
