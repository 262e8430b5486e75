"""The Fréchet distance (helpers.metrics) against closed forms."""
from __future__ import annotations

import math

import pytest
import torch

from helpers import metrics


def random_cov(dim: int, gen: torch.Generator) -> torch.Tensor:
    a = torch.randn(dim, dim, generator=gen, dtype=torch.float64)
    return a @ a.T / dim + 0.1 * torch.eye(dim, dtype=torch.float64)


def test_a_set_with_itself_is_zero():
    gen = torch.Generator().manual_seed(0)
    f = torch.randn(500, 32, generator=gen) @ torch.randn(32, 32, generator=gen)
    assert metrics.frechet_distance(f, f) == pytest.approx(0.0, abs=1e-7)
    # rank-deficient covariance (fewer samples than dimensions) as well
    assert metrics.frechet_distance(f[:10], f[:10]) == pytest.approx(0.0, abs=1e-7)


def test_commuting_covariances_closed_form():
    # diagonal covariances: d^2 = |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    mu1, mu2 = torch.tensor([0.0, 1.0, -2.0]), torch.tensor([1.0, 1.0, 0.5])
    a, b = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([9.0, 1.0, 0.25])
    want = (mu1 - mu2).pow(2).sum() + (a.sqrt() - b.sqrt()).pow(2).sum()
    assert metrics.gaussian_frechet(mu1, torch.diag(a), mu2, torch.diag(b)) == pytest.approx(float(want), rel=1e-10)
    # one dimension: (mu1 - mu2)^2 + (s1 - s2)^2
    got = metrics.gaussian_frechet(torch.tensor([3.0]), torch.tensor([[4.0]]), torch.tensor([1.0]), torch.tensor([[1.0]]))
    assert got == pytest.approx(4.0 + 1.0, rel=1e-12)


def test_non_commuting_2x2_closed_form():
    # for 2x2 PSD M: tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)); the eigenvalues of S1 S2 are those of
    # S1^1/2 S2 S1^1/2, so tr sqrt(S1^1/2 S2 S1^1/2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2))
    s1 = torch.tensor([[2.0, 0.9], [0.9, 1.0]], dtype=torch.float64)
    s2 = torch.tensor([[0.5, -0.3], [-0.3, 3.0]], dtype=torch.float64)
    assert not torch.allclose(s1 @ s2, s2 @ s1)
    mu1, mu2 = torch.tensor([0.3, -1.0], dtype=torch.float64), torch.tensor([-0.2, 0.4], dtype=torch.float64)
    cross = math.sqrt(float(torch.trace(s1 @ s2)) + 2 * math.sqrt(float(torch.det(s1) * torch.det(s2))))
    want = float((mu1 - mu2).pow(2).sum() + torch.trace(s1) + torch.trace(s2)) - 2 * cross
    assert metrics.gaussian_frechet(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-10)


def test_symmetric_and_translation():
    gen = torch.Generator().manual_seed(1)
    s1, s2 = random_cov(20, gen), random_cov(20, gen)
    mu1, mu2 = (torch.randn(20, generator=gen, dtype=torch.float64) for _ in range(2))
    ab, ba = metrics.gaussian_frechet(mu1, s1, mu2, s2), metrics.gaussian_frechet(mu2, s2, mu1, s1)
    assert ab > 0 and ab == pytest.approx(ba, rel=1e-9)
    # same covariance: only the means count
    assert metrics.gaussian_frechet(mu1, s1, mu2, s1) == pytest.approx(float((mu1 - mu2).pow(2).sum()), rel=1e-8)
    # scaled covariance: S2 = c^2 S1 gives (1 - c)^2 tr S1
    assert metrics.gaussian_frechet(mu1, s1, mu1, 9 * s1) == pytest.approx(4 * float(torch.trace(s1)), rel=1e-8)


def test_samples_approach_the_gaussian_value():
    gen = torch.Generator().manual_seed(2)
    dim = 4
    s1, s2 = random_cov(dim, gen), random_cov(dim, gen)
    mu1, mu2 = torch.zeros(dim), torch.ones(dim)
    exact = metrics.gaussian_frechet(mu1, s1, mu2, s2)
    x = torch.randn(200_000, dim, generator=gen, dtype=torch.float64) @ torch.linalg.cholesky(s1).T + mu1
    y = torch.randn(200_000, dim, generator=gen, dtype=torch.float64) @ torch.linalg.cholesky(s2).T + mu2
    assert metrics.frechet_distance(x.float(), y.float()) == pytest.approx(exact, rel=0.02)
    mu, cov = metrics.gaussian_stats(x)
    assert mu.dtype == torch.float64 and cov.shape == (dim, dim)
    assert torch.allclose(cov, s1, atol=0.05)


def test_needs_two_samples():
    with pytest.raises(ValueError):
        metrics.frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))
