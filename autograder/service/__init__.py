"""Feedback minutes after submitting (``python -m autograder serve``): the service loop that takes
new submissions from the exchange's inbound, grades them and returns feedback (``service``), and
its journal (``journal``).

May import: ``inbound``, ``course``, ``grading``, ``feedback``.
"""
