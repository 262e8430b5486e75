"""Sample-quality figures: the Fréchet distance between two sets of features.

With ``x`` features of one image set and ``y`` of another, each summarised by a Gaussian
``N(mu, S)`` (mean and covariance),

    d^2 = |mu_x - mu_y|^2 + tr(S_x) + tr(S_y) - 2 tr sqrt(S_x^{1/2} S_y S_x^{1/2}).

On Inception features this is the FID; here the features are the penultimate layer of a
small classifier (``helpers.classifier``), so values are comparable only within this course.
All arithmetic is in float64.
"""
from __future__ import annotations

import torch

from . import classifier as _classifier


def _sqrt_psd(s: torch.Tensor) -> torch.Tensor:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative rounding clamped)."""
    w, v = torch.linalg.eigh((s + s.T) / 2)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(dim,)`` and unbiased covariance ``(dim, dim)`` of ``features`` ``(n, dim)``, in float64."""
    f = features.detach().reshape(len(features), -1).to(torch.float64)
    if len(f) < 2:
        raise ValueError("need at least two samples for a covariance")
    return f.mean(0), torch.cov(f.T).reshape(f.shape[1], f.shape[1])


def gaussian_frechet(mu1: torch.Tensor, cov1: torch.Tensor, mu2: torch.Tensor, cov2: torch.Tensor) -> float:
    """Squared Fréchet (2-Wasserstein) distance between ``N(mu1, cov1)`` and ``N(mu2, cov2)``.

    ``mu``: ``(dim,)``; ``cov``: ``(dim, dim)`` symmetric positive semi-definite.
    """
    mu1, mu2, cov1, cov2 = (t.detach().to(torch.float64) for t in (mu1, mu2, cov1, cov2))
    root1 = _sqrt_psd(cov1)
    middle = root1 @ cov2 @ root1
    eig = torch.linalg.eigvalsh((middle + middle.T) / 2)
    cross = eig.clamp(min=0).sqrt().sum()
    d2 = (mu1 - mu2).pow(2).sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * cross
    return max(float(d2), 0.0)


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between the Gaussians fitted to two feature sets ``(n_a, dim)``, ``(n_b, dim)``."""
    return gaussian_frechet(*gaussian_stats(features_a), *gaussian_stats(features_b))


def classifier_frechet(images_a: torch.Tensor, images_b: torch.Tensor,
                       model: _classifier.LeNet | None = None, name: str = "fashion") -> float:
    """Fréchet distance between two image sets on the features of the course classifier.

    ``images_*``: ``(n, 784)`` or ``(n, 1, 28, 28)`` in [0, 1]. ``model`` defaults to
    ``helpers.classifier.load(name)`` (trained once, then cached). Both sets should have
    the same size: the figure is biased upwards for small sets.
    """
    model = model or _classifier.load(name)
    return frechet_distance(_classifier.features(model, images_a), _classifier.features(model, images_b))
