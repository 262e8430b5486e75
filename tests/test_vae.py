"""Notebook 02 (VAE): its tests tell right from wrong, and the trusted evaluator is the judge.

In-process: a test cell of the source notebook (hidden tests included; their markers are
comments) runs in the reference namespace from ``load_solution`` with one function replaced
by a planted mistake (the cell must raise) or by another correct implementation (it must pass).
Through nbgrader: two submissions whose own loss looks *better* than the reference's; the
quality test, scored by ``autograder.evaluate``, must fail them.
"""
from __future__ import annotations

from functools import partial

import pytest
import torch

from autograder import evaluate as trusted
from autograder.solutions import cell_source, load_solution
from planted import assert_graded, with_answer

AID = "02_vae"


def cell(gid: str) -> str:
    return cell_source(AID, gid)


def run_test_cell(ns: dict, gid: str) -> None:
    exec(compile(cell(gid), f"<{AID} {gid}>", "exec"), dict(ns))


check = partial(assert_graded, AID)  # check(ns, gid, answer, right)


@pytest.fixture(scope="module")
def functions():
    torch.manual_seed(0)
    return load_solution(AID, until="negative_elbo_bound")


@pytest.fixture(scope="module")
def trained():
    """Everything up to the Gaussian-decoder cell, trained with the grading budget."""
    return load_solution(AID, until="gaussian_vae")


SAMPLER = "def sample_gaussian(m, v):\n    return {}\n"
SAMPLERS = {
    "reference": (True, None),
    "torch.distributions": (True, "torch.distributions.Normal(m, v.sqrt()).rsample()"),
    "noise first": (True, "torch.randn_like(v) * torch.sqrt(v) + m"),
    "uniform noise": (False, "m + v.sqrt() * torch.rand_like(m)"),
    "uniform noise, unit variance": (False, "m + v.sqrt() * (torch.rand_like(m) - 0.5) * 12 ** 0.5"),
    "v as standard deviation": (False, "m + v * torch.randn_like(m)"),
    "v as log-variance": (False, "m + torch.exp(0.5 * v) * torch.randn_like(m)"),
    "detached": (False, "(m + v.sqrt() * torch.randn_like(m)).detach()"),
    "no noise": (False, "m + 0 * v"),
    "same noise every call": (False, "m + v.sqrt() * torch.randn(m.shape, generator=torch.Generator().manual_seed(0))"),
    "one noise value per row": (False, "m + v.sqrt() * torch.randn(*m.shape[:-1], 1)"),
    "in place": (False, "m.add_(v.sqrt() * torch.randn_like(m))"),
}


@pytest.mark.parametrize("name", SAMPLERS)
def test_sample_gaussian_cell(functions, name):
    right, expr = SAMPLERS[name]
    src = cell("sample_gaussian") if expr is None else SAMPLER.format(expr)
    check(functions, "test_sample_gaussian", src, right)


BERNOULLI = "def log_bernoulli_with_logits(x, logits):\n    return {}\n"
BERNOULLIS = {
    "reference": (True, None),
    "torch.distributions": (True, "torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)"),
    "logsigmoid": (True, "(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)"),
    "mean over pixels": (False, "-F.binary_cross_entropy_with_logits(logits, x, reduction='none').mean(-1)"),
    "sum over everything": (False, "-F.binary_cross_entropy_with_logits(logits, x, reduction='sum')"),
    "arguments swapped": (False, "-F.binary_cross_entropy_with_logits(x, logits, reduction='none').sum(-1)"),
    "naive log of sigmoid": (False, "(x * torch.log(torch.sigmoid(logits)) + (1 - x) * torch.log(1 - torch.sigmoid(logits))).sum(-1)"),
    "clamped probabilities": (False, "(lambda p: (x * p.log() + (1 - x) * (1 - p).log()).sum(-1))(torch.sigmoid(logits).clamp(1e-7, 1 - 1e-7))"),
    "positive (a loss, not a log-likelihood)": (False, "F.binary_cross_entropy_with_logits(logits, x, reduction='none').sum(-1)"),
}


@pytest.mark.parametrize("name", BERNOULLIS)
def test_log_bernoulli_cell(functions, name):
    right, expr = BERNOULLIS[name]
    src = cell("log_bernoulli_with_logits") if expr is None else BERNOULLI.format(expr)
    check(functions, "test_log_bernoulli", src, right)


NELBO = """
class VAE(VAEBase):
    def negative_elbo_bound(self, x):
        m, v = self.enc.encode(x)
{}
"""
REFERENCE_BODY = """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v)
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v)))
        return kl.mean() + rec.mean(), kl.mean(), rec.mean()
"""
NELBOS = {
    "reference": (True, None),
    "torch.distributions": (True, """
        q = torch.distributions.Normal(m, v.sqrt())
        p = torch.distributions.Normal(self.z_prior_m, self.z_prior_v.sqrt())
        kl = torch.distributions.kl_divergence(q, p).sum(-1).mean()
        rec = -torch.distributions.Bernoulli(logits=self.dec.decode(q.rsample())).log_prob(x).sum(-1).mean()
        return kl + rec, kl, rec
"""),
    "KL against N(0, I) written out (the model's prior is N(0, I))": (True, """
        kl = 0.5 * (m.pow(2) + v - 1 - v.log()).sum(-1).mean()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean()
        return kl + rec, kl, rec
"""),
    "sum over the batch": (False, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).sum()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).sum()
        return kl + rec, kl, rec
"""),
    "decodes the mean, no sample": (False, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(m)).mean()
        return kl + rec, kl, rec
"""),
    "detached sample": (False, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v).detach())).mean()
        return kl + rec, kl, rec
"""),
    "rec averaged over pixels": (False, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean() / 784
        return kl + rec, kl, rec
"""),
    "KL with v as standard deviation": (False, """
        kl = kl_normal(m, v ** 2, self.z_prior_m, self.z_prior_v).mean()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean()
        return kl + rec, kl, rec
"""),
    "python floats": (False, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean().item()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean().item()
        return kl + rec, kl, rec
"""),
    "ELBO instead of its negative": (False, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean()
        return -(kl + rec), kl, rec
"""),
}


@pytest.mark.parametrize("name", NELBOS)
def test_negative_elbo_bound_cell(functions, name):
    right, body = NELBOS[name]
    src = cell("negative_elbo_bound") if body is None else NELBO.format(body)
    check(functions, "test_negative_elbo_bound", src, right)


def test_reference_body_is_a_correct_variant(functions):
    check(functions, "test_negative_elbo_bound", NELBO.format(REFERENCE_BODY), True)


IWAE = """
def negative_iwae_bound(self, x, iw):
    m, v = self.enc.encode(x)
    m, v = m.expand(iw, *m.shape), v.expand(iw, *v.shape)
    z = sample_gaussian(m, v)
    log_px_z = log_bernoulli_with_logits(x.expand(iw, *x.shape), self.dec.decode(z))
    log_pz, log_qz = log_normal(z, self.z_prior_m, self.z_prior_v), log_normal(z, m, v)
    log_w = log_px_z + log_pz - log_qz
{}
VAE.negative_iwae_bound = negative_iwae_bound
"""
IWAES = {
    "reference": (True, None),
    "log of the mean of the weights, by hand": (True, """
    top = log_w.max(0).values
    niwae = -(top + (log_w - top).exp().mean(0).log()).mean()
    return niwae, (log_qz - log_pz).mean(), -log_px_z.mean()
"""),
    "mean of the log-weights (the ELBO)": (False, """
    return -log_w.mean(), (log_qz - log_pz).mean(), -log_px_z.mean()
"""),
    "logsumexp without log k": (False, """
    return -torch.logsumexp(log_w, 0).mean(), (log_qz - log_pz).mean(), -log_px_z.mean()
"""),
    "sum over the batch": (False, """
    niwae = -(torch.logsumexp(log_w, 0) - math.log(iw)).sum()
    return niwae, (log_qz - log_pz).mean(), -log_px_z.mean()
"""),
}


@pytest.mark.parametrize("name", IWAES)
def test_negative_iwae_bound_cell(trained, name):
    right, body = IWAES[name]
    src = cell("negative_iwae_bound") if body is None else IWAE.format(body)
    check(trained, "test_negative_iwae_bound", src, right)


GAUSSIAN_WRONG = {
    "var as standard deviation": "-0.5 * ((x - mean) ** 2 / var ** 2 + math.log(2 * math.pi * var ** 2)).sum(-1)",
    "no normalising constant": "-0.5 * ((x - mean) ** 2 / var).sum(-1)",
}


@pytest.mark.parametrize("name", [None, "torch.distributions", *GAUSSIAN_WRONG])
def test_gaussian_vae_cell(trained, name):
    src = cell("gaussian_vae")
    body = src.split("### BEGIN SOLUTION")[1].split("### END SOLUTION")[0]
    if name == "torch.distributions":
        src = src.replace(body, "\n    return torch.distributions.Normal(mean, var ** 0.5).log_prob(x).sum(-1)\n    ", 1)
    elif name:
        src = src.replace(body, f"\n    return {GAUSSIAN_WRONG[name]}\n    ", 1)
    check(trained, "test_gaussian_vae", src, right=name in (None, "torch.distributions"))


def test_quality_cell_passes_the_reference(trained, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # the grading threshold
    run_test_cell(trained, "test_quality")


def test_trusted_evaluator_ignores_the_students_loss(functions):
    """The evaluator uses only enc, dec and the prior: a loss that lies changes nothing."""
    torch.manual_seed(0)
    model = functions["VAE"](z_dim=10)
    before = trusted.nelbo(model, repeat=20)
    liar = with_answer(functions, """
    class Liar(VAE):
        def negative_elbo_bound(self, x):
            zero = torch.zeros(())
            return zero, zero, zero
    """)["Liar"](z_dim=10)
    liar.load_state_dict(model.state_dict())
    assert trusted.nelbo(liar, repeat=20) == before
    assert trusted.nelbo(model, repeat=20) == before, "seeded: the same numbers every call"
    assert 500 < before[0] < 600 and before[1] >= 0, f"an untrained VAE's NELBO is about 545, got {before}"


def test_trusted_evaluator_agrees_with_the_reference_loss(trained):
    """On the trained model, the course's evaluation and the reference loss estimate the same bound,
    and the IWAE bounds decrease with k towards a value below the NELBO."""
    from helpers.train import evaluate_lower_bound

    model = trained["model"]
    mine = evaluate_lower_bound(model, trained["x_subset"], repeat=100)
    theirs = trusted.nelbo(model, repeat=100)
    assert abs(mine[1] - theirs[1]) < 1e-3, "the KL is exact in both"
    assert abs(mine[0] - theirs[0]) < 0.5, f"{mine} vs {theirs}"
    x = trusted.test_images()[::4]
    bounds = [trusted.negative_iwae(model, k, x) for k in (1, 10, 100)]
    assert bounds[0] > bounds[1] > bounds[2], bounds


def test_grading_budget_is_short(trained):
    assert trained["ITERATIONS"] <= 2_000


# --- through nbgrader: each mistake makes the student's own NELBO look better ----------------

NO_NOISE = "def sample_gaussian(m, v):\n    return m + 0 * v\n"
MEAN_LIKELIHOOD = BERNOULLI.format("-F.binary_cross_entropy_with_logits(logits, x, reduction='none').mean(-1)")


@pytest.mark.parametrize("student, overrides, lost", [
    ("no_noise", {"sample_gaussian": NO_NOISE}, "test_sample_gaussian"),
    ("mean_likelihood", {"log_bernoulli_with_logits": MEAN_LIKELIHOOD}, "test_log_bernoulli"),
])
def test_quality_test_uses_the_trusted_evaluator(grade_planted, student, overrides, lost):
    score, cells = grade_planted(AID, student, overrides)
    assert cells["test_quality"] == 0, "the quality test must fail a model trained with this mistake"
    assert cells[lost] == 0
    assert cells["test_kl_normal"] == 1, "independent cells keep their points"
    assert 0 < score.auto < score.auto_max


def test_runs_cell_reports_every_metric_and_shows_the_grids_side_by_side(functions, tmp_path, monkeypatch):
    """The full-run-only cell (section 8), on tiny budgets: mean +- SE of NELBO, KL and Rec per
    budget, and one sample grid per budget saved and shown."""
    import matplotlib
    matplotlib.use("Agg")
    from helpers import data, runtime
    src = cell("runs").replace("RUN_ITERATIONS, RUN_SEEDS = (10_000, 20_000), range(3)",
                               "RUN_ITERATIONS, RUN_SEEDS = (3, 6), range(2)")
    assert src != cell("runs")
    monkeypatch.setattr(runtime, "grading", lambda: False)
    x_subset = data.fixed_test_subset("mnist")[0]
    ns = dict(functions, RESULTS=tmp_path, x_train=data.load("mnist", "train")[0], x_subset=x_subset)
    run_output = []
    monkeypatch.setattr("builtins.print", lambda *a, **k: run_output.append(" ".join(map(str, a))))
    exec(compile(src, "<runs>", "exec"), ns)
    assert len(run_output) == 2 and all(all(k in line for k in ("NELBO", "KL", "Rec", "+-")) for line in run_output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vae_samples_3.png", "vae_samples_6.png"]
