"""Keep a submission from faking its tests by monkey-patching (``torch.allclose = lambda
*a, **k: True``, ``torch.Tensor.mean = ...``, ``sp.simplify = ...``, ``torch = Fake()``,
``helpers.metrics.ssim = ...``).

At autograde time a first cell saves the functions of the modules that tests use, under a
name drawn afresh for each run, and every test cell starts by putting them back, dropping
functions added to ``torch.Tensor`` and rebinding the usual module names. A student who
reads this can still attack it deliberately (e.g. by searching the namespace); it stops the
patches that work against plain nbgrader.
"""
from __future__ import annotations

import secrets

from nbformat.v4 import new_code_cell
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Bool

from .solutions import is_test_cell

BASE = ["builtins", "math", "numpy", "numpy.testing", "torch", "torch.testing"]
# Saved only where the notebook names them (import cost): libraries, and the course's own code
# that hidden tests score with (a patched ``helpers.metrics.ssim`` must not fake a grade).
OPTIONAL = ["sympy", "mpmath", "helpers.metrics", "helpers.classifier", "autograder.evaluate",
            "autograder.conditional"]
NAMES = {"torch": "torch", "np": "numpy", "numpy": "numpy", "math": "math", "sp": "sympy",
         "sympy": "sympy", "mpmath": "mpmath"}

RESTORE = ("(lambda v, s, dl, i, t, c, g, saved, mods: [[s(o, k, f) for o, d in saved for k, f in d.items() "
           "if v(o).get(k) is not f], [dl(o, k) for o, d in saved if i(o, t) for k, f in list(v(o).items()) "
           "if c(f) and k not in d], [g().__setitem__(n, m) for n, m in mods.items() "
           "if n in g() and g()[n] is not m]])(*{store})  # autograder: undo monkey-patching")


def prelude(store: str, modules: list[str]) -> str:
    objects = ", ".join(f"_m[{m!r}]" for m in modules) + ", _m['torch'].Tensor"
    names = {n: m for n, m in NAMES.items() if m in modules}
    return (f"import importlib as _il\n_m = {{n: _il.import_module(n) for n in {modules!r}}}\n"
            f"{store} = (vars, setattr, delattr, isinstance, type, callable, globals,\n"
            f"    [(o, {{k: v for k, v in vars(o).items() if callable(v) or type(v) is type(_il)}})\n"
            f"     for o in ({objects})],\n"
            f"    {{n: _m[m] for n, m in {names!r}.items()}})\n"
            "del _il, _m  # autograder: trusted copies of the functions tests use")


class GuardTests(NbGraderPreprocessor):
    """Insert the saving cell first and the restoring line at the top of every test cell."""

    enabled = Bool(True).tag(config=True)

    def preprocess(self, nb, resources):
        store = f"_autograder_{secrets.token_hex(8)}"
        text = "\n".join(c.source for c in nb.cells)
        modules = BASE + [m for m in OPTIONAL if m.rsplit(".", 1)[-1] in text]
        for cell in nb.cells:
            if is_test_cell(cell):
                cell.source = RESTORE.format(store=store) + "\n" + cell.source
        nb.cells.insert(0, new_code_cell(prelude(store, modules)))
        return nb, resources
