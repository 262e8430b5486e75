"""Trusted evaluation of a student's VAE (grading side; never shipped in ``helpers``).

Only the networks are taken from the student's model: ``model.enc.encode(x) -> (m, v)``
(v a variance), ``model.dec.decode(z) -> logits``, ``model.z_prior_m``, ``model.z_prior_v``.
The sampler, the KL and the Bernoulli log-likelihood are this module's own, so a student's
loss that is wrong (no noise in the sampler, a mean instead of a sum over pixels) cannot
make the model look better than it is. Everything is seeded; the data are
``helpers.data.fixed_test_subset()`` binarized once by sampling with seed 0, as CS236 does.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from helpers import data


def _sample(m: torch.Tensor, v: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    eps = torch.randn(m.shape, generator=g, dtype=torch.float64).to(m.device)
    return m + v.sqrt() * eps


def _kl(qm: torch.Tensor, qv: torch.Tensor, pm: torch.Tensor, pv: torch.Tensor) -> torch.Tensor:
    return 0.5 * (pv.log() - qv.log() + qv / pv + (qm - pm) ** 2 / pv - 1).sum(-1)


def _log_bernoulli(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def _log_normal(z: torch.Tensor, m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return (-0.5 * (math.log(2 * math.pi) + v.log() + (z - m) ** 2 / v)).sum(-1)


def test_images(seed: int = 0) -> torch.Tensor:
    """The fixed 100-image MNIST test subset, binarized by sampling with ``seed``, (100, 784):
    ``data.binarized``, the images the notebooks' ``evaluate_lower_bound`` reports on."""
    x, _ = data.fixed_test_subset("mnist")
    return data.binarized(x, seed)


def _encode(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    m, v = model.enc.encode(x)
    if m.shape != (len(x), model.z_dim) or v.shape != m.shape:
        raise ValueError(f"enc.encode returned shapes {tuple(m.shape)}, {tuple(v.shape)}")
    if not bool((v > 0).all()):
        raise ValueError("enc.encode returned a non-positive variance")
    return m.double(), v.double()


def _prior(model, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return model.z_prior_m.double().to(like.device), model.z_prior_v.double().to(like.device)


def _posterior_and_prior(model, x: torch.Tensor | None, seed: int):
    """Put ``model`` in eval mode; return the images on its device, a seeded generator,
    q's ``(m, v)`` and the prior's ``(pm, pv)`` (float64)."""
    model.eval()
    x = (test_images() if x is None else x).to(next(model.parameters()).device, torch.float32)
    m, v = _encode(model, x)
    return x, torch.Generator().manual_seed(seed), (m, v), _prior(model, m)


@torch.no_grad()
def nelbo(model, x: torch.Tensor | None = None, repeat: int = 100, seed: int = 0
          ) -> tuple[float, float, float]:
    """``(nelbo, kl, rec)`` per image, averaged over the images and ``repeat`` latent draws.

    ``x``: binary images ``(n, 784)``; default ``test_images()``.
    """
    was_training = model.training
    x, g, (m, v), (pm, pv) = _posterior_and_prior(model, x, seed)
    kl = _kl(m, v, pm, pv).mean()
    rec = torch.zeros((), dtype=torch.float64)
    for _ in range(repeat):
        z = _sample(m, v, g).float()
        rec += -_log_bernoulli(x.double(), model.dec.decode(z).double()).mean().cpu() / repeat
    model.train(was_training)
    kl = kl.cpu()
    return float(kl + rec), float(kl), float(rec)


@torch.no_grad()
def negative_iwae(model, iw: int, x: torch.Tensor | None = None, seed: int = 0,
                  chunk: int = 20_000) -> float:
    """The negative importance-weighted bound with ``iw`` samples per image, averaged over images.

    ``-log (1/k) sum_i p(x, z_i) / q(z_i | x)`` with ``z_i ~ q(z | x)``; ``iw = 1`` is the NELBO
    (one draw). Decoded in chunks of at most ``chunk`` rows.
    """
    was_training = model.training
    x, g, (m, v), (pm, pv) = _posterior_and_prior(model, x, seed)
    per_image = max(1, chunk // iw)
    out = []
    for i in range(0, len(x), per_image):
        xs, ms, vs = x[i: i + per_image], m[i: i + per_image], v[i: i + per_image]
        z = _sample(ms.expand(iw, *ms.shape), vs.expand(iw, *vs.shape), g)  # (iw, n, z_dim)
        logits = model.dec.decode(z.float().reshape(-1, z.shape[-1])).double().reshape(iw, len(xs), -1)
        log_w = (_log_bernoulli(xs.double().expand(iw, *xs.shape), logits)
                 + _log_normal(z, pm, pv) - _log_normal(z, ms, vs))
        out.append(-(torch.logsumexp(log_w, 0) - math.log(iw)))
    model.train(was_training)
    return float(torch.cat(out).mean())
