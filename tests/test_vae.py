"""Notebook 02 (VAE): its tests tell right from wrong, and the trusted evaluator is the judge.

In-process (``PLANTED``): a test cell of the source notebook (hidden tests included; their
markers are comments) runs in the reference namespace from ``load_solution`` after a student's
cell: a planted mistake must lose the test's points, another correct implementation must keep
them. Through nbgrader: two submissions whose own loss looks *better* than the reference's; the
quality test, scored by ``autograder.evaluators.evaluate``, must fail them.
"""
from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from autograder.evaluators import evaluate as trusted
from autograder.course.solutions import cell_source, load_solution
from planted import Table, answers, assert_graded, own_solution, params, stderr_of, with_answer
from test_kl_elbo import KL_NORMALS

AID = "02_vae"
UNTIL = "negative_elbo_bound"  # the `solution` fixture (conftest): the notebook up to this cell


# --- kl_normal ---------------------------------------------------------------------------------

# the same contract as notebook 00's kl_normal: one table for both (tests/test_kl_elbo.py)

# --- sample_gaussian ---------------------------------------------------------------------------

SAMPLER = "def sample_gaussian(m, v):\n    {}\n"
SAMPLERS = answers(SAMPLER, {
    "torch.distributions": (True, "return torch.distributions.Normal(m, v.sqrt()).rsample()"),
    "noise first": (True, "return torch.randn_like(v) * torch.sqrt(v) + m"),
    "noise from torch.randn(m.shape)": (True, "return m + v ** 0.5 * torch.randn(m.shape, dtype=m.dtype)"),
    "noise drawn under no_grad": (True, "with torch.no_grad():\n        eps = torch.randn_like(m)\n    return m + v.sqrt() * eps"),
    "in place on its own noise": (True, "eps = torch.randn_like(m)\n    return eps.mul_(v.sqrt()).add_(m)"),
    "uniform noise": (False, "return m + v.sqrt() * torch.rand_like(m)"),
    "uniform noise, unit variance": (False, "return m + v.sqrt() * (torch.rand_like(m) - 0.5) * 12 ** 0.5"),
    "truncated noise (clamped to +-2)": (False, "return m + v.sqrt() * torch.randn_like(m).clamp(-2, 2)"),
    "v as standard deviation": (False, "return m + v * torch.randn_like(m)"),
    "v as log-variance": (False, "return m + torch.exp(0.5 * v) * torch.randn_like(m)"),
    "forgets the mean": (False, "return v.sqrt() * torch.randn_like(m)"),
    "detached": (False, "return (m + v.sqrt() * torch.randn_like(m)).detach()"),
    "detached mean": (False, "return m.detach() + v.sqrt() * torch.randn_like(m)"),
    "Normal.sample (not rsample)": (False, "return torch.distributions.Normal(m, v.sqrt()).sample()"),
    "torch.normal (no gradient to m or v)": (False, "return torch.normal(m, v.sqrt())"),
    "no noise": (False, "return m + 0 * v"),
    "same noise every call": (False, "return m + v.sqrt() * torch.randn(m.shape, generator=torch.Generator().manual_seed(0))"),
    "reseeds the global generator": (False, "torch.manual_seed(0)\n    return m + v.sqrt() * torch.randn_like(m)"),
    "one noise value per row": (False, "return m + v.sqrt() * torch.randn(*m.shape[:-1], 1)"),
    "one noise vector for the whole batch": (False, "return m + v.sqrt() * torch.randn(m.shape[-1])"),
    "float32 whatever the input": (False, "return (m + v.sqrt() * torch.randn_like(m)).float()"),
    "in place": (False, "return m.add_(v.sqrt() * torch.randn_like(m))"),
})

# --- log_bernoulli_with_logits -----------------------------------------------------------------

BERNOULLI = "def log_bernoulli_with_logits(x, logits):\n    {}\n"
BCE = "F.binary_cross_entropy_with_logits(logits, x, reduction='none')"
BERNOULLIS = answers(BERNOULLI, {
    "torch.distributions": (True, "return torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)"),
    "logsigmoid": (True, "return (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1)"),
    "x * logits - softplus(logits)": (True, "return (x * logits - F.softplus(logits)).sum(-1)"),
    "mean over pixels": (False, f"return -{BCE}.mean(-1)"),
    "sum over everything": (False, "return -F.binary_cross_entropy_with_logits(logits, x, reduction='sum')"),
    "batch mean already taken": (False, f"return -{BCE}.sum(-1).mean()"),
    "flattened to (rows, pixels)": (False, f"return -{BCE}.reshape(-1, x.shape[-1]).sum(-1)"),
    "sum over the first dimension": (False, f"return -{BCE}.sum(0)"),
    "arguments swapped": (False, "return -F.binary_cross_entropy_with_logits(x, logits, reduction='none').sum(-1)"),
    "naive log of sigmoid": (False, "return (x * torch.log(torch.sigmoid(logits)) + (1 - x) * torch.log(1 - torch.sigmoid(logits))).sum(-1)"),
    "clamped probabilities": (False, "p = torch.sigmoid(logits).clamp(1e-7, 1 - 1e-7)\n"
                                     "    return (x * p.log() + (1 - x) * (1 - p).log()).sum(-1)"),
    "binary_cross_entropy of the sigmoid (log clamped at -100)": (
        False, "return -F.binary_cross_entropy(torch.sigmoid(logits), x, reduction='none').sum(-1)"),
    "forgets the (1 - x) term": (False, "return (x * F.logsigmoid(logits)).sum(-1)"),
    "log with an epsilon": (False, "p = torch.sigmoid(logits)\n"
                                   "    return (x * torch.log(p + 1e-8) + (1 - x) * torch.log(1 - p + 1e-8)).sum(-1)"),
    "softplus with the wrong sign": (False, "return (x * logits + F.softplus(-logits)).sum(-1)"),
    "positive (a loss, not a log-likelihood)": (False, f"return {BCE}.sum(-1)"),
    "float64": (False, f"return -{BCE}.double().sum(-1)"),
    "detached": (False, f"return -{BCE}.sum(-1).detach()"),
    "sigmoid of the logits in place": (False, "p = logits.sigmoid_()\n"
                                              "    return (x * p.log() + (1 - x) * (1 - p).log()).sum(-1)"),
})

# --- VAE.negative_elbo_bound -------------------------------------------------------------------

NELBO = """
class VAE(VAEBase):
    def negative_elbo_bound(self, x):
        m, v = self.enc.encode(x)
{}
"""
KL_TERM = "        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()\n"
RETURN = "        return kl + rec, kl, rec\n"


def rec_line(expr: str) -> str:
    return f"{KL_TERM}        rec = {expr}\n{RETURN}"


NELBOS = answers(NELBO, {
    "written with the notebook's helpers": (True, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v)
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v)))
        return kl.mean() + rec.mean(), kl.mean(), rec.mean()
"""),
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
    "binary_cross_entropy_with_logits summed, divided by the batch size": (True, rec_line(
        "F.binary_cross_entropy_with_logits(self.dec.decode(sample_gaussian(m, v)), x, reduction='sum') / len(x)")),
    "sum over the batch": (False, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).sum()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).sum()
        return kl + rec, kl, rec
"""),
    "per-image kl and rec (not averaged)": (False, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v)
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v)))
        return (kl + rec).mean(), kl, rec
"""),
    "decodes the mean, no sample": (False, rec_line("-log_bernoulli_with_logits(x, self.dec.decode(m)).mean()")),
    "decodes a sample of the prior, not of q": (False, rec_line(
        "-log_bernoulli_with_logits(x, self.dec.decode(torch.randn_like(m))).mean()")),
    "same noise every call (reseeded)": (False, rec_line(
        "-log_bernoulli_with_logits(x, self.dec.decode(m + v.sqrt() * torch.randn(m.shape, generator=torch.Generator().manual_seed(0)))).mean()")),
    "detached sample": (False, rec_line("-log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v).detach())).mean()")),
    "sample with v as standard deviation": (False, rec_line(
        "-log_bernoulli_with_logits(x, self.dec.decode(m + v * torch.randn_like(m))).mean()")),
    "probabilities passed as logits": (False, rec_line(
        "-log_bernoulli_with_logits(x, torch.sigmoid(self.dec.decode(sample_gaussian(m, v)))).mean()")),
    "rec averaged over pixels": (False, rec_line("-log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean() / 784")),
    "rec is the log-likelihood (sign)": (False, rec_line("log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean()")),
    "KL with v as standard deviation": (False, """
        kl = kl_normal(m, v ** 2, self.z_prior_m, self.z_prior_v).mean()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean()
        return kl + rec, kl, rec
"""),
    "KL with the standard deviation passed as variance": (False, """
        kl = kl_normal(m, v.sqrt(), self.z_prior_m, self.z_prior_v).mean()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean()
        return kl + rec, kl, rec
"""),
    "KL(p || q), the arguments reversed": (False, """
        kl = kl_normal(self.z_prior_m, self.z_prior_v, m, v).mean()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean()
        return kl + rec, kl, rec
"""),
    "python floats": (False, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean().item()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean().item()
        return kl + rec, kl, rec
"""),
    "under torch.no_grad()": (False, """
        with torch.no_grad():
            kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()
            rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean()
        return kl + rec, kl, rec
"""),
    "ELBO instead of its negative": (False, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean()
        return -(kl + rec), kl, rec
"""),
    "returns (kl, rec, nelbo)": (False, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean()
        return kl, rec, kl + rec
"""),
})

# --- VAE.negative_iwae_bound (on the model trained in the notebook) ----------------------------

IWAE = "def negative_iwae_bound(self, x, iw):\n{}\nVAE.negative_iwae_bound = negative_iwae_bound\n"
WEIGHTS = """
    m, v = self.enc.encode(x)
    m, v = m.expand(iw, *m.shape), v.expand(iw, *v.shape)
    z = sample_gaussian(m, v)
    log_px_z = log_bernoulli_with_logits(x.expand(iw, *x.shape), self.dec.decode(z))
    log_pz, log_qz = log_normal(z, self.z_prior_m, self.z_prior_v), log_normal(z, m, v)
    log_w = log_px_z + log_pz - log_qz
"""
TERMS_OUT = "(log_qz - log_pz).mean(), -log_px_z.mean()"
IWAES = answers(IWAE, {
    "log of the mean of the weights, by hand": (True, WEIGHTS + f"""
    top = log_w.max(0).values
    niwae = -(top + (log_w - top).exp().mean(0).log()).mean()
    return niwae, {TERMS_OUT}
"""),
    "torch.distributions, samples as the first dimension": (True, """
    m, v = self.enc.encode(x)
    q = torch.distributions.Normal(m, v.sqrt())
    prior = torch.distributions.Normal(self.z_prior_m, self.z_prior_v.sqrt())
    z = q.rsample((iw,))
    log_px_z = torch.distributions.Bernoulli(logits=self.dec.decode(z)).log_prob(x).sum(-1)
    log_pz, log_qz = prior.log_prob(z).sum(-1), q.log_prob(z).sum(-1)
    log_w = log_px_z + log_pz - log_qz
    niwae = -(torch.logsumexp(log_w, 0) - math.log(iw)).mean()
    return niwae, (log_qz - log_pz).mean(), -log_px_z.mean()
"""),
    "a loop over the samples, flattened codes": (True, """
    m, v = self.enc.encode(x)
    log_ws, kls, recs = [], [], []
    for _ in range(iw):
        z = sample_gaussian(m, v)
        log_px_z = log_bernoulli_with_logits(x, self.dec.decode(z))
        log_pz, log_qz = log_normal(z, self.z_prior_m, self.z_prior_v), log_normal(z, m, v)
        log_ws.append(log_px_z + log_pz - log_qz)
        kls.append((log_qz - log_pz).mean())
        recs.append(-log_px_z.mean())
    niwae = -(torch.stack(log_ws, 1).logsumexp(1) - math.log(iw)).mean()
    return niwae, torch.stack(kls).mean(), torch.stack(recs).mean()
"""),
    "x.repeat: sample-major rows, reshaped to (iw, batch)": (True, """
    m, v = self.enc.encode(x)
    m, v = m.repeat(iw, 1), v.repeat(iw, 1)
    z = sample_gaussian(m, v)
    log_px_z = log_bernoulli_with_logits(x.repeat(iw, 1), self.dec.decode(z)).reshape(iw, len(x))
    log_pz = log_normal(z, self.z_prior_m, self.z_prior_v).reshape(iw, len(x))
    log_qz = log_normal(z, m, v).reshape(iw, len(x))
    log_w = log_px_z + log_pz - log_qz
    niwae = -(torch.logsumexp(log_w, 0) - math.log(iw)).mean()
    return niwae, (log_qz - log_pz).mean(), -log_px_z.mean()
"""),
    "mean of the log-weights (the ELBO)": (False, WEIGHTS + f"    return -log_w.mean(), {TERMS_OUT}\n"),
    "logsumexp without log k": (False, WEIGHTS + f"    return -torch.logsumexp(log_w, 0).mean(), {TERMS_OUT}\n"),
    "log of the batch size instead of log k": (False, WEIGHTS + (
        f"    return -(torch.logsumexp(log_w, 0) - math.log(len(x))).mean(), {TERMS_OUT}\n")),
    "mean of exp, then log (underflows)": (False, WEIGHTS + f"    return -log_w.exp().mean(0).log().mean(), {TERMS_OUT}\n"),
    "logsumexp over the batch, not the samples": (False, WEIGHTS + (
        f"    return -(torch.logsumexp(log_w, 1) - math.log(len(x))).mean(), {TERMS_OUT}\n")),
    "sum over the batch": (False, WEIGHTS + f"    return -(torch.logsumexp(log_w, 0) - math.log(iw)).sum(), {TERMS_OUT}\n"),
    "positive bound (sign)": (False, WEIGHTS + f"    return (torch.logsumexp(log_w, 0) - math.log(iw)).mean(), {TERMS_OUT}\n"),
    "one sample per image, repeated k times": (False, """
    m, v = self.enc.encode(x)
    z = sample_gaussian(m, v).expand(iw, *m.shape)
    m, v = m.expand(iw, *m.shape), v.expand(iw, *v.shape)
    log_px_z = log_bernoulli_with_logits(x.expand(iw, *x.shape), self.dec.decode(z))
    log_pz, log_qz = log_normal(z, self.z_prior_m, self.z_prior_v), log_normal(z, m, v)
    log_w = log_px_z + log_pz - log_qz
    return -(torch.logsumexp(log_w, 0) - math.log(iw)).mean(), (log_qz - log_pz).mean(), -log_px_z.mean()
"""),
    "x.repeat_interleave against sample-major codes (images mixed up)": (False, """
    m, v = self.enc.encode(x)
    m, v = m.repeat(iw, 1), v.repeat(iw, 1)
    z = sample_gaussian(m, v)
    log_px_z = log_bernoulli_with_logits(x.repeat_interleave(iw, 0), self.dec.decode(z)).reshape(iw, len(x))
    log_pz = log_normal(z, self.z_prior_m, self.z_prior_v).reshape(iw, len(x))
    log_qz = log_normal(z, m, v).reshape(iw, len(x))
    log_w = log_px_z + log_pz - log_qz
    return -(torch.logsumexp(log_w, 0) - math.log(iw)).mean(), (log_qz - log_pz).mean(), -log_px_z.mean()
"""),
    "log q(z | x) with the prior's variance": (False, """
    m, v = self.enc.encode(x)
    m, v = m.expand(iw, *m.shape), v.expand(iw, *v.shape)
    z = sample_gaussian(m, v)
    log_px_z = log_bernoulli_with_logits(x.expand(iw, *x.shape), self.dec.decode(z))
    log_pz, log_qz = log_normal(z, self.z_prior_m, self.z_prior_v), log_normal(z, m, self.z_prior_v)
    log_w = log_px_z + log_pz - log_qz
    return -(torch.logsumexp(log_w, 0) - math.log(iw)).mean(), (log_qz - log_pz).mean(), -log_px_z.mean()
"""),
    "kl with the sign flipped": (False, WEIGHTS + (
        "    return -(torch.logsumexp(log_w, 0) - math.log(iw)).mean(), (log_pz - log_qz).mean(), -log_px_z.mean()\n")),
    "rec is the log-likelihood (sign)": (False, WEIGHTS + (
        "    return -(torch.logsumexp(log_w, 0) - math.log(iw)).mean(), (log_qz - log_pz).mean(), log_px_z.mean()\n")),
})

# --- log_normal_fixed_variance and GaussianVAE -------------------------------------------------

GAUSSIAN = '''
def log_normal_fixed_variance(x, mean, var):
    {}


class GaussianVAE(VAE):
    def __init__(self, z_dim=10, x_var=0.02):
        super().__init__(z_dim=z_dim, name="gaussian_vae")
        self.x_var = x_var

    def negative_elbo_bound(self, x):
        m, v = self.enc.encode(x)
{}
'''
LOG_NORMAL = "return -0.5 * ((x - mean) ** 2 / var + math.log(2 * math.pi * var)).sum(-1)"
GAUSSIAN_BOUND = """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()
        rec = -log_normal_fixed_variance(x, {}, self.x_var).mean()
        return kl + rec, kl, rec
"""
SIGMOID_OF_SAMPLE = "torch.sigmoid(self.dec.decode(sample_gaussian(m, v)))"
GAUSSIANS = {
    **answers(GAUSSIAN.format("{}", GAUSSIAN_BOUND.format(SIGMOID_OF_SAMPLE)), {
        "torch.distributions": (True, "return torch.distributions.Normal(mean, var ** 0.5).log_prob(x).sum(-1)"),
        "squared error, then the constant per pixel": (True, (
            "d = x.shape[-1]\n"
            "    return -((x - mean).pow(2).sum(-1) / (2 * var) + d / 2 * (math.log(2 * math.pi) + math.log(var)))")),
        "var as standard deviation": (False, "return -0.5 * ((x - mean) ** 2 / var ** 2 + math.log(2 * math.pi * var ** 2)).sum(-1)"),
        "var as log-variance": (False, "return -0.5 * ((x - mean) ** 2 / math.exp(var) + math.log(2 * math.pi) + var).sum(-1)"),
        "no normalising constant": (False, "return -0.5 * ((x - mean) ** 2 / var).sum(-1)"),
        "no factor 1/2 on the squared error": (False, "return -((x - mean) ** 2 / var + 0.5 * math.log(2 * math.pi * var)).sum(-1)"),
        "mean over pixels": (False, "return -0.5 * ((x - mean) ** 2 / var + math.log(2 * math.pi * var)).mean(-1)"),
        "positive (a loss)": (False, "return 0.5 * ((x - mean) ** 2 / var + math.log(2 * math.pi * var)).sum(-1)"),
    }),
    **answers(GAUSSIAN.format(LOG_NORMAL, "{}"), {
        "bound with torch.distributions": (True, """
        q = torch.distributions.Normal(m, v.sqrt())
        kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1).mean()
        x_mean = torch.sigmoid(self.dec.decode(q.rsample()))
        rec = -torch.distributions.Normal(x_mean, self.x_var ** 0.5).log_prob(x).sum(-1).mean()
        return kl + rec, kl, rec
"""),
        "logits as the mean (no sigmoid)": (False, GAUSSIAN_BOUND.format("self.dec.decode(sample_gaussian(m, v))")),
        "decodes the mean, no sample": (False, GAUSSIAN_BOUND.format("torch.sigmoid(self.dec.decode(m))")),
        "detached sample": (False, GAUSSIAN_BOUND.format("torch.sigmoid(self.dec.decode(sample_gaussian(m, v).detach()))")),
        "x_var ignored (variance 1)": (False, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()
        rec = -log_normal_fixed_variance(x, torch.sigmoid(self.dec.decode(sample_gaussian(m, v))), 1.0).mean()
        return kl + rec, kl, rec
"""),
        "Bernoulli likelihood kept": (False, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).mean()
        rec = -log_bernoulli_with_logits(x, self.dec.decode(sample_gaussian(m, v))).mean()
        return kl + rec, kl, rec
"""),
        "sum over the batch": (False, """
        kl = kl_normal(m, v, self.z_prior_m, self.z_prior_v).sum()
        rec = -log_normal_fixed_variance(x, torch.sigmoid(self.dec.decode(sample_gaussian(m, v))), self.x_var).sum()
        return kl + rec, kl, rec
"""),
        "no KL (a plain autoencoder loss)": (False, """
        rec = -log_normal_fixed_variance(x, torch.sigmoid(self.dec.decode(sample_gaussian(m, v))), self.x_var).mean()
        return rec, torch.zeros(()), rec
"""),
    }),
}

PLANTED: Table = {
    "test_kl_normal": {**own_solution(AID, "kl_normal"), **KL_NORMALS},
    "test_sample_gaussian": {**own_solution(AID, "sample_gaussian"), **SAMPLERS},
    "test_log_bernoulli": {**own_solution(AID, "log_bernoulli_with_logits"), **BERNOULLIS},
    "test_negative_elbo_bound": {**own_solution(AID, "negative_elbo_bound"), **NELBOS},
    "test_negative_iwae_bound": {**own_solution(AID, "negative_iwae_bound"), **IWAES},
    "test_gaussian_vae": {**own_solution(AID, "gaussian_vae"), **GAUSSIANS},
}
ON_THE_TRAINED_MODEL = {"test_negative_iwae_bound"}  # the others run before any training


@pytest.fixture(scope="module")
def trained(one_thread):
    """Everything up to the Gaussian-decoder cell, trained with the grading budget."""
    return load_solution(AID, until="gaussian_vae")


@contextmanager
def class_restored(cls: type):
    """Undo what an answer does to a class of the module's namespace (the IWAE cell patches
    the notebook's ``VAE``)."""
    saved = dict(vars(cls))
    try:
        yield
    finally:
        for name in set(vars(cls)) - set(saved):
            delattr(cls, name)
        for name, value in saved.items():
            if name not in ("__dict__", "__weakref__") and vars(cls).get(name) is not value:
                setattr(cls, name, value)


@pytest.mark.parametrize("test, right, answer", params(PLANTED))
def test_planted(request, test, right, answer):
    """Each test cell keeps the points of correct answers and takes those of mistakes."""
    ns = request.getfixturevalue("trained" if test in ON_THE_TRAINED_MODEL else "solution")
    with class_restored(ns["VAE"]):
        assert_graded(AID, ns, test, answer, right)


def test_reference_test_cells_write_nothing_to_stderr(solution, trained):
    """nbgrader gives 0 to a test cell with stderr output: no warnings, no progress bars."""
    for test, ns in [(t, trained if t in ON_THE_TRAINED_MODEL else solution) for t in PLANTED]:
        with class_restored(ns["VAE"]):
            student = with_answer(ns, PLANTED[test]["the notebook's solution"][1])
            assert stderr_of(AID, student, test) == "", test


def test_quality_cell_passes_the_reference(trained, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # the grading threshold
    exec(compile(cell_source(AID, "test_quality"), f"<{AID} test_quality>", "exec"), dict(trained))


def test_trusted_evaluator_ignores_the_students_loss(solution):
    """The evaluator uses only enc, dec and the prior: a loss that lies changes nothing."""
    torch.manual_seed(0)
    model = solution["VAE"](z_dim=10)
    before = trusted.nelbo(model, repeat=20)
    liar = with_answer(solution, """
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


def test_the_notebook_and_the_trusted_evaluator_binarize_the_same_images(trained, monkeypatch):
    """One helper binarizes the test subset for the number a student sees (``evaluate_lower_bound``,
    ``evaluate_iwae_bound``) and for the graded one (``autograder.evaluators.evaluate.test_images``)."""
    from helpers import data, train

    x_subset = trained["x_subset"]
    assert torch.equal(trusted.test_images(), data.binarized(x_subset, seed=0))
    assert torch.equal(trusted.test_images(seed=3), data.binarized(x_subset, seed=3))
    assert not torch.equal(data.binarized(x_subset, seed=0), data.binarized(x_subset, seed=1))
    seen = []

    class Spy(torch.nn.Module):
        def negative_elbo_bound(self, x):
            seen.append(x.clone())
            return torch.zeros(()), torch.zeros(()), torch.zeros(())

        def negative_iwae_bound(self, x, iw):
            seen.append(x.clone())
            return torch.zeros(()), torch.zeros(()), torch.zeros(())

    train.evaluate_lower_bound(Spy(), x_subset, repeat=2, seed=0)
    train.evaluate_iwae_bound(Spy(), x_subset, iw=10, repeat=1, seed=0)
    assert all(torch.equal(x, trusted.test_images()) for x in seen[:2]), "evaluate_lower_bound's images"
    assert torch.equal(torch.cat(seen[2:]), trusted.test_images()), "evaluate_iwae_bound's images, in chunks"


def test_iwae_helper_averages_the_models_bound_like_the_trusted_evaluator(trained):
    """``helpers.train.evaluate_iwae_bound`` (the notebook's table) averages the student's
    ``negative_iwae_bound`` over chunks and repeats; on the reference it estimates what
    ``autograder.evaluators.evaluate.negative_iwae`` computes with its own math."""
    from helpers.train import evaluate_iwae_bound

    model, x_subset = trained["model"], trained["x_subset"]
    before = torch.random.get_rng_state()
    ours = {iw: evaluate_iwae_bound(model, x_subset, iw, repeat=max(20 // iw, 1), seed=0, chunk=500) for iw in (1, 10)}
    assert torch.equal(torch.random.get_rng_state(), before), "the global random state is left alone"
    assert ours[1] == evaluate_iwae_bound(model, x_subset, 1, repeat=20, seed=0, chunk=500), "seeded"
    for iw, value in ours.items():
        theirs = sum(trusted.negative_iwae(model, iw, seed=s) for s in range(3)) / 3
        assert abs(value - theirs) < 0.5, f"IWAE-{iw}: {value:.2f} vs the trusted {theirs:.2f}"
    assert ours[1] > ours[10]


def test_grading_budget_is_short(trained):
    assert trained["ITERATIONS"] <= 2_000


def test_iwae_table_cell_is_a_call_of_the_helper():
    """The notebook's IWAE table has no averaging loop of its own: ``evaluate_iwae_bound`` does it."""
    src = cell_source(AID, "iwae-table")
    assert "evaluate_iwae_bound(" in src and "for _ in range" not in src and "bernoulli" not in src
    assert "torch.bernoulli" not in cell_source(AID, "evaluate")


# --- through nbgrader: each mistake makes the student's own NELBO look better ----------------

NO_NOISE = "def sample_gaussian(m, v):\n    return m + 0 * v\n"
MEAN_LIKELIHOOD = BERNOULLI.format("return -F.binary_cross_entropy_with_logits(logits, x, reduction='none').mean(-1)")


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


def test_runs_cell_reports_every_metric_and_shows_the_grids_side_by_side(solution, tmp_path, monkeypatch):
    """The full-run-only cell (section 8), on tiny budgets: mean +- SE of NELBO, KL and Rec per
    budget, and one sample grid per budget saved and shown."""
    import matplotlib
    matplotlib.use("Agg")
    from helpers import data, runtime
    src = cell_source(AID, "runs").replace("RUN_ITERATIONS, RUN_SEEDS = (10_000, 20_000), range(3)",
                                           "RUN_ITERATIONS, RUN_SEEDS = (3, 6), range(2)")
    assert src != cell_source(AID, "runs")
    monkeypatch.setattr(runtime, "grading", lambda: False)
    x_subset = data.fixed_test_subset("mnist")[0]
    ns = dict(solution, RESULTS=tmp_path, x_train=data.load("mnist", "train")[0], x_subset=x_subset)
    run_output = []
    monkeypatch.setattr("builtins.print", lambda *a, **k: run_output.append(" ".join(map(str, a))))
    exec(compile(src, "<runs>", "exec"), ns)
    assert len(run_output) == 2 and all(all(k in line for k in ("NELBO", "KL", "Rec", "+-")) for line in run_output)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vae_samples_3.png", "vae_samples_6.png"]
