"""Sample-quality figures: the Fréchet distance between two sets of features.

With ``x`` features of one image set and ``y`` of another, each summarised by a Gaussian
``N(mu, S)`` (mean and covariance),

    d^2 = |mu_x - mu_y|^2 + tr(S_x) + tr(S_y) - 2 tr sqrt(S_x^{1/2} S_y S_x^{1/2}).

On Inception features this is the FID; here the features are the penultimate layer of a
small classifier (``helpers.classifier``), so values are comparable only within this course.
All arithmetic is in float64.

Notebook 04 adds the figures of the lab guide's grade: MSE and SSIM per image, the real digit
of the same class nearest to each generated one (the reference its SSIM and MSE are taken
against) and a per-class FID on pixels. These are measures only; the formulas that turn them
into points are in ``helpers.grades``.
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


# --- Notebook 04: the figures of the reconstruction and conditional-generation grades ---
#
# Images are ``(batch, 28, 28)``, ``(batch, 784)`` or ``(batch, 1, 28, 28)`` with values in [0, 1].

def _images(x: torch.Tensor) -> torch.Tensor:
    """``x`` as ``(batch, 1, 28, 28)`` float64."""
    return x.detach().reshape(len(x), 1, 28, 28).to(torch.float64)


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image, ``(batch,)`` (mean over the 784 pixels)."""
    return (_images(x) - _images(y)).pow(2).mean((1, 2, 3))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The normalised ``(size, size)`` Gaussian window of SSIM, float64."""
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-t ** 2 / (2 * sigma ** 2))
    w = torch.outer(g, g)
    return w / w.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, size: int = 11,
         sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity of Wang et al. (2004) per image pair, ``(batch,)``.

    Local means, variances and the covariance are weighted by a ``size`` x ``size`` Gaussian
    window (``sigma`` 1.5); at each position where the window fits in the image ("valid"
    filtering, as in the authors' reference code; 18 x 18 positions on 28 x 28 images)

        SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)),

    with C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = ``data_range``; the figure is the mean over
    positions. 1 for identical images; symmetric in ``x`` and ``y``.
    """
    x, y = _images(x), _images(y)
    w = gaussian_window(size, sigma)[None, None]

    def blur(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(t, w)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y = blur(x * x) - mu_x ** 2, blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return s.mean((1, 2, 3))


def per_class_fid(real: torch.Tensor, real_labels: torch.Tensor, fake: torch.Tensor,
                  fake_labels: torch.Tensor, classes: int = 10) -> float:
    """The simplified per-class FID: pixel statistics instead of network features.

    For each class k, fit a Gaussian with diagonal covariance to the pixels of the real images
    of class k (mean ``mu_r`` and unbiased variance ``v_r`` per pixel, ``(784,)``) and to the
    generated images of class k (``mu_g``, ``v_g``); their Fréchet distance is

        d_k = |mu_r - mu_g|^2 + sum_j (sqrt(v_r,j) - sqrt(v_g,j))^2.

    Returns the mean of ``d_k`` over the classes. ``real`` ``(n, ...)`` with ``real_labels``
    ``(n,)``, ``fake`` ``(m, ...)`` with ``fake_labels`` ``(m,)``; every class needs at least
    two images in each set. 0 for a set compared with itself; smaller is better.
    """
    real, fake = _images(real).flatten(1), _images(fake).flatten(1)
    total = 0.0
    for k in range(classes):
        a, b = real[real_labels == k], fake[fake_labels == k]
        if len(a) < 2 or len(b) < 2:
            raise ValueError(f"class {k}: need at least two real and two generated images")
        total += float((a.mean(0) - b.mean(0)).pow(2).sum() + (a.var(0).sqrt() - b.var(0).sqrt()).pow(2).sum())
    return total / classes


def nearest_in_class(fake: torch.Tensor, fake_labels: torch.Tensor, real: torch.Tensor,
                     real_labels: torch.Tensor, classes: int = 10) -> torch.Tensor:
    """For each generated image of class k, the real image of class k nearest to it (the
    smallest mean squared error): the reference its SSIM and MSE are taken against.

    ``fake`` ``(m, ...)`` with ``fake_labels`` ``(m,)``, ``real`` ``(n, ...)`` with
    ``real_labels`` ``(n,)``; every class of ``fake_labels`` needs a real image. Returns the
    references as ``(m, 28, 28)`` float64, in the order of ``fake``.
    """
    if len(fake_labels) != len(fake) or not bool(((fake_labels >= 0) & (fake_labels < classes)).all()):
        raise ValueError(f"one label between 0 and {classes - 1} per generated image")
    fake, real = _images(fake).flatten(1), _images(real).flatten(1)
    out = torch.empty_like(fake)
    for k in range(classes):
        mine = fake_labels == k
        if not bool(mine.any()):
            continue
        pool = real[real_labels == k]
        if len(pool) == 0:
            raise ValueError(f"class {k}: no real image to compare the generated ones with")
        # squared distances |f|^2 - 2 f.p + |p|^2, exact enough in float64 for an argmin
        d = fake[mine].pow(2).sum(1, keepdim=True) - 2 * fake[mine] @ pool.T + pool.pow(2).sum(1)
        out[mine] = pool[d.argmin(1)]
    return out.reshape(-1, 28, 28)
