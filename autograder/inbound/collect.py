"""``nbgrader collect`` that trusts nothing in the exchange's inbound (``c.ExchangeFactory.collect``,
set by ``autograder.course.config``, so the command line and the formgrader's *Collect* both use it).

nbgrader's own collect takes a folder's student and time from its name and copies it with
``shutil.copytree``, which follows what the student put there: a link to a file of the staff's
is copied as that file into ``submitted/``, a link to ``/dev/zero`` fills the disk, a FIFO hangs
the collect. Here:

* the folder's **owner** (``lstat``) decides whose it is (``intake.identify``): one named for a
  classmate, for ``.``, ``..``, ``*`` or for someone not on the roster is not collected (an error
  line says why); root's folders and the collecting account's own keep their name (one machine);
* its **time** is the latest ``st_ctime`` of the folder and its files (``intake``), which the student
  cannot set back: it picks the latest submission, decides "before the due date", and is written as
  the ``timestamp.txt`` that the late penalty reads;
* its files are copied by ``intake.copy`` (regular files only, sizes capped); what is left out is
  logged and listed in ``intake-refused.txt`` in the copy, which ``grade`` puts into the Result and
  the feedback. The inbound folder stays as it was.
"""
from __future__ import annotations

import os
import stat
import time
from collections import defaultdict
from datetime import datetime, timezone
from fnmatch import fnmatch

from nbgrader.exchange.default.collect import ExchangeCollect
from traitlets import Bool

from . import intake


class SafeCollect(ExchangeCollect):
    limits = intake.STUDENT
    check_owner = Bool(False, help="nbgrader's warning about owners: replaced by refusing (intake.identify)"
                       ).tag(config=True)

    def init_src(self):
        if self.coursedir.course_id == "":
            self.fail("No course id specified. Re-run with --course flag.")
        self.course_path = os.path.join(self.root, self.coursedir.course_id)
        self.inbound_path = os.path.join(self.course_path, "inbound")
        if not os.path.isdir(self.inbound_path):
            self.fail(f"Course not found: {self.inbound_path}")
        try:
            names = sorted(os.listdir(self.inbound_path))
        except OSError as e:
            self.fail(f"You don't have read permissions for the directory: {self.inbound_path} ({e.strerror})")
        roster = intake.load_roster(self.coursedir.root, self.coursedir.db_url)
        if roster is None:
            self.log.warning("No roster (no students in the gradebook, no roster.csv): folders of root or of this "
                             "account keep the name they carry; others are collected under their owner's name only")
        wanted = self.coursedir.student_id or "*"
        self._stamps: dict[str, str] = {}
        records = []
        for name in names:
            record = self._record(name, wanted, roster)
            if record is not None:
                records.append(record)
        by_student = defaultdict(list)
        for r in records:
            by_student[r["username"]].append(r)
        self.duedate = self._duedate()
        self.src_records = []
        for rs in by_student.values():
            rs = sorted(rs, key=lambda r: r["timestamp"], reverse=True)
            on_time = [r for r in rs if self.duedate is not None and r["timestamp"] <= self.duedate]
            self.src_records.append(on_time[0] if self.before_duedate and on_time else rs[0])

    def _duedate(self):
        from nbgrader.api import Gradebook, MissingEntry
        with Gradebook(self.coursedir.db_url, self.coursedir.course_id) as gb:
            try:
                return gb.find_assignment(self.coursedir.assignment_id).duedate
            except MissingEntry:
                return None

    def _record(self, name: str, wanted: str, roster: set[str] | None) -> dict | None:
        """The record of one inbound folder of this assignment, or None (not one, or refused: logged)."""
        try:
            parsed = intake.parse_name(name)
        except intake.Refused as e:
            if f"+{self.coursedir.assignment_id}+" in name:
                self.log.error("Not collected: %r: %s", name, e)
            return None
        if parsed is None or parsed[1] != self.coursedir.assignment_id or not fnmatch(parsed[0], wanted):
            return None
        path = os.path.join(self.inbound_path, name)
        try:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode):
                raise intake.Refused(f"{intake.describe(st.st_mode)}, not a folder")
            student = intake.identify(st.st_uid, parsed[0], roster)
            changed = intake.read(path, self.limits, contents=False).changed
        except (intake.Refused, intake.IntakeError) as e:
            self.log.error("Not collected: %r: %s", name, e)
            return None
        except OSError:
            return None  # gone meanwhile
        when = min(changed, time.time())
        self._stamps[path] = intake.stamp(when)
        return {"username": student, "filename": name,
                "timestamp": datetime.fromtimestamp(when, timezone.utc).replace(tzinfo=None)}

    def do_copy(self, src, dest, log=None):
        """Copy ``src`` (an inbound folder) to ``dest`` by ``intake``'s rules, with the system's time
        as ``timestamp.txt`` and what was left out in ``intake-refused.txt``."""
        ignore = [*self.coursedir.ignore, "timestamp.txt", intake.REFUSED_FILE]
        taken = intake.read(src, self.limits, ignore=ignore)
        os.makedirs(dest)
        intake.write(dest, taken.files)
        stamp = self._stamps.get(src) or intake.stamp(taken.changed)
        with open(os.path.join(dest, "timestamp.txt"), "w") as f:
            f.write(stamp)
        if taken.refused:
            for reason in taken.reasons():
                self.log.warning("%s: %s", os.path.basename(src), reason)
            with open(os.path.join(dest, intake.REFUSED_FILE), "w") as f:
                f.write("".join(f"{r}\n" for r in taken.reasons()))
        if self.coursedir.groupshared:
            for folder, _, files in os.walk(dest):
                os.chmod(folder, (os.stat(folder).st_mode | 0o2770) & 0o2777)
                for name in files:
                    path = os.path.join(folder, name)
                    os.chmod(path, (os.stat(path).st_mode | 0o660) & 0o777)
