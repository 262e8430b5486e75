"""The nbgrader course on disk: its settings (``config``), calendar (``schedule``, the one reader of
``course.toml``), cell metadata (``cells``), nbgrader's API over the course (``course``: release,
autograde, scores, export), the late penalty (``late``), reference solutions (``solutions``),
generated submissions (``submissions``), the selfcheck, the environment of PyTorch processes
(``torch_env``) and the student repository (``bundle``, ``student_repo/``).

May import: ``inbound`` and ``helpers``. ``config`` names classes of other rooms as strings
(nbgrader loads them by dotted path); that is configuration, not an import.
"""
