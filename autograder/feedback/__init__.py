"""What goes back to students and what the staff open: feedback without hidden tests
(``redact``: nbgrader's feedback preprocessor and the service's masking of hidden messages),
students' HTML made harmless (``sanitize``) and what students must never hold (``leaks``).

May import: ``course``.
"""
