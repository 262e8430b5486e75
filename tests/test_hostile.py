"""Hostile and broken submissions: the grader finishes, the gradebook stays intact, and each
student gets the grade the rules give. All are graded in one parallel run (``--workers 2``)."""
from __future__ import annotations

import os
import sys
from html import escape as html_escape
from pathlib import Path

import nbformat
import psutil
import pytest
from nbgrader.api import Gradebook

from autograder.grading import kernel as grading_kernel
from autograder.grading import sandbox
from autograder.course import gradebook, submissions
from autograder.course.cells import grade_id
from autograder.feedback.leaks import hidden_lines
from autograder.course.config import REPO
from autograder.course.torch_env import torch_env
from autograder.grading.grade import grade_folder

AID = "00_kl_elbo"
FULL = 16
WRONG_KL = '''
def kl_normal(qm, qv, pm, pv):
    return 0.5 * (torch.log(pv**2) - torch.log(qv**2) + qv**2 / pv**2 + (qm - pm).pow(2) / pv**2 - 1).sum(-1)
'''


def first_cell(gid):
    return lambda nb: next(c for c in nb.cells if grade_id(c) == gid)


def prepend(gid, code):
    def edit(nb):
        cell = first_cell(gid)(nb)
        cell.source = code + "\n" + cell.source
    return edit


def drop(gid):
    def edit(nb):
        nb.cells.remove(first_cell(gid)(nb))
    return edit


def set_source(gid, code):
    def edit(nb):
        first_cell(gid)(nb).source = code
    return edit


def both(*edits):
    def edit(nb):
        for e in edits:
            e(nb)
    return edit


def kernel(name):
    def edit(nb):
        nb.metadata.kernelspec = {"name": name, "display_name": name, "language": "python"}
    return edit


def to_markdown(gid):
    def edit(nb):
        cell = first_cell(gid)(nb)
        nb.cells[nb.cells.index(cell)] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata)
    return edit


# name -> (edit of a correct submission, expected autograded score, test cell expected at 0 or None)
CASES = {
    "infinite_loop": (prepend("kl_discrete", "while True:\n    pass"), FULL - 2, "test_kl_discrete"),
    "sys_exit": (prepend("kl_discrete", "import sys\nsys.exit(3)"), FULL - 2, "test_kl_discrete"),
    "memory_bomb": (prepend("kl_discrete", "hog = bytearray(40 << 30)"), FULL - 2, "test_kl_discrete"),
    "huge_output": (prepend("kl_discrete", "for _ in range(30):\n    print('x' * (10 << 20))"), FULL, None),
    "deleted_test_cell": (both(drop("test_kl_normal"), set_source("kl_normal", WRONG_KL)),
                          FULL - 3 - 3, "test_kl_normal"),
    "edited_test_cell": (both(set_source("test_kl_normal", "pass"), set_source("kl_normal", WRONG_KL)),
                         FULL - 3 - 3, "test_kl_normal"),
    "test_cell_made_markdown": (both(to_markdown("test_kl_normal"), set_source("kl_normal", WRONG_KL)),
                                FULL - 3 - 3, "test_kl_normal"),
    "added_cells": (lambda nb: nb.cells.insert(3, nbformat.v4.new_code_cell("extra = 1")), FULL, None),
    "kernel_renamed": (kernel("evil-kernel"), FULL, None),
    "prints_kernel_setup": (prepend("kl_discrete", "import torch\nprint('ATen kernels:', torch.backends.cpu.get_cpu_capability())"),
                            FULL, None),
    "redefined_assertion_error": (both(set_source("kl_normal", WRONG_KL), prepend(
        "kl_normal", "import builtins\nbuiltins.AssertionError = AssertionError = type('AE', (Exception,), {})")),
        FULL - 3 - 3, "test_kl_normal"),
    "patched_allclose": (both(set_source("kl_normal", WRONG_KL), prepend(
        "kl_normal", "torch.allclose = lambda *a, **k: True\ntorch.Tensor.all = lambda self, *a: True")),
        FULL - 3 - 3, "test_kl_normal"),
    "fake_torch_module": (both(set_source("kl_normal", WRONG_KL), prepend(
        "kl_normal", "import types\nfake = types.ModuleType('torch')\nfake.__dict__.update(vars(torch))\n"
        "fake.allclose = lambda *a, **k: True\ntorch = fake")), FULL - 3 - 3, "test_kl_normal"),
    "patches_inside_the_graded_function": (set_source("kl_normal", "def kl_normal(qm, qv, pm, pv):\n"
        "    import numpy.testing\n    numpy.testing.assert_allclose = lambda *a, **k: None\n"
        "    return qm.sum(-1)"), FULL - 3 - 3, "test_kl_normal"),
}

# The kernel's own machinery (autograder.grading.guard): each trick is added to an unanswered notebook,
# which must still score what the unanswered notebook scores.
IP = "ip = get_ipython()\nk = ip.kernel\n"
MACHINERY = {
    "input_transformer": IP + "ip.input_transformers_cleanup.append(lambda lines: ['pass\\n'])",
    "input_transformer_post": IP + "ip.input_transformers_post.append(lambda lines: ['pass\\n'])",
    "ast_transformer": IP + "import ast\nclass Quiet(ast.NodeTransformer):\n"
        "    def visit_Module(self, node):\n        body = ast.parse('try:\\n    pass\\nexcept BaseException:\\n    pass').body\n"
        "        body[0].body = node.body or [ast.Pass()]\n        node.body = body\n        return node\n"
        "ip.ast_transformers.append(Quiet())",
    "custom_exception_handler": IP + "ip.set_custom_exc((BaseException,), lambda *a, **kw: None)\n"
        "ip.events.register('post_run_cell', lambda r: setattr(r, 'error_in_exec', None))",
    "traceback_display": IP + "ip.showtraceback = ip._showtraceback = lambda *a, **kw: None\n"
        "ip.events.register('post_execute', lambda: setattr(ip, 'showtraceback', lambda *a, **kw: None))",
    "trace_hook_jumps_asserts": "import sys, threading\n"
        "def tracer(frame, event, arg):\n    if event == 'line' and 'assert' in (frame.f_code.co_name or ''):\n"
        "        frame.f_lineno += 1\n    return tracer\n"
        "for hook in (sys.settrace, threading.settrace, sys.setprofile):\n    try:\n        hook(tracer)\n"
        "    except RuntimeError:\n        pass",
    "event_callbacks": IP + "import builtins\n"
        "ip.events.register('pre_run_cell', lambda info: setattr(builtins, 'AssertionError', type('AE', (Exception,), {})))\n"
        "ip.events.register('pre_execute', lambda: setattr(builtins, 'NotImplementedError', type('NI', (Warning,), {})))",
    "forged_execute_reply": IP + "async def fake(*a, **kw):\n"
        "    return {'status': 'ok', 'execution_count': 1, 'user_expressions': {}, 'payload': [], 'autograder': {'test': True}}\n"
        "k.do_execute = fake\nk.shell_handlers['execute_request'] = k.shell_handlers['kernel_info_request']",
    "message_filter": IP + "send = k.session.send\n"
        "def quiet(stream, msg_or_type, content=None, *a, **kw):\n"
        "    if msg_or_type == 'error':\n        return None\n"
        "    if msg_or_type == 'execute_reply' and content:\n        content = dict(content, status='ok')\n"
        "        content.setdefault('autograder', {'test': True})\n    return send(stream, msg_or_type, content, *a, **kw)\n"
        "k.session.send = quiet",
    "rewrites_the_guard": "import autograder.grading.kernel as g\nfor attempt in (\n"
        "        lambda: setattr(g.restore, '__code__', (lambda *a, **k: None).__code__),\n"
        "        lambda: setattr(g.GradingKernel, 'do_execute', None),\n"
        "        lambda: setattr(get_ipython().kernel, '__class__', type('E', (object,), {})),\n"
        "        lambda: __import__('gc').get_objects()):\n    try:\n        attempt()\n"
        "    except (RuntimeError, TypeError):\n        pass\n"
        "vars(g)['restore'] = vars(g)['run_test'] = lambda *a, **k: {'status': 'ok', 'autograder': {'test': True}}",
    "forged_kernel_methods": IP + "import autograder.grading.kernel as g, ipykernel.kernelbase as kb\n"
        "async def fake(self, *a, **kw):\n"
        "    return {'status': 'ok', 'execution_count': 1, 'user_expressions': {}, 'payload': [], 'autograder': {'test': True}}\n"
        "g.GradingKernel.do_execute = fake\ng.run_test = lambda *a, **kw: {'status': 'ok', 'autograder': {'test': True}}\n"
        "kb.Kernel.do_execute = fake\ng.restore.__kwdefaults__ and g.restore.__kwdefaults__.clear()",
    "background_thread": IP + "import threading, time\n"
        "def again():\n    while True:\n        ip.showtraceback = lambda *a, **kw: None\n"
        "        ip.events.register('post_run_cell', lambda r: setattr(r, 'error_in_exec', None))\n        time.sleep(0.001)\n"
        "threading.Thread(target=again, daemon=True).start()",
    "signal_handler": IP + "import signal\n"
        "def again(*a):\n    ip.showtraceback = lambda *a, **kw: None\n"
        "signal.signal(signal.SIGALRM, again)\nsignal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)",
}
# Tricks that try to copy the hidden tests into the feedback (scored like the unanswered notebook,
# and no hidden line may appear in the feedback).
LEAKS = {
    "prints_history": ("elbo", "print(In, _ih, Out)"),
    "prints_the_request": ("kl_normal", "def kl_normal(*args):\n    import base64\n"
        "    code = get_ipython().kernel.get_parent('shell')['content']['code']\n"
        "    print(code, base64.b64encode(code.encode()))\n    raise ValueError(code)"),
    "prints_the_callers_frame": ("kl_normal", "def kl_normal(*args):\n    import sys, inspect, linecache, dis\n"
        "    print(list(linecache.cache))\n    frame = sys._getframe(1)\n"
        "    print(inspect.getsource(frame), dis.Bytecode(frame.f_code).dis())"),
    "prints_from_a_hook": ("kl_discrete", IP + "ip.events.register('pre_run_cell', lambda info: print(info.raw_cell))\n"
        "ip.input_transformers_cleanup.append(lambda lines: print(''.join(lines)) or lines)"),
}
# As root the kernel runs in autograder.grading.sandbox (bubblewrap): the course is hidden or read-only,
# the scratch gradebook is /dev/null to it, /tmp is its own, no network, its processes capped.
SANDBOXED = sandbox.available()
SOURCE = REPO / "notebooks" / AID / f"{AID}.ipynb"
TOKEN = f"dgm-orphan-{os.getpid()}"
CASES["writes_gradebook"] = (prepend("kl_discrete", "open('../../../gradebook.db', 'wb').write(b'gone')"),
                             FULL - 2 if SANDBOXED else 0, "test_kl_discrete" if SANDBOXED else None)
# Files the kernel must not be able to read, whoever grades (the hub's, when it is set up here).
SECRETS = ["/etc/shadow", str(REPO / "tests" / "test_kl_elbo.py"), str(REPO / "autograder" / "course" / "config.py"),
           str(REPO / "notebooks" / AID / f"{AID}.ipynb"), str(REPO / ".git" / "HEAD"),
           "/srv/dgm/hub/jupyterhub_cookie_secret", "/srv/dgm/course/gradebook_url", "/root/.bash_history"]
SANDBOX_CASES = {
    "reads_source_notebook": (prepend("kl_discrete", f"print(open({str(SOURCE)!r}).read())"),
                              FULL - 2, "test_kl_discrete"),
    "reads_gradebook": (prepend("kl_discrete", "print(open('../../../gradebook.db', 'rb').read())"),
                        FULL - 2, "test_kl_discrete"),
    "writes_into_course_code": (prepend("kl_discrete", f"open({str(REPO / 'helpers' / 'planted.py')!r}, 'w')"),
                                FULL - 2, "test_kl_discrete"),
    "detached_child": (prepend("kl_discrete", "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', "
                               f"'import time; time.sleep(600)', {TOKEN!r}], start_new_session=True)"), FULL, None),
    "network": (prepend("kl_discrete", "import socket, os\ntry:\n"
                        "    socket.create_connection(('127.0.0.1', int(os.environ.get('DGM_TEST_PORT', '1'))), timeout=3)\n"
                        "    print('network: connected')\nexcept OSError as e:\n    print('network: refused', e)"),
                FULL, None),
    # Reaches for other graders' kernels (connection files, sockets, processes) while they run.
    "other_kernels": (prepend("kl_discrete", """import glob, os, time
mine = os.path.abspath('../../..')  # this submission's own scratch course
found = set()
end = time.time() + 15
while time.time() < end:
    for pattern in ('/tmp/dgm-grade-*/runtime/*', '/tmp/*.json', '/tmp/**/kernel*', '/root/.local/share/jupyter/runtime/*'):
        found.update(glob.glob(pattern, recursive=True))
    found.update(p for p in os.listdir('/proc') if p.isdigit() and int(p) > 2)
    time.sleep(0.5)
print('other kernels:', sorted(f for f in found if not f.startswith(mine)))"""), FULL, None),
    # What a kernel as root, or with / read-only, could read: none of it is in its file system.
    "reads_secrets": (prepend("kl_discrete", "import os\nfor path in SECRETS:\n    try:\n"
                              "        print('secret:', path, len(open(path, 'rb').read()))\n"
                              "    except OSError as e:\n        print('absent:', path, e.strerror)\n"
                              "print('uid:', os.getuid(), os.getgid(), os.getgroups())".replace(
                                  "SECRETS", repr(SECRETS))), FULL, None),
    # Children of the kernel, each under its own RLIMIT_AS, together over the group's memory cap.
    "children_over_the_memory_cap": (prepend("kl_discrete", "import subprocess, sys\nkids = [subprocess.Popen("
                                             "[sys.executable, '-c', 'import time; open(\\'/proc/self/oom_score_adj\\', \\'w\\').write(\\'1000\\'); x = bytearray(1 << 30); time.sleep(15)'])"
                                             " for _ in range(8)]\nprint('killed:', sum(k.wait() == -9 for k in kids))"),
                                     FULL, None),
    # Each tmpfs and the working directory have a size: filling them ends in ENOSPC, not a full host.
    "fills_tmp_shm_and_workdir": (prepend("kl_discrete", "import os\nfor where in ('/tmp', '/dev/shm', '.'):\n"
                                          "    try:\n        with open(os.path.join(where, 'fill'), 'wb') as f:\n"
                                          "            for _ in range(3 << 10):\n                f.write(b'x' * (1 << 20))\n"
                                          "        print('filled:', where)\n    except OSError as e:\n"
                                          "        print('full:', where, e.strerror)\n"
                                          "    os.remove(os.path.join(where, 'fill'))"), FULL, None),
}
# Packages submitted beside the notebook: with the launcher and kernel started isolated (python -I,
# no working directory on sys.path) and the notebook run in an empty folder, none is imported.
PLANTED_PACKAGES = {f"{name}/__init__.py": f"open({str(Path('/tmp') / f'dgm-planted-{os.getpid()}')!r} + '-{name}', 'w')\n"
                    for name in ("autograder", "torch", "helpers", "numpy")}
if SANDBOXED:
    CASES.update(SANDBOX_CASES)


@pytest.fixture(scope="module")
def hostile_run(course, released, tmp_path_factory):
    import socket

    inbox = tmp_path_factory.mktemp("hostile")
    source = course.source(AID)
    for name, (edit, _, _) in CASES.items():
        nb = submissions.answered(released(AID), source)
        edit(nb)
        submissions.write(nb, inbox, name, AID)
    for name, code in MACHINERY.items():
        nb = nbformat.read(released(AID), as_version=4)
        prepend("kl_discrete", code)(nb)
        submissions.write(nb, inbox, name, AID)
    for name, (gid, code) in LEAKS.items():
        nb = nbformat.read(released(AID), as_version=4)
        (set_source if gid == "kl_normal" else prepend)(gid, code)(nb)
        submissions.write(nb, inbox, name, AID)
    submissions.write(nbformat.read(released(AID), as_version=4), inbox, "unanswered", AID)
    (inbox / "malformed_json" / AID).mkdir(parents=True)
    (inbox / "malformed_json" / AID / f"{AID}.ipynb").write_text("{not json")
    (inbox / "missing_notebook" / AID).mkdir(parents=True)
    (inbox / "missing_notebook" / AID / "notes.txt").write_text("forgot it")
    submissions.write(nbformat.read(REPO / "notebooks" / "05_gan" / "05_gan.ipynb", as_version=4),
                      inbox, "other_assignment", AID)
    exits = submissions.answered(released(AID), source)
    prepend("kl_discrete", "import os\nos._exit(1)")(exits)
    submissions.write(exits, inbox, "kernel_exit", AID)
    (inbox / "extra_files" / AID).mkdir(parents=True)
    submissions.write(submissions.answered(released(AID), source), inbox, "extra_files", AID)
    bomb = submissions.answered(released(AID), source)
    prepend("kl_discrete", "import os\nwhile True:\n    os.fork()")(bomb)
    submissions.write(bomb, inbox, "fork_bomb", AID)
    (inbox / "extra_files" / AID / "big.bin").write_bytes(b"\0" * (5 << 20))
    submissions.write(submissions.answered(released(AID), source), inbox, "submitted_packages", AID)
    for rel, code in PLANTED_PACKAGES.items():
        (inbox / "submitted_packages" / AID / rel).parent.mkdir(parents=True, exist_ok=True)
        (inbox / "submitted_packages" / AID / rel).write_text(code)
    huge = submissions.answered(released(AID), source)
    huge.cells.append(nbformat.v4.new_markdown_cell("x" * (120 << 20)))
    submissions.write(huge, inbox, "huge_notebook", AID)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    os.environ["DGM_TEST_PORT"] = str(listener.getsockname()[1])
    try:
        results = grade_folder(course, inbox, workers=2, progress=False, cell_timeout=20)
        try:
            listener.accept()
            connected = True
        except TimeoutError:
            connected = False
    finally:
        del os.environ["DGM_TEST_PORT"]
        listener.close()
    return {r.student: r for r in results}, connected


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_submission_gets_the_rule_grade(hostile_run, course, name):
    _, expected, zero_cell = CASES[name]
    result = hostile_run[0][name]
    assert result.score is not None, result.error
    assert result.score.auto == expected, result.line()
    if zero_cell:
        assert gradebook.cell_scores(course.db_url, AID, name)[zero_cell] == 0


@pytest.mark.parametrize("name", list(MACHINERY) + list(LEAKS))
def test_tricks_on_the_kernel_score_what_the_unanswered_notebook_scores(hostile_run, course, name):
    results = hostile_run[0]
    assert results[name].score is not None, results[name].error
    assert results[name].score.auto == results["unanswered"].score.auto == 0, results[name].line()
    assert gradebook.cell_scores(course.db_url, AID, name) == gradebook.cell_scores(course.db_url, AID, "unanswered")
    html = course.feedback(AID, name).read_text()
    leaked = [line for line in hidden_lines(nbformat.read(SOURCE, as_version=4)) if html_escape(line) in html]
    assert not leaked, f"the feedback shows hidden-test lines: {leaked[:3]}"
    for internal in (grading_kernel.MARK.strip(), "_autograder_", "undo monkey-patching"):
        assert internal not in html, f"the feedback shows the grader's machinery ({internal})"


def test_feedback_shows_verdicts_and_messages_but_no_hidden_code(hostile_run, course):
    html = course.feedback(AID, "unanswered").read_text()
    assert "NotImplementedError" in html and "(hidden tests ran here)" in html
    assert "KL(p||p) must be 0" in html or "kl_discrete" in html  # the visible tests stay


def test_broken_submissions_are_reported_and_the_gradebook_survives(hostile_run, course):
    results = hostile_run[0]
    assert "JSON" in results["malformed_json"].error and results["malformed_json"].score.auto == 0
    assert results["missing_notebook"].score is None and "no 00_kl_elbo.ipynb" in results["missing_notebook"].error
    assert results["extra_files"].score.auto == FULL
    # Rules: a notebook of another assignment, or one that kills the grading kernel, scores 0
    # and the reason is reported (and shown in its feedback notebook).
    assert results["other_assignment"].score.auto == 0
    assert "another assignment" in results["other_assignment"].error
    assert results["kernel_exit"].score.auto == 0 and "Kernel died" in results["kernel_exit"].error
    assert results["huge_notebook"].score.auto == 0 and "MB" in results["huge_notebook"].error
    if not SANDBOXED:
        assert results["writes_gradebook"].error, "a broken scratch gradebook is reported"
    with Gradebook(course.db_url) as gb:  # the course's gradebook is untouched and complete
        graded = {s.student.id for s in gb.find_assignment(AID).submissions}
    assert set(CASES) | set(MACHINERY) | set(LEAKS) <= graded
    assert all(r.score is not None for n, r in results.items() if n != "missing_notebook"), "grade never crashed"


def test_output_floods_are_cut_and_nothing_grows_with_them(hostile_run, course):
    notebook = course.autograded("huge_output", AID) / f"{AID}.ipynb"
    assert notebook.stat().st_size < 5 << 20, "the autograded notebook keeps at most the cap"
    assert "output cut" in notebook.read_text()
    assert Path(course.db_url.removeprefix("sqlite:///")).stat().st_size < 20 << 20


def printed(course, name: str) -> str:
    """What the cell that the case edited printed while graded."""
    nb = nbformat.read(course.autograded(name, AID) / f"{AID}.ipynb", as_version=4)
    cell = first_cell("kl_discrete")(nb)
    return "\n".join(o.get("text", "") + o.get("evalue", "") for o in cell.outputs)


def test_grading_kernels_run_with_the_course_torch_env(hostile_run, course):
    import torch  # this process's own choice, for a machine where torch_env adds nothing
    want = torch_env().get("ATEN_CPU_CAPABILITY", torch.backends.cpu.get_cpu_capability()).upper()
    assert f"ATen kernels: {want}" in printed(course, "prints_kernel_setup")


@pytest.mark.skipif(not SANDBOXED, reason="the grading sandbox needs root and bwrap (make test installs it)")
def test_sandbox_hides_the_course_and_other_graders(hostile_run, course):
    source = printed(course, "reads_source_notebook")
    assert "No such file" in source and "HIDDEN" not in source
    assert "No such file" in printed(course, "reads_gradebook"), "the scratch gradebook is not in the kernel's file system"
    assert "Read-only file system" in printed(course, "writes_into_course_code")
    assert not (REPO / "helpers" / "planted.py").exists(), "the course's code must be read-only"
    assert "other kernels: []" in printed(course, "other_kernels"), printed(course, "other_kernels")


@pytest.mark.skipif(not SANDBOXED, reason="the grading sandbox needs root and bwrap (make test installs it)")
def test_no_network_and_no_process_outlives_grading(hostile_run, course):
    assert "network: refused" in printed(course, "network") and not hostile_run[1]
    left = [p.pid for p in psutil.process_iter(["cmdline"]) if TOKEN in " ".join(p.info["cmdline"] or [])]
    assert not left, "a detached child of a graded submission survived grading"


@pytest.mark.skipif(not SANDBOXED, reason="the grading sandbox needs root and bwrap (make test installs it)")
def test_kernel_is_nobody_and_reads_no_secret(hostile_run, course):
    out = printed(course, "reads_secrets")
    assert "secret:" not in out, out
    assert all(f"absent: {path} No such file or directory" in out for path in SECRETS), out
    uid, gid, groups = out.split("uid:")[1].split(maxsplit=2)
    assert int(uid) >= sandbox.UID_BASE and int(gid) == int(uid) and groups.startswith("[]"), out
    assert hostile_run[0]["reads_secrets"].score.auto == FULL


@pytest.mark.skipif(not SANDBOXED, reason="the grading sandbox needs root and bwrap (make test installs it)")
def test_tmpfs_and_working_folder_have_a_size(hostile_run, course):
    out = printed(course, "fills_tmp_shm_and_workdir")
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith(("full", "filled"))] == ["full"] * 3, out
    assert "No space left on device" in out
    assert hostile_run[0]["fills_tmp_shm_and_workdir"].score.auto == FULL


@pytest.mark.skipif(not SANDBOXED, reason="the grading sandbox needs root and bwrap (make test installs it)")
def test_the_memory_cap_holds_for_the_kernel_and_its_children(hostile_run, course):
    result = hostile_run[0]["children_over_the_memory_cap"]
    killed = int(printed(course, "children_over_the_memory_cap").split("killed:")[1].split()[0])
    assert killed >= 1, "8 GiB of children in a 6 GiB group: the OOM killer stops some (they ask to go first)"
    assert "memory cap" in result.error and result.score.auto == FULL, result.line()


def test_submitted_packages_are_never_imported(hostile_run, course):
    assert hostile_run[0]["submitted_packages"].score.auto == FULL, hostile_run[0]["submitted_packages"].line()
    ran = sorted(Path("/tmp").glob(f"dgm-planted-{os.getpid()}-*"))
    assert not ran, f"submitted packages ran outside the sandbox: {ran}"


@pytest.mark.skipif(not SANDBOXED, reason="the process cap for root needs a pids cgroup")
def test_fork_bomb_is_capped_and_cleaned_up(hostile_run, course):
    result = hostile_run[0]["fork_bomb"]
    assert result.score is not None and result.score.auto <= FULL - 2, result.line()
    assert "fork bomb" in result.error
    assert result.seconds < 120, f"a fork bomb is stopped once it hits the cap, not at the wall clock ({result.seconds:.0f} s)"
    left = [p.pid for p in psutil.process_iter(["cwd"]) if "dgm-grade-" in (p.info["cwd"] or "")]
    assert not left, "no process of a graded submission survives"


def test_regrading_is_idempotent_and_parallel_matches_serial(course, released, tmp_path):
    inbox = tmp_path / "inbox"
    good = submissions.answered(released(AID), course.source(AID))
    bad = submissions.answered(released(AID), course.source(AID), {"kl_normal": WRONG_KL})
    submissions.write(good, inbox, "para_good", AID)
    submissions.write(bad, inbox, "para_bad", AID)
    first = {r.student: r.score.auto for r in grade_folder(course, inbox, workers=2, progress=False)}
    again = {r.student: r.score.auto for r in grade_folder(course, inbox, workers=1, progress=False)}
    assert first == again == {"para_good": FULL, "para_bad": FULL - 6}
    with Gradebook(course.db_url) as gb:
        assert sum(s.student.id == "para_good" for s in gb.find_assignment(AID).submissions) == 1


def test_dask_local_cluster_grades_like_local_workers(course, released, tmp_path):
    from dask.distributed import Client, LocalCluster

    inbox = tmp_path / "inbox"
    submissions.write(submissions.answered(released(AID), course.source(AID), {"kl_normal": WRONG_KL}),
                      inbox, "dask_bad", AID)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        [result] = grade_folder(course, inbox, scheduler=client, progress=False)
    assert result.score.auto == FULL - 6 and result.error is None


def test_wall_clock_limit_stops_a_submission(course, released, tmp_path):
    inbox = tmp_path / "inbox"
    nb = submissions.answered(released(AID), course.source(AID))
    prepend("kl_discrete", "import time\nwhile True:\n    time.sleep(1)")(nb)
    submissions.write(nb, inbox, "too_slow", AID)
    [result] = grade_folder(course, inbox, progress=False, wall_clock=25, cell_timeout=600)
    assert result.score.auto == 0 and "25 s limit" in result.error
    feedback = nbformat.read(course.autograded("too_slow", AID) / f"{AID}.ipynb", as_version=4)
    assert "could not be graded" in feedback.cells[0].source
    left = [p.pid for p in psutil.process_iter(["cwd"]) if "dgm-grade-" in (p.info["cwd"] or "")]
    assert not left, "the kernel of a stopped submission must not survive"


def test_the_grading_kernel_restores_defaults_classes_and_globals_before_a_test(tmp_path):
    """Direct, without nbgrader: tricks that a test's verdict depends on, undone before the test."""
    from jupyter_client import KernelManager

    from jupyter_client.kernelspec import KernelSpec

    class Manager(KernelManager):  # the grading kernel itself, without the sandbox around it
        kernel_spec = KernelSpec(argv=[sys.executable, "-I", "-m", "autograder.grading.kernel", "-f", "{connection_file}"],
                                 display_name="grading kernel", language="python", interrupt_mode="message")

    km = Manager(transport="ipc", ip=str(tmp_path / "kernel"))
    km.start_kernel(env={**os.environ, "TMPDIR": str(tmp_path)})
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)

        def run(code: str) -> dict:
            return kc.execute_interactive(code, timeout=60, output_hook=lambda msg: None)["content"]

        run("import torch, torch.testing, ipykernel.kernelbase as kb\n"
            "torch.testing.assert_close.__kwdefaults__['atol'] = 1e9\n"
            "torch.testing.assert_close.__kwdefaults__['rtol'] = 1e9\n"
            "torch.Tensor.allclose = lambda *a, **k: True\n"
            "kb.Kernel.execute_request = None")
        reply = run(grading_kernel.MARK + "import torch\ntorch.testing.assert_close(torch.ones(1), torch.zeros(1))")
        assert reply["status"] == "error" and reply["autograder"] == {"test": False}
        reply = run(grading_kernel.MARK + "import torch\nassert not torch.ones(1).allclose(torch.zeros(1))")
        assert reply["status"] == "ok" and reply["autograder"] == {"test": True}
        assert run("import sys\nsys.settrace(lambda *a: None)")["ename"] == "RuntimeError"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
