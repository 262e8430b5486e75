"""Serving a class: the class's JupyterHub on one server (``hub``; ``hubcaps``: caps per person and
idle culling; ``hubserver/``: files copied into the site; ``hubclient``: a person on the hub, as a
program; ``scratch``: a throwaway hub on loopback for tests and benchmarks), the student's JupyterLab (``lab``) and the students' nbgrader settings
(``student_nbgrader_config``).

May import: every room but ``reports`` (``inbound``, ``course``, ``grading``, ``feedback``,
``service``). Nothing below imports from here.
"""
