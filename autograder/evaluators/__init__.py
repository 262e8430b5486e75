"""Trusted evaluation: what hidden tests call inside the grading kernel to score a student's model
(``evaluate``: the VAE's bound on held-out images; ``conditional``: notebook 04's lab-guide grades;
``probes``: the small networks notebook 05's tests probe the GAN losses with).

May import: ``helpers`` and third-party libraries (torch, ...), nothing of ``autograder``. These
files are bound into the grading sandbox (``grading.sandbox.KERNEL_MODULES``): keep them small and
self-contained. Never shipped to students.
"""
