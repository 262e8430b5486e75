"""What students hand in, taken in trusting nothing: ``intake`` (reading a student's folder by
file descriptors: regular files only, sizes capped, owner and time from the system), ``collect``
(nbgrader's collect over ``intake``, set in ``course.config``).

May import: nothing of ``autograder`` but this room. The first room on a submission's way.
"""
