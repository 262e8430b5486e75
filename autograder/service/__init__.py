"""Feedback minutes after submitting (``python -m autograder serve``): the service loop that takes
new submissions from the exchange's inbound, grades them and returns feedback (``service``), its
journal (``journal``), the inbound folders it takes (``inbox``), its scratch course and graders
(``graders``, ``processes``) and the feedback it releases (``release``, ``notes``).

May import: ``inbound``, ``course``, ``grading``, ``feedback``.
"""
