"""The staff's views after grading: the HTML report (``report``), similar pairs of submissions
(``similarity``), the gradebook for Canvas or Moodle (``lms``).

May import: ``course``, ``grading``, ``feedback``, ``inbound``.
"""
