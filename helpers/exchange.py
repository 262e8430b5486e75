"""The students' side of the class server's exchange (``python -m autograder.hub``): nbgrader's
submit, with the submission's folder closed to other students and only regular files in it.

nbgrader leaves a submission's folder mode 0777 (its files 0644) in the exchange's inbound and
hides it behind an unguessable name only. ``PrivateSubmit`` makes the folder 0770: it belongs to
the student and, through the inbound's set-group-id bit, to the staff group, so the staff collect
it and other students get ``PermissionError``. nbgrader's copy also follows links (a link to
``/dev/zero`` fills the shared exchange) and blocks on a FIFO; here links, FIFOs, sockets and
devices in the student's folder are left out with a line saying so (the course grades regular
files only, and takes who and when from the system, not from the folder's name). The hub's
JupyterLab for students sets ``c.ExchangeFactory.submit = "helpers.exchange.PrivateSubmit"``; it
lives here, not in ``autograder``, because students' servers cannot read the grading code.
"""
from __future__ import annotations

import os
import shutil
import stat

from nbgrader.exchange.default.submit import ExchangeSubmit
from nbgrader.utils import ignore_patterns


def _what(mode: int) -> str:
    for test, what in ((stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")):
        if test(mode):
            return what
    return "not a regular file"


class PrivateSubmit(ExchangeSubmit):
    def do_copy(self, src, dest, log=None):
        """nbgrader's copy (its ignore patterns and size limits), without links or special files."""
        if self.get_size(src) > 1000 * self.coursedir.max_dir_size:
            raise RuntimeError(f"Directory size is too big: over {1000 * self.coursedir.max_dir_size} bytes")
        usual = ignore_patterns(exclude=self.coursedir.ignore, include=self.coursedir.include,
                                max_file_size=self.coursedir.max_file_size, log=self.log)

        def ignore(folder, names):
            left_out = set(usual(folder, names))
            for name in names:
                try:
                    mode = os.lstat(os.path.join(folder, name)).st_mode
                except OSError:
                    left_out.add(name)
                    continue
                if name not in left_out and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    left_out.add(name)
                    self.log.warning("Not submitted: %s is %s (only regular files are graded)",
                                     os.path.relpath(os.path.join(folder, name), src), _what(mode))
            return left_out
        shutil.copytree(src, dest, ignore=ignore)

    def copy_files(self):
        super().copy_files()
        os.chmod(os.path.join(self.inbound_path, self.assignment_filename), 0o770)
