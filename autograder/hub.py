"""``python -m autograder.hub`` (``make hub``): the code is ``autograder.server.hub``."""
import runpy

if __name__ == "__main__":
    runpy.run_module("autograder.server.hub", run_name="__main__", alter_sys=True)
