"""Grading in isolation: a folder of submissions (``grade``), one submission in a worker process or
on Dask (``workers``, ``forkserver``), the root executor for staff accounts (``executor``), the
sandbox (``sandbox``: bubblewrap, an account of its own; ``cgroups``: caps), the grading kernel
(``kernel``) and the verdicts a submission cannot fake (``guard``).

May import: ``course``, ``inbound`` (never ``feedback``, ``reports``, ``service``, ``server``).
``kernel`` runs inside the sandbox and imports nothing of ``autograder``.
"""
