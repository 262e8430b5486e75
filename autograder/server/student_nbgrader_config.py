"""nbgrader configuration for students' JupyterLab (Assignments tab, fetch/submit/feedback).

Install it where the students' Jupyter reads config: on JupyterHub, as
/etc/jupyter/nbgrader_config.py; on one machine, in the folder JupyterLab serves or in
$JUPYTER_CONFIG_DIR. The exchange must be the instructor's (autograder.course.config sets it from
$DGM_EXCHANGE, default <course>/exchange).
"""
import os

c = get_config()  # noqa: F821 (provided by Jupyter's config loader)
c.CourseDirectory.course_id = "dgm"
c.Exchange.root = os.environ.get("DGM_EXCHANGE", "/srv/nbgrader/exchange")
# Validate runs whole notebooks, training cells included: allow them the time they need.
c.Execute.timeout = int(os.environ.get("DGM_CELL_TIMEOUT", 600))
