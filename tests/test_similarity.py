"""Similarity between submissions (``autograder.reports.similarity``) on a planted class of notebook 02.

Planted: one student answers every cell with the reference solution; four others hand in copies
of it with the variables renamed, with statements reordered, with other comments, and with all
three at once. A fifth student writes their own answers to four cells and is copied (renamed,
reordered, recommented) by a sixth. Two more write their own answers to the same four cells, and
three answer only ``sample_gaussian``, each differently. Copies must be listed, independent work
must not; precision and recall over all pairs are printed (README, "After grading").
"""
from __future__ import annotations

import itertools
import re
import textwrap

import nbformat
import pytest

from autograder.reports import similarity
from autograder.course import submissions
from autograder.course.config import REPO
from autograder.course.course import Course
from autograder.course.cells import grade_id, is_solution_cell
from autograder.course.solutions import load_solution
from planted import assert_graded

AID = "02_vae"
STUB = re.compile(r"^( *)# YOUR CODE HERE\n *raise NotImplementedError\(\)", re.M)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)\n *### END SOLUTION", re.S)

# Three students' own answers (bodies of the functions; each passes the course's tests).
OWN = {
    "ines": {
        "kl_normal": """\
            # closed form, per dimension
            log_ratio = pv.log() - qv.log()
            term = (qv + (qm - pm) ** 2) / pv
            return 0.5 * torch.sum(log_ratio + term - 1.0, dim=-1)""",
        "sample_gaussian": """\
            eps = torch.randn_like(v)
            std = v.sqrt()
            return eps * std + m""",
        "log_bernoulli_with_logits": """\
            # x log sigmoid(l) + (1 - x) log sigmoid(-l)
            ll = x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)
            return ll.sum(dim=-1)""",
        "negative_elbo_bound": """\
            qm, qv = self.enc.encode(x)
            z_sample = sample_gaussian(qm, qv)
            logits = self.dec.decode(z_sample)
            rec_per_image = -log_bernoulli_with_logits(x, logits)
            kl_per_image = kl_normal(qm, qv, self.z_prior_m, self.z_prior_v)
            nelbo = (rec_per_image + kl_per_image).mean()
            return nelbo, kl_per_image.mean(), rec_per_image.mean()""",
    },
    "jon": {
        "kl_normal": """\
            var_ratio = qv / pv
            mean_term = torch.square(qm - pm) / pv
            kl = var_ratio + mean_term - 1 - torch.log(var_ratio)
            return kl.sum(-1) / 2""",
        "sample_gaussian": """\
            noise = torch.normal(torch.zeros_like(m), torch.ones_like(m))
            return m + noise * v ** 0.5""",
        "log_bernoulli_with_logits": """\
            return -torch.nn.functional.softplus(-logits).mul(x).add(F.softplus(logits).mul(1 - x)).sum(-1)""",
        "negative_elbo_bound": """\
            mu, var = self.enc.encode(x)
            out = self.dec.decode(sample_gaussian(mu, var))
            kl = torch.mean(kl_normal(mu, var, self.z_prior_m, self.z_prior_v))
            rec = torch.mean(-log_bernoulli_with_logits(x, out))
            return rec + kl, kl, rec""",
    },
    "kim": {
        "kl_normal": """\
            q = torch.distributions.Normal(qm, qv.sqrt())
            p = torch.distributions.Normal(pm.expand_as(qm), pv.sqrt().expand_as(qm))
            return torch.distributions.kl_divergence(q, p).sum(-1)""",
        "sample_gaussian": """\
            std = torch.exp(0.5 * torch.log(v))
            return torch.addcmul(m, std, torch.randn(m.shape))""",
        "log_bernoulli_with_logits": """\
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction='none')
            return -loss.sum(dim=-1)""",
        "negative_elbo_bound": """\
            batch = x.shape[0]
            mean, variance = self.enc.encode(x)
            sample = mean + variance.sqrt() * torch.randn_like(mean)
            log_px = log_bernoulli_with_logits(x, self.dec.decode(sample))
            kl_terms = kl_normal(mean, variance, self.z_prior_m, self.z_prior_v)
            kl_avg, rec_avg = kl_terms.sum() / batch, -log_px.sum() / batch
            return kl_avg + rec_avg, kl_avg, rec_avg""",
    },
}
# Students who wrote only sample_gaussian, three ways (the rest left as released).
ONLY_SAMPLER = {
    "lea": "return m + torch.sqrt(v) * torch.randn_like(m)",
    "max": "return torch.distributions.Normal(m, v.sqrt()).rsample()",
    "noa": "z = torch.randn_like(v) * torch.sqrt(v)\nreturn z + m",
}

# How copies are disguised.
RENAMES = {"z": "z_s", "kl": "kl_term", "rec": "recon", "element_wise": "per_dim", "log_w": "log_weights",
           "niwae": "bound", "x_mean": "x_hat", "z_sample": "code", "ll": "log_lik",
           "rec_per_image": "rec_each", "kl_per_image": "kl_each", "nelbo": "loss"}
# Pairs of independent statements that trade places (by how each line starts).
SWAPS = [("kl = ", "z = "), ("log_px_z = ", "log_pz, log_qz = "), ("kl = ", "x_mean = "),
         ("rec_per_image = ", "kl_per_image = "), ("eps = ", "std = ")]


def rename(code: str) -> str:
    """Local variables renamed (the function's parameters stay, so the copy still runs)."""
    return re.sub(r"(?<![\w.])[A-Za-z_]\w*", lambda m: RENAMES.get(m.group(0), m.group(0)), code)


def recomment(code: str) -> str:
    """The comments replaced by others (no ``#`` in these bodies' strings)."""
    lines = [code for ln in code.splitlines() if (code := ln.split("#")[0].rstrip())]
    return "\n".join(f"{ln}  # step {i + 1}" for i, ln in enumerate(lines))


def reorder(code: str) -> str:
    lines = code.splitlines()
    for a, b in SWAPS:
        i = next((i for i, ln in enumerate(lines) if ln.lstrip().startswith(a)), None)
        j = next((j for j, ln in enumerate(lines) if ln.lstrip().startswith(b)), None)
        if i is not None and j is not None:
            lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def disguise(bodies: dict[str, list[str]], *how) -> dict[str, list[str]]:
    """``bodies`` passed through each of ``how`` (rename, reorder, recomment) in turn."""
    def apply(body: str) -> str:
        for f in how:
            body = f(body)
        return body
    return {gid: [apply(b) for b in parts] for gid, parts in bodies.items()}


def fill(stub: str, bodies: list[str]) -> str:
    """A released cell with its ``YOUR CODE HERE`` stubs replaced by ``bodies``, in order."""
    parts = iter(bodies)
    return STUB.sub(lambda m: textwrap.indent(next(parts), m.group(1)), stub)


def reference_bodies() -> dict[str, list[str]]:
    nb = nbformat.read(REPO / "notebooks" / AID / f"{AID}.ipynb", as_version=4)
    return {grade_id(c): [textwrap.dedent(b) for b in SOLUTION.findall(c.source)]
            for c in nb.cells if c.cell_type == "code" and is_solution_cell(c)}


def answered_cells(released, bodies: dict[str, list[str]]) -> dict[str, str]:
    """``grade_id -> full cell source`` for the cells answered in ``bodies``."""
    stubs = {grade_id(c): c.source for c in nbformat.read(released, as_version=4).cells}
    return {gid: fill(stubs[gid], parts) for gid, parts in bodies.items()}


def own(student: str) -> dict[str, list[str]]:
    return {gid: [textwrap.dedent(body)] for gid, body in OWN[student].items()}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The course with the planted submissions, and ``{student: family}`` (copies share one)."""
    course = Course(tmp_path_factory.mktemp("similarity"), notebooks=REPO / "notebooks")
    released = course.release(AID)
    ref = reference_bodies()
    classes = {
        "ada": (ref, "reference"),
        "ben": (disguise(ref, rename), "reference"),
        "cy": (disguise(ref, reorder), "reference"),
        "dora": (disguise(ref, recomment), "reference"),
        "eli": (disguise(ref, reorder, rename, recomment), "reference"),
        "ines": (own("ines"), "ines"),
        "ivo": (disguise(own("ines"), reorder, rename, recomment), "ines"),
        "jon": (own("jon"), "jon"),
        "kim": (own("kim"), "kim"),
        **{s: ({"sample_gaussian": [body]}, s) for s, body in ONLY_SAMPLER.items()},
    }
    for student, (bodies, _) in classes.items():
        submissions.write(answer(released, answered_cells(released, bodies)), course.root / "submitted",
                          student, AID)
    return course, {s: family for s, (_, family) in classes.items()}


def answer(released, cells: dict[str, str]):
    """The released notebook with ``cells`` (grade_id -> source) put in; the rest as released."""
    nb = nbformat.read(released, as_version=4)
    for cell in nb.cells:
        cell.source = cells.get(grade_id(cell), cell.source)
    return nb


def test_the_independent_answers_are_correct(tmp_path):
    """The planted independent work passes notebook 02's own tests (hidden ones included)."""
    course = Course(tmp_path, notebooks=REPO / "notebooks")
    released = course.release(AID)
    ns = load_solution(AID, until="negative_elbo_bound")
    tests = {"kl_normal": "test_kl_normal", "sample_gaussian": "test_sample_gaussian",
             "log_bernoulli_with_logits": "test_log_bernoulli", "negative_elbo_bound": "test_negative_elbo_bound"}
    for student in OWN:
        for gid, source in answered_cells(released, own(student)).items():
            assert_graded(AID, ns, tests[gid], source, right=True)
    for student, body in ONLY_SAMPLER.items():
        source = answered_cells(released, {"sample_gaussian": [body]})["sample_gaussian"]
        assert_graded(AID, ns, "test_sample_gaussian", source, right=True)


def test_solution_text_keeps_only_what_the_student_wrote(planted):
    course, _ = planted
    stub = nbformat.read(course.released(AID), as_version=4)
    nb = nbformat.read(similarity.submitted_notebook(course, "noa", AID), as_version=4)
    assert similarity.solution_text(nb, stub) == (
        "# sample_gaussian\n    z = torch.randn_like(v) * torch.sqrt(v)\n    return z + m")
    assert similarity.solution_text(stub, stub) == ""          # the release itself: nothing written
    ada = similarity.solution_text(nbformat.read(similarity.submitted_notebook(course, "ada", AID),
                                                 as_version=4), stub)
    assert "def sample_gaussian" not in ada and "NotImplementedError" not in ada
    assert "VAE.negative_iwae_bound = negative_iwae_bound" not in ada   # given code, not the student's
    assert "torch.randn_like(m)" in ada and "# negative_iwae_bound" in ada


def test_copies_are_flagged_and_independent_work_is_not(planted):
    course, family = planted
    pairs = similarity.similar_pairs(course, AID)
    flagged = {frozenset((p.a, p.b)) for p in pairs}
    truth = {frozenset((a, b)) for a, b in itertools.combinations(family, 2) if family[a] == family[b]}
    hits = len(flagged & truth)
    precision, recall = hits / max(1, len(flagged)), hits / len(truth)
    found = {frozenset((p.a, p.b)): p.similarity for p in pairs}
    print(f"\nplanted set: {len(family)} students, {len(truth)} copied pairs of "
          f"{len(family) * (len(family) - 1) // 2}; flagged {len(flagged)} at threshold "
          f"{similarity.THRESHOLD}: precision {precision:.2f}, recall {recall:.2f}; "
          f"lowest copied pair {min(found.get(t, 0) for t in truth):.2f}")
    texts = _texts(course)
    every = similarity.compare(texts, threshold=0.0)
    negatives = [p.similarity for p in every if frozenset((p.a, p.b)) not in truth]
    print(f"highest similarity of independent work: {max(negatives, default=0):.2f}")
    assert recall == 1.0, f"copies missed: {sorted(map(sorted, truth - flagged))}"
    assert precision == 1.0, f"independent work flagged: {sorted(map(sorted, flagged - truth))}"
    ben = next(p for p in pairs if {p.a, p.b} == {"ada", "ben"})
    assert "<mark>" in ben.left and "<mark>" in ben.right     # the shared code is marked on both sides
    assert ben.similarity > 0.9                                  # renaming alone changes nothing


def _texts(course: Course) -> dict[str, str]:
    stub = nbformat.read(course.released(AID), as_version=4)
    folder = course.root / "submitted"
    return {p.name: similarity.solution_text(nbformat.read(similarity.submitted_notebook(course, p.name, AID),
                                                           as_version=4), stub) for p in folder.iterdir()}


def test_each_disguise_changes_the_text(planted):
    course, _ = planted
    texts = _texts(course)
    for copy in ("ben", "cy", "dora", "eli"):
        assert texts[copy] != texts["ada"], copy
    assert "z_s = sample_gaussian(m, v)" in texts["ben"]                       # renamed
    assert texts["cy"].index("z = sample_gaussian") < texts["cy"].index("kl = kl_normal")   # reordered
    assert "# step 1" in texts["dora"] and "# step 1" not in texts["ada"]      # other comments


def test_code_the_stub_gives_is_no_evidence():
    """Given code kept by two students, wrapped differently (so no line equals the stub's), is
    matched by the stub's fingerprints and ignored."""
    given = ("def f(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:\n"
             "    return helper(m, v, scale=2.0, shift=torch.zeros(3))")
    texts = {"a": "def f(m: torch.Tensor,\n      v: torch.Tensor) -> torch.Tensor:\n"
                  "    return helper(m, v, scale=2.0, shift=torch.zeros(3))",
             "b": "def f(\n    m: torch.Tensor, v: torch.Tensor\n) -> torch.Tensor:\n"
                  "    return helper(m, v,\n                  scale=2.0, shift=torch.zeros(3))"}
    assert [(p.a, p.b) for p in similarity.compare(texts)] == [("a", "b")]
    assert similarity.compare(texts, stub=given) == []
