"""Notebook 00 (KL and ELBO): every graded cell's test tells right from wrong.

``PLANTED`` holds, per test cell, held-back answers to its solution cell: the reference, correct
implementations written another way, and the realistic mistakes for the function's contract
(each named for what it does). The test cell, hidden tests included, must keep a correct
answer's points and take a mistake's.
"""
from __future__ import annotations

import pytest

from planted import answers, assert_graded, own_solution, params

AID = "00_kl_elbo"
UNTIL = "elbo"  # the `solution` fixture (conftest): the notebook up to this cell

KL_DISCRETE = "def kl_discrete(p, q):\n{}\n"
KL_DISCRETES = answers(KL_DISCRETE, {
    "torch.distributions.Categorical": (True, """
    from torch.distributions import Categorical, kl_divergence
    return kl_divergence(Categorical(probs=p), Categorical(probs=q))"""),
    "where p > 0": (True, "    return torch.where(p > 0, p * (p / q).log(), torch.zeros_like(p)).sum(-1)"),
    "nansum of p log(p / q)": (True, "    return (p * (p / q).log()).nansum(-1)"),
    "p log p with p clamped away from 0": (True, "    return (p * (p.clamp_min(1e-300).log() - q.log())).sum(-1)"),
    "through numpy": (True, """
    import numpy as np
    a, b = p.numpy(), q.numpy()
    return torch.as_tensor(np.where(a > 0, a * np.log(np.where(a > 0, a, 1) / b), 0.0).sum(-1))"""),
    "p log(p / q): 0 log 0 gives nan": (False, "    return (p * (p / q).log()).sum(-1)"),
    "arguments swapped, KL(q || p)": (False, "    return (torch.xlogy(q, q) - torch.xlogy(q, p)).sum(-1)"),
    "cross-entropy only (no entropy term)": (False, "    return -torch.xlogy(p, q).sum(-1)"),
    "sign flipped": (False, "    return (torch.xlogy(p, q) - torch.xlogy(p, p)).sum(-1)"),
    "mean over the categories": (False, "    return (torch.xlogy(p, p) - torch.xlogy(p, q)).mean(-1)"),
    "summed over the first dimension": (False, "    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(0)"),
    "not summed": (False, "    return torch.xlogy(p, p) - torch.xlogy(p, q)"),
    "summed over everything": (False, "    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum()"),
    "log base 2": (False, "    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1) / math.log(2)"),
    "symmetrised": (False, "    return 0.5 * ((torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1) + (torch.xlogy(q, q) - torch.xlogy(q, p)).sum(-1))"),
    "epsilon inside the log": (False, "    return (p * ((p + 1e-8) / (q + 1e-8)).log()).sum(-1)"),
    "computed in float32": (False, "    return (torch.xlogy(p, p) - torch.xlogy(p, q)).float().sum(-1)"),
    "clamps q in place (changes the caller's tensor)": (False, """
    q.clamp_(min=1e-3)
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1)"""),
    "renormalises p in place": (False, """
    p /= p.sum(-1, keepdim=True)
    return (torch.xlogy(p, p) - torch.xlogy(p, q)).sum(-1)"""),
})

KL_1D_HEAD = "### BEGIN SOLUTION\n{}\n### END SOLUTION\nkl_gauss_1d\n"
KL_GAUSS_1DS = answers(KL_1D_HEAD, {
    "closed form by hand": (True, "kl_gauss_1d = sp.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2)**2) / (2 * sigma2**2) - sp.Rational(1, 2)"),
    "float coefficients, log difference": (True, "kl_gauss_1d = sp.log(sigma2) - sp.log(sigma1) + 0.5 * (sigma1**2 + (mu1 - mu2)**2) / sigma2**2 - 0.5"),
    "moments substituted into the expanded log ratio": (True, """
r = sp.expand(log_normal(x, mu1, sigma1) - log_normal(x, mu2, sigma2))
kl_gauss_1d = sp.simplify(r.coeff(x, 2) * (sigma1**2 + mu1**2) + r.coeff(x, 1) * mu1 + r.coeff(x, 0))"""),
    "log ratio upside down": (False, "kl_gauss_1d = sp.log(sigma1 / sigma2) + (sigma1**2 + (mu1 - mu2)**2) / (2 * sigma2**2) - sp.Rational(1, 2)"),
    "forgets the -1/2": (False, "kl_gauss_1d = sp.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2)**2) / (2 * sigma2**2)"),
    "divides by the first variance": (False, "kl_gauss_1d = sp.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2)**2) / (2 * sigma1**2) - sp.Rational(1, 2)"),
    "arguments swapped, KL(q || p)": (False, "kl_gauss_1d = sp.log(sigma1 / sigma2) + (sigma2**2 + (mu1 - mu2)**2) / (2 * sigma1**2) - sp.Rational(1, 2)"),
    "log of the variance ratio, not halved": (False, "kl_gauss_1d = sp.log(sigma2**2 / sigma1**2) + (sigma1**2 + (mu1 - mu2)**2) / (2 * sigma2**2) - sp.Rational(1, 2)"),
    "sigma treated as a variance": (False, "kl_gauss_1d = sp.log(sigma2 / sigma1) / 2 + (sigma1 + (mu1 - mu2)**2) / (2 * sigma2) - sp.Rational(1, 2)"),
    "the integrand, not integrated": (False, "kl_gauss_1d = sp.exp(log_normal(x, mu1, sigma1)) * (log_normal(x, mu1, sigma1) - log_normal(x, mu2, sigma2))"),
    "E[x^2] taken as mu1^2 (variance forgotten)": (False, """
r = sp.expand(log_normal(x, mu1, sigma1) - log_normal(x, mu2, sigma2))
kl_gauss_1d = sp.simplify(r.coeff(x, 2) * mu1**2 + r.coeff(x, 1) * mu1 + r.coeff(x, 0))"""),
    "a plain float": (False, "kl_gauss_1d = 0.0"),
})

KL_DIAG = "def kl_diag_gauss(mus1, sigmas1, mus2, sigmas2):\n{}\n"
KL_DIAGS = answers(KL_DIAG, {
    "closed form in a loop": (True, """
    total = 0
    for a, b, c, d in zip(mus1, sigmas1, mus2, sigmas2):
        total += sp.log(d / b) + (b**2 + (a - c)**2) / (2 * d**2) - sp.Rational(1, 2)
    return total"""),
    "sum() of xreplace": (True, """
    return sum(kl_gauss_1d.xreplace({mu1: a, sigma1: b, mu2: c, sigma2: d})
               for a, b, c, d in zip(mus1, sigmas1, mus2, sigmas2))"""),
    "through a lambdified sympy function": (True, """
    f = sp.Lambda((mu1, sigma1, mu2, sigma2), kl_gauss_1d)
    return sp.Add(*(f(a, b, c, d) for a, b, c, d in zip(mus1, sigmas1, mus2, sigmas2)))"""),
    "subs one symbol after another (not simultaneous)": (False, """
    return sp.Add(*(kl_gauss_1d.subs(mu1, a).subs(sigma1, b).subs(mu2, c).subs(sigma2, d)
                    for a, b, c, d in zip(mus1, sigmas1, mus2, sigmas2)))"""),
    "product instead of sum": (False, """
    return sp.Mul(*(kl_gauss_1d.subs({mu1: a, sigma1: b, mu2: c, sigma2: d}, simultaneous=True)
                    for a, b, c, d in zip(mus1, sigmas1, mus2, sigmas2)))"""),
    "mean over the coordinates": (False, """
    terms = [kl_gauss_1d.subs({mu1: a, sigma1: b, mu2: c, sigma2: d}, simultaneous=True)
             for a, b, c, d in zip(mus1, sigmas1, mus2, sigmas2)]
    return sp.Add(*terms) / len(terms)"""),
    "returns inside the loop (first coordinate only)": (False, """
    for a, b, c, d in zip(mus1, sigmas1, mus2, sigmas2):
        return kl_gauss_1d.subs({mu1: a, sigma1: b, mu2: c, sigma2: d}, simultaneous=True)"""),
    "arguments swapped, KL(q || p)": (False, """
    return sp.Add(*(kl_gauss_1d.subs({mu1: c, sigma1: d, mu2: a, sigma2: b}, simultaneous=True)
                    for a, b, c, d in zip(mus1, sigmas1, mus2, sigmas2)))"""),
    "sigmas taken as variances": (False, """
    return sp.Add(*(kl_gauss_1d.subs({mu1: a, sigma1: sp.sqrt(b), mu2: c, sigma2: sp.sqrt(d)}, simultaneous=True)
                    for a, b, c, d in zip(mus1, sigmas1, mus2, sigmas2)))"""),
    "a list of the per-coordinate KLs": (False, """
    return [kl_gauss_1d.subs({mu1: a, sigma1: b, mu2: c, sigma2: d}, simultaneous=True)
            for a, b, c, d in zip(mus1, sigmas1, mus2, sigmas2)]"""),
})

KL_STD = 'mu, sigma = sp.Symbol("mu", real=True), sp.Symbol("sigma", positive=True)\n{}\nkl_to_standard_normal\n'
KL_STDS = answers(KL_STD, {
    "by hand": (True, "kl_to_standard_normal = (mu**2 + sigma**2 - 1) / 2 - sp.log(sigma)"),
    "substituted into kl_gauss_1d": (True, "kl_to_standard_normal = kl_gauss_1d.subs({mu1: mu, sigma1: sigma, mu2: 0, sigma2: 1})"),
    "log of the standard deviation, not the variance": (False, "kl_to_standard_normal = (mu**2 + sigma**2 - 1 - sp.log(sigma)) / 2"),
    "log with the wrong sign": (False, "kl_to_standard_normal = (mu**2 + sigma**2 - 1) / 2 + sp.log(sigma)"),
    "forgets the -1": (False, "kl_to_standard_normal = (mu**2 + sigma**2) / 2 - sp.log(sigma)"),
    "arguments swapped, KL(N(0, 1) || q)": (False, "kl_to_standard_normal = kl_gauss_1d.subs({mu1: 0, sigma1: 1, mu2: mu, sigma2: sigma})"),
    "its own sigma symbol (not positive)": (False, 'sigma = sp.Symbol("sigma")\nkl_to_standard_normal = (mu**2 + sigma**2 - 1) / 2 - sp.log(sigma)'),
    "sigma squared in the mean term": (False, "kl_to_standard_normal = (mu**2 * sigma**2 + sigma**2 - 1) / 2 - sp.log(sigma)"),
})

KL_NORMAL = "def kl_normal(qm, qv, pm, pv):\n{}\n"
KL_NORMAL_BODIES = {  # self-contained bodies: notebook 02's kl_normal has the same contract (tests/test_vae.py)
    "torch.distributions.Normal": (True, """
    from torch.distributions import Normal, kl_divergence
    return kl_divergence(Normal(qm, qv.sqrt()), Normal(pm, pv.sqrt())).sum(-1)"""),
    "log of the variance ratio": (True, "    return 0.5 * (torch.log(pv / qv) + (qv + (qm - pm) ** 2) / pv - 1).sum(dim=-1)"),
    "broadcast explicitly, variances clamped": (True, """
    pm, pv = pm.expand_as(qm), pv.expand_as(qv)
    qv, pv = qv.clamp(min=1e-8), pv.clamp(min=1e-8)
    return 0.5 * (pv.log() - qv.log() + qv / pv + (qm - pm) ** 2 / pv - 1).sum(-1)"""),
    "in float64, cast back to the input's dtype": (True, """
    a, b, c, d = qm.double(), qv.double(), pm.double(), pv.double()
    return (0.5 * (torch.log(d / b) + (b + (a - c) ** 2) / d - 1)).sum(-1).to(qm.dtype)"""),
    "prior N(0, I) hard-coded": (False, "    return 0.5 * (qm ** 2 + qv - 1 - torch.log(qv)).sum(-1)"),
    "keepdim, (batch, 1)": (False, "    return (0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / pv - 1)).sum(-1, keepdim=True)"),
    "v taken as a standard deviation": (False, """
    from torch.distributions import Normal, kl_divergence
    return kl_divergence(Normal(qm, qv), Normal(pm, pv)).sum(-1)"""),
    "v taken as a log-variance": (False, "    return (0.5 * (pv - qv + qv.exp() / pv.exp() + (qm - pm).pow(2) / pv.exp() - 1)).sum(-1)"),
    "arguments swapped, KL(p || q)": (False, "    return (0.5 * (torch.log(qv) - torch.log(pv) + pv / qv + (qm - pm).pow(2) / qv - 1)).sum(-1)"),
    "divides the mean term by qv": (False, "    return (0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / qv - 1)).sum(-1)"),
    "forgets the -1": (False, "    return (0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / pv)).sum(-1)"),
    "forgets the 1/2": (False, "    return (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / pv - 1).sum(-1)"),
    "log ratio upside down": (False, "    return (0.5 * (torch.log(qv) - torch.log(pv) + qv / pv + (qm - pm).pow(2) / pv - 1)).sum(-1)"),
    "mean over the last dimension": (False, "    return (0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / pv - 1)).mean(-1)"),
    "summed over dimension 1, not the last": (False, "    return (0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / pv - 1)).sum(1)"),
    "also averaged over the batch": (False, "    return (0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / pv - 1)).sum(-1).mean()"),
    "not summed": (False, "    return 0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / pv - 1)"),
    "in float64": (False, "    return (0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / pv - 1)).double().sum(-1)"),
    "detached": (False, "    return (0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / pv - 1)).sum(-1).detach()"),
    "under torch.no_grad()": (False, """
    with torch.no_grad():
        return (0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / pv - 1)).sum(-1)"""),
    "through numpy": (False, """
    import numpy as np
    a, b, c, d = (t.detach().numpy() for t in (qm, qv, pm, pv))
    return torch.from_numpy((0.5 * (np.log(d) - np.log(b) + b / d + (a - c) ** 2 / d - 1)).sum(-1))"""),
    "centres qm in place": (False, """
    qm -= pm
    return (0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + qm.pow(2) / pv - 1)).sum(-1)"""),
    "clamps qv in place": (False, """
    qv.clamp_(min=1e-6)
    return (0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / pv - 1)).sum(-1)"""),
    "prior's parameters read from the first element only": (False, """
    pm, pv = pm.reshape(-1)[0], pv.reshape(-1)[0]
    return (0.5 * (torch.log(pv) - torch.log(qv) + qv / pv + (qm - pm).pow(2) / pv - 1)).sum(-1)"""),
}
KL_NORMALS = answers(KL_NORMAL, KL_NORMAL_BODIES)

KL_FULL = "def kl_full(m1, S1, m2, S2):\n    d = m1.shape[-1]\n    diff = (m2 - m1).unsqueeze(-1)\n{}\n"
KL_FULLS = answers(KL_FULL, {
    "through a Cholesky factor": (True, """
    L = torch.linalg.cholesky(S2)
    trace = torch.cholesky_solve(S1, L).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = torch.cholesky_solve(diff, L).mul(diff).sum((-2, -1))
    logdet = 2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1) - torch.linalg.slogdet(S1)[1]
    return 0.5 * (trace + maha - d + logdet)"""),
    "through explicit inverses": (True, """
    inv = torch.linalg.inv(S2)
    return 0.5 * ((inv @ S1).diagonal(dim1=-2, dim2=-1).sum(-1) + (diff.transpose(-1, -2) @ inv @ diff).reshape(-1)
                  - d + torch.logdet(S2) - torch.logdet(S1))"""),
    "torch.distributions.MultivariateNormal": (True, """
    from torch.distributions import MultivariateNormal, kl_divergence
    return kl_divergence(MultivariateNormal(m1, S1), MultivariateNormal(m2, S2))"""),
    "a loop over the batch": (True, """
    out = []
    for a, A, b, B in zip(m1, S1, m2, S2):
        inv = torch.linalg.inv(B)
        out.append(0.5 * (torch.trace(inv @ A) + (b - a) @ inv @ (b - a) - d + torch.logdet(B) - torch.logdet(A)))
    return torch.stack(out)"""),
    "trace of S1^-1 S2 (the arguments swapped)": (False, """
    trace = torch.linalg.solve(S1, S2).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = (diff * torch.linalg.solve(S2, diff)).sum((-2, -1))
    return 0.5 * (trace + maha - d + torch.linalg.slogdet(S2)[1] - torch.linalg.slogdet(S1)[1])"""),
    "log-determinant ratio upside down": (False, """
    trace = torch.linalg.solve(S2, S1).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = (diff * torch.linalg.solve(S2, diff)).sum((-2, -1))
    return 0.5 * (trace + maha - d + torch.linalg.slogdet(S1)[1] - torch.linalg.slogdet(S2)[1])"""),
    "Mahalanobis term with the first covariance": (False, """
    trace = torch.linalg.solve(S2, S1).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = (diff * torch.linalg.solve(S1, diff)).sum((-2, -1))
    return 0.5 * (trace + maha - d + torch.linalg.slogdet(S2)[1] - torch.linalg.slogdet(S1)[1])"""),
    "forgets the -d": (False, """
    trace = torch.linalg.solve(S2, S1).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = (diff * torch.linalg.solve(S2, diff)).sum((-2, -1))
    return 0.5 * (trace + maha + torch.linalg.slogdet(S2)[1] - torch.linalg.slogdet(S1)[1])"""),
    "diagonals only": (False, """
    v1, v2 = S1.diagonal(dim1=-2, dim2=-1), S2.diagonal(dim1=-2, dim2=-1)
    return 0.5 * (v1 / v2 + diff.squeeze(-1) ** 2 / v2 - 1 + v2.log() - v1.log()).sum(-1)"""),
    "trace summed over the batch too": (False, """
    inv = torch.linalg.inv(S2)
    maha = (diff * torch.linalg.solve(S2, diff)).sum((-2, -1))
    return 0.5 * ((inv * S1).sum() + maha - d + torch.logdet(S2) - torch.logdet(S1))"""),
    "log-determinants from a Cholesky factor without the factor 2": (False, """
    L1, L2 = torch.linalg.cholesky(S1), torch.linalg.cholesky(S2)
    trace = torch.linalg.solve(S2, S1).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = (diff * torch.linalg.solve(S2, diff)).sum((-2, -1))
    return 0.5 * (trace + maha - d + L2.diagonal(dim1=-2, dim2=-1).log().sum(-1) - L1.diagonal(dim1=-2, dim2=-1).log().sum(-1))"""),
    "computed in float32": (False, """
    S1, S2, diff = S1.float(), S2.float(), diff.float()
    trace = torch.linalg.solve(S2, S1).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = (diff * torch.linalg.solve(S2, diff)).sum((-2, -1))
    return 0.5 * (trace + maha - d + torch.linalg.slogdet(S2)[1] - torch.linalg.slogdet(S1)[1])"""),
    "summed over the batch": (False, """
    trace = torch.linalg.solve(S2, S1).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = (diff * torch.linalg.solve(S2, diff)).sum((-2, -1))
    return (0.5 * (trace + maha - d + torch.linalg.slogdet(S2)[1] - torch.linalg.slogdet(S1)[1])).sum()"""),
})

ELBO = "def elbo(x, qm, qv):\n{}\n"
KL_PRIOR = "kl_normal(qm, qv, torch.zeros(1), torch.ones(1))"
ELBOS = answers(ELBO, {
    "torch.distributions, variance correction": (True, """
    from torch.distributions import kl_divergence
    log_lik = Normal(a * qm + b, s2.sqrt()).log_prob(x) - a**2 * qv / (2 * s2)
    return log_lik.sum(-1) - kl_divergence(Normal(qm, qv.sqrt()), Normal(0.0, 1.0)).sum(-1)"""),
    "entropy and cross-entropy of the prior written out": (True, """
    log_lik = -0.5 * math.log(2 * math.pi) - 0.5 * s2.log() - ((x - a * qm - b) ** 2 + a**2 * qv) / (2 * s2)
    log_prior = -0.5 * math.log(2 * math.pi) - 0.5 * (qm**2 + qv)
    entropy = 0.5 * (math.log(2 * math.pi) + 1 + qv.log())
    return (log_lik + log_prior + entropy).sum(-1)"""),
    "forgets a^2 qv (plugs in the mean of q)": (False, f"""
    sq = (x - a * qm - b) ** 2
    return (-0.5 * (torch.log(2 * math.pi * s2) + sq / s2)).sum(-1) - {KL_PRIOR}"""),
    "qv taken as a standard deviation": (False, """
    sq = (x - a * qm - b) ** 2 + a**2 * qv**2
    return (-0.5 * (torch.log(2 * math.pi * s2) + sq / s2)).sum(-1) - kl_normal(qm, qv**2, torch.zeros(1), torch.ones(1))"""),
    "adds the KL": (False, f"""
    sq = (x - a * qm - b) ** 2 + a**2 * qv
    return (-0.5 * (torch.log(2 * math.pi * s2) + sq / s2)).sum(-1) + {KL_PRIOR}"""),
    "s2 taken as a standard deviation": (False, f"""
    sq = (x - a * qm - b) ** 2 + a**2 * qv
    return (-0.5 * (torch.log(2 * math.pi * s2**2) + sq / s2**2)).sum(-1) - {KL_PRIOR}"""),
    "forgets the normalising constant": (False, f"""
    sq = (x - a * qm - b) ** 2 + a**2 * qv
    return (-0.5 * sq / s2).sum(-1) - {KL_PRIOR}"""),
    "forgets b": (False, f"""
    sq = (x - a * qm) ** 2 + a**2 * qv
    return (-0.5 * (torch.log(2 * math.pi * s2) + sq / s2)).sum(-1) - {KL_PRIOR}"""),
    "a qv instead of a^2 qv": (False, f"""
    sq = (x - a * qm - b) ** 2 + a * qv
    return (-0.5 * (torch.log(2 * math.pi * s2) + sq / s2)).sum(-1) - {KL_PRIOR}"""),
    "uses the global x_obs": (False, f"""
    sq = (x_obs - a * qm - b) ** 2 + a**2 * qv
    return (-0.5 * (torch.log(2 * math.pi * s2) + sq / s2)).sum(-1) - {KL_PRIOR}"""),
    "averaged over the batch": (False, f"""
    sq = (x - a * qm - b) ** 2 + a**2 * qv
    return ((-0.5 * (torch.log(2 * math.pi * s2) + sq / s2)).sum(-1) - {KL_PRIOR}).mean()"""),
    "KL to the posterior instead of the prior": (False, """
    sq = (x - a * qm - b) ** 2 + a**2 * qv
    return (-0.5 * (torch.log(2 * math.pi * s2) + sq / s2)).sum(-1) - kl_normal(qm, qv, *exact_posterior(x))"""),
    "Monte Carlo estimate with 1000 samples": (False, """
    z = qm + qv.sqrt() * torch.randn(1000, *qm.shape)
    terms = Normal(0.0, 1.0).log_prob(z).sum(-1) + Normal(a * z + b, s2.sqrt()).log_prob(x).sum(-1) - Normal(qm, qv.sqrt()).log_prob(z).sum(-1)
    return terms.mean(0)"""),
})

PLANTED = {test: {**own_solution(AID, cell), **table} for test, cell, table in [
    ("test_kl_discrete", "kl_discrete", KL_DISCRETES),
    ("test_kl_gauss_1d", "kl_gauss_1d", KL_GAUSS_1DS),
    ("test_kl_diag_gauss", "kl_diag_gauss", KL_DIAGS),
    ("test_kl_to_standard_normal", "kl_to_standard_normal", KL_STDS),
    ("test_kl_normal", "kl_normal", KL_NORMALS),
    ("test_kl_full", "kl_full", KL_FULLS),
    ("test_elbo", "elbo", ELBOS),
]}


@pytest.mark.parametrize("test, right, answer", params(PLANTED))
def test_planted(solution, test, right, answer):
    assert_graded(AID, solution, test, answer, right)



# --- what students see states none of the answers -----------------------------------------------

def public_compact() -> str:
    """The notebook's public text (no solutions, no hidden tests), whitespace removed."""
    import re

    import nbformat

    from autograder.course.config import REPO
    from autograder.feedback.leaks import public_text
    nb = nbformat.read(REPO / "notebooks" / AID / f"{AID}.ipynb", as_version=4)
    return re.sub(r"\s+", "", public_text(nb))


@pytest.mark.parametrize("form, answers_what", [
    (r"\frac{\sigma_{1,i}^2+(\mu_{1,i}-\mu_{2,i})^2}{2\sigma_{2,i}^2}", "kl_gauss_1d (the 1-D closed form inside section 3's sum)"),
    (r"\frac{\sigma_1^2+(\mu_1-\mu_2)^2}{2\sigma_2^2}", "kl_gauss_1d"),
    (r"\mu^2+\sigma^2-1-\log\sigma^2", "kl_to_standard_normal (its target)"),
    ("qm**2+qv-1-qv.log()", "kl_normal against N(0, I) (once in the visible test)"),
    ("v+m**2-1-v.log()", "kl_normal against N(0, I) (once in kl_full's visible test)"),
])
def test_the_given_text_states_no_closed_form_a_graded_cell_asks_for(form, answers_what):
    assert form not in public_compact(), f"the given text answers {answers_what}"
