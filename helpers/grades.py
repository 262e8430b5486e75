"""Notebook 04's grade: the lab guide's two formulas, term for term.

With ``bonus = 0.2 + 1 - latent_dim / 784`` (the compression bonus),

    reconstruction = min((SSIM * 5  + max(0.1 - MSE, 0) * 50)                       * bonus, 10)
    generation     = min((SSIM * 10 + max(0.1 - MSE, 0) * 100 + max(10 - FID, 0))  * bonus, 30)

*reconstruction* grades the **unconditional** VAE: SSIM and MSE of its reconstructions of real
digits. *generation* grades the **conditional** VAE: SSIM and MSE of each generated digit of
class k against the real class-k digit nearest to it (``helpers.metrics.nearest_in_class``),
and the simplified per-class FID (``helpers.metrics.per_class_fid``). SSIM and MSE are means
over the images. The figures come from ``helpers.metrics``; this module only turns them into
points. One addition to the guide: points are never below 0 (its formulas go negative only for
a negative SSIM, which a graded cell cannot take away).

The numbers are written into the functions, not read from module attributes, so that nothing
a notebook assigns changes a grade.
"""
from __future__ import annotations

RECONSTRUCTION_MAX = 10.0  # for display; the formulas below hold their own caps
GENERATION_MAX = 30.0


def compression_bonus(latent_dim: int) -> float:
    """``0.2 + 1 - latent_dim / 784``: 1.197 for a 2-d code, 1.174 for 20, 1.0 at 157,
    0.2 without compression (784). ``latent_dim`` must be between 1 and 784."""
    if not 1 <= latent_dim <= 784:
        raise ValueError(f"latent_dim must be between 1 and 784 (the pixels of an image), got {latent_dim}")
    return 0.2 + 1 - latent_dim / 784


def reconstruction_points(ssim: float, mse: float, latent_dim: int) -> float:
    """The lab guide's reconstruction grade, out of 10:
    ``min((ssim * 5 + max(0.1 - mse, 0) * 50) * bonus, 10)``, at least 0.

    Perfect reconstructions (SSIM 1, MSE 0) are worth 10 before the bonus; with a 20-d code
    (bonus 1.174) the sum in the brackets reaches the cap at 10 / 1.174 = 8.52, e.g. SSIM 0.9 with
    MSE 0.015 (sum 8.75, 10 points); SSIM 0.85 with MSE 0.015 falls just short (sum 8.50, 9.98 points).
    """
    points = (ssim * 5 + max(0.1 - mse, 0.0) * 50) * compression_bonus(latent_dim)
    return min(max(points, 0.0), 10.0)


def generation_points(ssim: float, mse: float, fid: float, latent_dim: int) -> float:
    """The lab guide's generation grade, out of 30:
    ``min((ssim * 10 + max(0.1 - mse, 0) * 100 + max(10 - fid, 0)) * bonus, 30)``, at least 0.

    Each of the three terms is worth at most 10 before the bonus: SSIM and MSE of the samples
    (against the nearest real digit of their class), and the per-class FID, which earns
    points only below 10.
    """
    points = (ssim * 10 + max(0.1 - mse, 0.0) * 100 + max(10 - fid, 0.0)) * compression_bonus(latent_dim)
    return min(max(points, 0.0), 30.0)
