"""The grading kernel: IPython's kernel with the guard described in ``autograder.grading.guard``.

``python -m autograder.grading.kernel -f CONNECTION_FILE`` (the grading kernelspec, started by
``autograder.grading.sandbox``) imports the libraries that tests use, takes a snapshot of the kernel's
machinery and of those libraries, arms an audit hook, and then serves cells. A cell that the
grader marks as a test (``MARK``) runs in ``run_test``, never through IPython's ``run_cell``.

Everything the guard's own code needs (builtins, the snapshot) is bound as positional default
arguments (a tuple: keyword-only defaults live in a dict that code could edit) when this module
is imported, before any submitted code runs; the audit hook refuses changes to functions' code
and to these functions' defaults, so a submission cannot swap them.
"""
from __future__ import annotations

import ast
import gc
import importlib
import os
import signal
import sys
import threading
import types
from typing import NamedTuple

from ipykernel.compiler import get_tmp_directory
from ipykernel.ipkernel import IPythonKernel
from ipykernel.kernelapp import IPKernelApp

MARK = "#autograder:test\n"            # the executor's prefix for a test cell (never stored)
STAMP = "autograder"                   # the reply field that only this kernel's code writes
HIDDEN = "### BEGIN HIDDEN TESTS"
TEST_FILE = "<autograder test>"        # test cells' code: never in linecache, history or In[]
MODULES_ENV = "DGM_GUARD_MODULES"      # modules the tests score with, beyond BASE (comma-separated)
BASE = ("builtins", "math", "numpy", "numpy.testing", "torch", "torch.testing", "torchvision", "ctypes",
        "stack_data")  # the last: IPython's traceback display imports it on first use
# The kernel's own machinery: its objects, classes and module globals are put back before and
# after every message.
MACHINERY = ("IPython", "ipykernel", "ipython_pygments_lexers", "jupyter_client", "zmq", "tornado",
             "traitlets", "comm", "autograder")
LIBRARIES = ("builtins", "math", "numpy", "torch", "torchvision", "sympy", "mpmath", "helpers")
# Short names that test cells use for modules, rebound before each test.
NAMES = {"torch": "torch", "np": "numpy", "numpy": "numpy", "math": "math", "sp": "sympy",
         "sympy": "sympy", "mpmath": "mpmath"}
NEVER = ("sys.addaudithook", "sys.settrace", "sys.setprofile", "gc.get_objects", "gc.get_referrers",
         "gc.get_referents", "ctypes.")
# Ways to get hold of a frame (and so of a test's code and locals) while a test runs.
FRAME_EVENTS = frozenset({"sys._getframe", "sys._current_frames"})
FRAME_ATTRS = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_code", "gi_code", "cr_code",
                         "ag_code"})
_MISSING = object()


def _top(name) -> str:
    return name.split(".", 1)[0] if isinstance(name, str) else ""


class Snapshot(NamedTuple):
    """What a submission could change, as it was before any of its code ran (tuples only)."""
    objects: tuple        # (object, (attribute, value)..., (trait, value)...) of the machinery
    object_ids: frozenset # ids of those objects
    modules: tuple        # (name, module) of every machinery and library module
    globals: tuple        # (module, is_machinery, ((name, callable or module)...))
    sys: tuple            # (name, value, list contents) of sys's hooks, streams and import lists
    signals: tuple        # (signal number, handler)
    threads: frozenset    # idents of the kernel's own threads
    gc_callbacks: tuple
    names: tuple          # (short name, module) rebound in the notebook's namespace for tests
    builtins: tuple       # builtins' (name, value)
    classes: tuple        # (class, is_machinery, ((name, callable or descriptor)...)) of the modules' classes
    defaults: tuple       # (function, __defaults__, __kwdefaults__ items) of the modules' functions and methods


def _freeze(d: dict) -> tuple:
    """``(name, value, frozen)`` per attribute; ``frozen`` copies the contents of what is mutable
    in place: lists of callables (transformers), handler tables, IPython's event callbacks."""
    out = []
    for k, v in d.items():
        frozen = None
        if isinstance(v, list) and v and all(callable(f) for f in v):
            frozen = tuple(v)
        elif isinstance(v, dict) and k in ("shell_handlers", "control_handlers"):
            frozen = tuple(v.items())
        elif isinstance(v, dict) and k == "callbacks" and all(isinstance(x, list) for x in v.values()):
            frozen = tuple((name, tuple(cbs)) for name, cbs in v.items())
        out.append((k, v, frozen))
    return tuple(out)


def take_snapshot(roots: list, modules: list[str]) -> Snapshot:
    objects, seen, frontier = [], set(), list(roots)
    for _ in range(6):  # the machinery's objects reachable from the roots (the message streams are 5 deep)
        nxt = []
        for o in frontier:
            if id(o) in seen or not hasattr(o, "__dict__") or isinstance(o, (type, types.ModuleType)):
                continue
            if _top(type(o).__module__) not in MACHINERY and not any(o is r for r in roots):
                continue
            seen.add(id(o))
            d = vars(o)
            objects.append((o, _freeze(d), _freeze(d.get("_trait_values", {}))))
            nxt += list(d.values()) + list(d.get("_trait_values", {}).values())
        frontier = nxt
    mods = tuple((n, m) for n, m in sorted(sys.modules.items()) if isinstance(m, types.ModuleType)
                 and _top(n) in MACHINERY + LIBRARIES + tuple(_top(x) for x in modules))
    globals_ = tuple((m, _top(n) in MACHINERY, tuple((k, v) for k, v in vars(m).items()
                                                     if callable(v) or isinstance(v, types.ModuleType)))
                     for n, m in mods)
    classes = _classes(mods)
    functions = {id(f): f for _, _, items in globals_ + classes for _, f in items if isinstance(f, types.FunctionType)}
    return Snapshot(
        tuple(objects), frozenset(id(o) for o, _, _ in objects), mods, globals_,
        tuple((k, getattr(sys, k), tuple(getattr(sys, k)) if k in ("meta_path", "path_hooks") else None)
              for k in ("excepthook", "displayhook", "unraisablehook", "breakpointhook", "stdout", "stderr",
                        "stdin", "meta_path", "path_hooks")),
        tuple((s, signal.getsignal(s)) for s in signal.valid_signals()
              if s not in (signal.SIGKILL, signal.SIGSTOP) and signal.getsignal(s) is not None),
        frozenset(sys._current_frames()), tuple(gc.callbacks),
        tuple((n, sys.modules[m]) for n, m in NAMES.items() if m in sys.modules),
        tuple(vars(sys.modules["builtins"]).items()),
        classes,
        tuple((f, f.__defaults__, tuple((f.__kwdefaults__ or {}).items())) for f in functions.values()))


def _classes(mods) -> tuple:
    """The classes defined in ``mods``, each with its methods and descriptors as they are now.
    (Setting an ordinary attribute of a class raises no audit event: these are put back.)"""
    seen, out = set(), []
    for name, m in mods:
        for v in list(vars(m).values()):
            if isinstance(v, type) and id(v) not in seen and _top(getattr(v, "__module__", None)) == _top(name):
                seen.add(id(v))
                items = tuple((k, a) for k, a in vars(v).items() if callable(a) or hasattr(a, "__get__"))
                out.append((v, _top(name) in MACHINERY, items))
    return tuple(out)


def _restore_attrs(d, items, machinery, callable=callable, tuple_=tuple, module=types.ModuleType,
                   isinstance=isinstance, missing=_MISSING, id=id, list=list) -> None:
    for k, v, frozen in items:
        now = d.get(k, missing)
        if frozen is not None:
            if k == "callbacks":  # IPython's events: name -> list of callbacks
                d[k] = {name: list(cbs) for name, cbs in frozen}
            elif isinstance(v, list):
                d[k] = v  # the same list object (others hold it too), with its old contents
                v[:] = frozen
            else:
                d[k] = v
                v.clear()
                v.update(frozen)
        elif now is not v and (callable(v) or id(v) in machinery or isinstance(v, (module, tuple_))
                               or (v is None and callable(now))):
            d[k] = v


def restore(snap: Snapshot, everything: bool, vars=vars, setattr=setattr, getattr=getattr, type=type,
            callable=callable, id=id, sys=sys, getsignal=signal.getsignal, setsignal=signal.signal,
            setitimer=signal.setitimer, timers=(signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF),
            gc_callbacks=gc.callbacks, threading=threading, restore_attrs=_restore_attrs, delattr=delattr,
            missing=_MISSING) -> None:
    """Put back the kernel's machinery, and with ``everything`` the libraries tests use."""
    for m, machinery, items in snap.globals:
        if everything or machinery:
            d = vars(m)
            for k, v in items:
                if d.get(k) is not v:
                    d[k] = v
    for k, v, contents in snap.sys:
        setattr(sys, k, v)
        if contents is not None:
            v[:] = contents
    for s, handler in snap.signals:
        if getsignal(s) is not handler:
            setsignal(s, handler)
    for t in timers:
        setitimer(t, 0)
    gc_callbacks[:] = snap.gc_callbacks
    threading.settrace(None)
    threading.setprofile(None)
    modules = sys.modules
    for name, m in snap.modules:
        if modules.get(name) is not m:
            modules[name] = m
    for cls, machinery_class, items in snap.classes:
        if everything or machinery_class:
            d = vars(cls)
            for k, v in items:
                if d.get(k, missing) is not v:
                    setattr(cls, k, v)
            pristine = {k for k, _ in items}
            for k in [k for k, v in d.items() if k not in pristine and callable(v)]:
                delattr(cls, k)  # a method added to the class
    for o, attrs, traits in snap.objects:
        d = vars(o)
        restore_attrs(d, attrs, snap.object_ids)
        if traits:
            restore_attrs(d["_trait_values"], traits, snap.object_ids)
        pristine = {k for k, _, _ in attrs}
        for k in [k for k in d if k not in pristine and callable(getattr(type(o), k, None))]:
            del d[k]  # an instance attribute that shadows one of the class's methods
    if everything:
        for f, defaults, kwdefaults in snap.defaults:  # e.g. assert_close's tolerances
            if f.__defaults__ is not defaults:
                f.__defaults__ = defaults
            if kwdefaults or f.__kwdefaults__:
                f.__kwdefaults__ = dict(kwdefaults) or None
        builtins = vars(modules["builtins"])
        builtins.clear()
        builtins.update(snap.builtins)


def foreign_threads(snap: Snapshot, current=sys._current_frames, enumerate=threading.enumerate,
                    ident=threading.get_ident, getattr=getattr, type=type, machinery=MACHINERY) -> list[str]:
    """Threads running Python code that the kernel did not start: not there at its start, and
    not a thread class of its machinery running its own ``run`` (pyzmq's garbage collector)."""
    me, threads = ident(), {t.ident: t for t in enumerate()}
    foreign = []
    for i in current():
        t = threads.get(i)
        if i in snap.threads or i == me or (t is not None and getattr(t, "_target", None) is None
                                            and _top(type(t).__module__) in machinery):
            continue
        target = getattr(getattr(t, "_target", None), "__qualname__", type(t).__name__)
        foreign.append(f"{getattr(t, 'name', i)} ({target})")
    return foreign


def arm(protected_types: frozenset, protected_modules: frozenset, protected_functions: frozenset,
        machinery_classes: frozenset) -> None:
    """Install the audit hook (it cannot be removed). From then on: no tracing or profiling
    hooks, no other audit hook, no ``gc`` walks, no ``ctypes``; no change to any function's
    ``__code__``, to the defaults of ``protected_functions``, to the audited attributes of the
    classes in ``protected_types`` (``__bases__``, ``__name__``...), or to the ``__class__`` of a
    module in ``protected_modules`` or of an instance of ``machinery_classes``; and while a
    test's code is on the stack, notebook code (cells, or code compiled from a string) cannot get
    hold of a frame, so neither of the test's code nor of its locals."""

    def hook(event, args, busy=set(), ident=threading.get_ident, getframe=sys._getframe, error=RuntimeError,
             never=NEVER, function=types.FunctionType, frame_events=FRAME_EVENTS, frame_attrs=FRAME_ATTRS,
             test_file=TEST_FILE, isinstance=isinstance, id=id, type=type, types_=protected_types,
             modules_=protected_modules, functions_=protected_functions, classes_=machinery_classes,
             cells=get_tmp_directory()):
        if event.startswith(never):
            raise error(f"the grader does not allow {event} in graded notebooks")
        if event in ("object.__setattr__", "object.__delattr__"):
            target, name = args[0], args[1]
            if (isinstance(target, function) and (name == "__code__" or id(target) in functions_)) or \
                    id(target) in types_ or (
                    name == "__class__" and (id(target) in modules_ or id(type(target)) in classes_)):
                raise error(f"the grader does not allow changing {name} of {target!r}")
            return
        if event not in frame_events and not (event == "object.__getattr__" and args[1] in frame_attrs):
            return
        me = ident()
        if me in busy:
            return
        busy.add(me)
        try:  # refused when notebook code asks while a test's code is on the stack
            caller = getframe(1)
            name = caller.f_code.co_filename
            if name.startswith(cells) or (name.startswith("<") and name != test_file):
                frame = caller
                while frame is not None:
                    if frame.f_code.co_filename == test_file:
                        raise error("the grader does not allow looking at frames while tests run")
                    frame = frame.f_back
        finally:
            busy.discard(me)

    sys.addaudithook(hook)


def frozen_view(module, memo: dict, ModuleType=types.ModuleType, vars=vars, id=id,
                issubclass=issubclass, type=type, list=list):
    """A new module object holding a copy of ``module``'s namespace (its submodules viewed the
    same way): what a test calls through it cannot be patched by the code it tests."""
    view = memo.get(id(module))
    if view is None:
        view = memo[id(module)] = ModuleType(module.__name__)
        top, d = module.__name__.split(".")[0], vars(view)
        for k, v in list(vars(module).items()):
            # type(v), not isinstance: some objects warn when their __class__ is read
            d[k] = frozen_view(v, memo) if issubclass(type(v), ModuleType) and vars(v).get(
                "__name__", "").split(".")[0] == top else v
    return view


def _run(shell, source: str, ns: dict, parse=ast.parse, compile=compile, exec=exec, eval=eval,
         Expr=ast.Expr, Expression=ast.Expression, isinstance=isinstance, test_file=TEST_FILE) -> None:
    tree = parse(source, test_file)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], Expr) else None
    exec(compile(tree, test_file, "exec"), ns)
    if last is not None:
        value = eval(compile(Expression(last.value), test_file, "eval"), ns)
        if value is not None:
            shell.displayhook(value)  # a number here is nbgrader's partial credit


def run_test(kernel, snap: Snapshot, code: str, restore=restore, foreign_threads=foreign_threads,
             run=_run, view=frozen_view, dict=dict, type=type, hidden_mark=HIDDEN, stamp=STAMP,
             BaseException=BaseException, RuntimeError=RuntimeError, isinstance=isinstance,
             missing=_MISSING) -> dict:
    """Run a test cell in restored machinery: its visible part in a copy of the notebook's
    namespace (what it defines is copied back), its hidden part in another copy (nothing it
    defines outlives it), both with the usual module names bound to ``frozen_view``s that the
    code under test cannot reach. The verdict is this function's own ``try``: no hook of the
    submission's sits between the test and it."""
    restore(snap, True)
    parent = kernel.get_parent("shell")
    if isinstance(parent, dict) and isinstance(parent.get("content"), dict):
        parent["content"]["code"] = ""  # the request (hidden tests included) is out of reach
    shell = kernel.shell
    ns = shell.user_ns

    def fresh():  # the notebook's names, the usual module names bound to new frozen views
        copy, memo = dict(ns), {}
        copy.update({n: view(m, memo) for n, m in snap.names})
        return copy

    visible, _, hidden = code.partition(hidden_mark)
    error = None
    threads = foreign_threads(snap)
    if threads:
        error = RuntimeError(f"tests do not run while threads that your code started are alive: {threads}")
    else:
        try:
            local = fresh()
            before = dict(local)
            run(shell, visible, local)
            ns.update({k: v for k, v in local.items() if before.get(k, missing) is not v})  # what it defined
            if hidden:
                run(shell, hidden_mark + hidden, fresh())
        except BaseException as e:  # noqa: BLE001 -- any failure is the test's verdict
            error = e
    restore(snap, True)
    reply = {"status": "ok", "execution_count": shell.execution_count, "user_expressions": {},
             "payload": [], stamp: {"test": error is None}}
    if error is not None:
        shell.showtraceback((type(error), error, error.__traceback__))
        reply.update(status="error", ename=type(error).__name__, evalue=str(error),
                     traceback=[f"{type(error).__name__}: {error}"])
        reply[stamp]["test"] = False
    return reply


class GradingKernel(IPythonKernel):
    """``IPythonKernel`` that puts its machinery back before and after every message and runs
    tests itself. The snapshot lives in ``shell_main.__defaults__``: the message streams hold
    that function since ``start``, and the audit hook refuses to change its defaults or code."""

    async def shell_main(self, subshell_id, msg, _vault=None, _base=IPythonKernel.shell_main,
                         _restore=restore):
        if _vault is not None:
            _restore(_vault, False)  # whatever ran between two messages (a callback, a finalizer)
        try:
            await _base(self, subshell_id, msg)
        finally:
            if _vault is not None:
                _restore(_vault, False)

    def start(self):
        modules = list(BASE) + [m for m in os.environ.pop(MODULES_ENV, "").split(",") if m]
        for name in modules:
            try:
                importlib.import_module(name)
            except ImportError:
                pass
        try:
            import tqdm
            tqdm.tqdm.monitor_interval = 0  # no monitor thread: the kernel starts no thread of its own
        except ImportError:
            pass
        super().start()
        snap = take_snapshot([self, self.shell, sys.stdout, sys.stderr, sys.displayhook], modules)
        GradingKernel.shell_main.__defaults__ = (snap, *GradingKernel.shell_main.__defaults__[1:])
        def classes_of(packages) -> frozenset:
            return frozenset(id(v) for _, _, items in snap.globals for _, v in items
                             if isinstance(v, type) and _top(getattr(v, "__module__", None)) in packages)

        ours = [f for f in [*globals().values(), *vars(GradingKernel).values()] if isinstance(f, types.FunctionType)]
        machinery = frozenset(id(m) for n, m in snap.modules if _top(n) in MACHINERY)  # libraries swap their own
        arm(classes_of(MACHINERY + LIBRARIES) | {id(GradingKernel)}, machinery, frozenset(map(id, ours)),
            classes_of(MACHINERY) | {id(GradingKernel)})

    async def do_execute(self, code, silent, store_history=True, user_expressions=None, allow_stdin=False,
                         _base=IPythonKernel.do_execute, _restore=restore, _run_test=run_test, _vault=shell_main,
                         _threads=foreign_threads, _mark=MARK, _stamp=STAMP, **kwargs):
        snap = _vault.__defaults__[0]
        if code.startswith(_mark):
            reply = _run_test(self, snap, code[len(_mark):])
        else:
            reply = await _base(self, code, silent, store_history, user_expressions, allow_stdin, **kwargs)
            _restore(snap, False)
            reply[_stamp] = {"cell": True}
        threads = _threads(snap)
        if threads:
            reply[_stamp]["threads"] = threads
        return reply


def main() -> None:
    # ignore_cwd: the working directory (where the notebook runs) is not on sys.path, so nothing
    # written there can stand in for a module that tests import.
    IPKernelApp.launch_instance(kernel_class=GradingKernel, ignore_cwd=True)


if __name__ == "__main__":
    main()
