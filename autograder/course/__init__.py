"""The nbgrader course on disk: its settings (``config``), calendar (``schedule``, the one reader of
``course.toml``), cell metadata (``cells``), nbgrader's steps over the course (``course``: release,
autograde, feedback), its gradebook (``gradebook``: scores, the roster in, grades out), the late
penalty (``late``), reference solutions (``solutions``),
generated submissions (``submissions``), the selfcheck, the environment of PyTorch processes
(``torch_env``) and the student repository (``bundle``, ``student_repo/``).

May import: ``helpers`` only (nothing of another room). ``config`` names classes of other rooms as strings
(nbgrader loads them by dotted path); that is configuration, not an import.
"""
