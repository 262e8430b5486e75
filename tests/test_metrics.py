"""The measures of helpers.metrics (Fréchet distances against closed forms; notebook 04's MSE, SSIM,
per-class FID and nearest real digit) and notebook 04's grade formulas (helpers.grades), by hand."""
from __future__ import annotations

import math

import pytest
import torch

from helpers import grades, metrics


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


# --- notebook 04: MSE, SSIM, the per-class FID and the nearest real digit of a class ---

def digits(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    from helpers import data
    x, y = data.fixed_test_subset("mnist", per_class=n)
    return x.reshape(-1, 28, 28), y


def ssim_by_loops(a: torch.Tensor, b: torch.Tensor) -> float:
    """SSIM of two 28 x 28 images written out as Wang et al. define it: plain Python loops over
    every 11 x 11 window position, Gaussian weights (sigma 1.5) normalised to sum 1."""
    g = [[math.exp(-((i - 5) ** 2 + (j - 5) ** 2) / (2 * 1.5 ** 2)) for j in range(11)] for i in range(11)]
    total = sum(map(sum, g))
    w = [[v / total for v in row] for row in g]
    a, b = a.double().tolist(), b.double().tolist()
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    values = []
    for r in range(28 - 10):
        for c in range(28 - 10):
            cells = [(w[i][j], a[r + i][c + j], b[r + i][c + j]) for i in range(11) for j in range(11)]
            mx = sum(k * p for k, p, _ in cells)
            my = sum(k * q for k, _, q in cells)
            vx = sum(k * (p - mx) ** 2 for k, p, _ in cells)
            vy = sum(k * (q - my) ** 2 for k, _, q in cells)
            cxy = sum(k * (p - mx) * (q - my) for k, p, q in cells)
            values.append((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))
    return sum(values) / len(values)


def test_ssim_of_an_image_with_itself_is_one():
    x, _ = digits()
    assert torch.allclose(metrics.ssim(x, x), torch.ones(len(x), dtype=torch.float64), atol=1e-12)
    noise = torch.rand(5, 28, 28, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(metrics.ssim(noise, noise), torch.ones(5, dtype=torch.float64), atol=1e-12)


def test_ssim_matches_a_direct_computation():
    x, _ = digits(1)
    gen = torch.Generator().manual_seed(3)
    y = (x + 0.2 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    got = metrics.ssim(x[:3], y[:3])
    for i in range(3):
        assert float(got[i]) == pytest.approx(ssim_by_loops(x[i], y[i]), abs=1e-9)


def test_ssim_of_constant_images_by_hand():
    # no variance anywhere: SSIM = (2ab + C1) / (a^2 + b^2 + C1) at every position
    a, b = 0.5, 0.25
    got = metrics.ssim(torch.full((1, 28, 28), a), torch.full((1, 28, 28), b))
    assert float(got) == pytest.approx((2 * a * b + 1e-4) / (a * a + b * b + 1e-4), rel=1e-10)


def test_ssim_is_symmetric_accepts_all_shapes_and_drops_under_noise():
    x, _ = digits()
    gen = torch.Generator().manual_seed(1)
    noisy = [(x + s * torch.randn(x.shape, generator=gen)).clamp(0, 1) for s in (0.05, 0.2, 0.5)]
    assert torch.allclose(metrics.ssim(x, noisy[1]), metrics.ssim(noisy[1], x), atol=1e-12)
    assert torch.allclose(metrics.ssim(x.reshape(-1, 784), noisy[1].reshape(-1, 1, 28, 28)), metrics.ssim(x, noisy[1]))
    means = [float(metrics.ssim(x, n).mean()) for n in noisy]
    assert 1 > means[0] > means[1] > means[2] > 0, means
    # a shifted copy loses structure as well
    assert float(metrics.ssim(x, torch.roll(x, 3, dims=2)).mean()) < 0.6


def test_gaussian_window():
    w = metrics.gaussian_window()
    assert w.shape == (11, 11) and float(w.sum()) == pytest.approx(1.0, abs=1e-12)
    assert torch.allclose(w, w.T) and w.argmax() == 5 * 11 + 5
    # ratio of neighbouring weights on the axis: exp(-(1 - 0) / (2 sigma^2))
    assert float(w[5, 6] / w[5, 5]) == pytest.approx(math.exp(-1 / (2 * 1.5 ** 2)), rel=1e-12)


def test_mse_by_hand():
    x = torch.zeros(2, 28, 28)
    y = torch.zeros(2, 28, 28)
    y[0, :14] = 0.5  # half the pixels off by 0.5
    got = metrics.mse(x, y)
    assert got.shape == (2,) and got.tolist() == pytest.approx([0.125, 0.0])


def test_per_class_fid_of_a_set_with_itself_is_zero():
    x, y = digits()
    assert metrics.per_class_fid(x, y, x, y) == pytest.approx(0.0, abs=1e-12)
    # the order of the images does not matter
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    assert metrics.per_class_fid(x, y, x[perm], y[perm]) == pytest.approx(0.0, abs=1e-9)


def test_per_class_fid_is_the_mean_diagonal_frechet_distance():
    x, y = digits()
    gen = torch.Generator().manual_seed(2)
    fake = (x + 0.3 * torch.rand(x.shape, generator=gen)).clamp(0, 1)
    want = []  # the trace form of the Fréchet distance: |mu_a - mu_b|^2 + tr A + tr B - 2 tr (A^1/2 B A^1/2)^1/2
    for k in range(10):
        a, b = x[y == k].reshape(-1, 784).double(), fake[y == k].reshape(-1, 784).double()
        va, vb = a.var(0), b.var(0)
        want.append(float((a.mean(0) - b.mean(0)).pow(2).sum() + va.sum() + vb.sum() - 2 * (va * vb).sqrt().sum()))
    assert metrics.per_class_fid(x, y, fake, y) == pytest.approx(sum(want) / 10, rel=1e-8)
    # one class: the general Fréchet distance of helpers.metrics with diagonal covariances
    a, b = x[y == 4].reshape(-1, 784).double(), fake[y == 4].reshape(-1, 784).double()
    one = metrics.gaussian_frechet(a.mean(0), torch.diag(a.var(0)), b.mean(0), torch.diag(b.var(0)))
    zeros = torch.zeros(len(a), dtype=torch.long)
    assert metrics.per_class_fid(a, zeros, b, zeros, classes=1) == pytest.approx(one, rel=1e-6)
    # a constant shift c of every pixel moves only the means: 784 c^2
    assert metrics.per_class_fid(x, y, x.double() + 0.1, y) == pytest.approx(784 * 0.01, rel=1e-9)
    # images of the wrong class are far away
    assert metrics.per_class_fid(x, y, x, (y + 1) % 10) > 2 * metrics.per_class_fid(x, y, fake, y)


def test_per_class_fid_needs_every_class():
    x, y = digits()
    with pytest.raises(ValueError):
        metrics.per_class_fid(x, y, x[y != 3], y[y != 3])


def test_nearest_in_class_is_the_brute_force_nearest_of_the_same_class():
    x, y = digits()
    gen = torch.Generator().manual_seed(5)
    fake = (x[torch.randperm(len(x), generator=gen)] + 0.2 * torch.rand(x.shape, generator=gen)).clamp(0, 1)
    labels = torch.randint(0, 10, (len(x),), generator=gen)
    ref = metrics.nearest_in_class(fake, labels, x, y)
    assert ref.shape == (len(x), 28, 28) and ref.dtype == torch.float64
    for i in range(len(fake)):
        pool = x[y == labels[i]].reshape(-1, 784).double()
        best = pool[((pool - fake[i].reshape(784).double()) ** 2).sum(1).argmin()]
        assert torch.equal(ref[i].reshape(784), best), i
    # shapes (n, 784) and (n, 1, 28, 28) give the same references
    assert torch.equal(metrics.nearest_in_class(fake.reshape(-1, 784), labels, x.reshape(-1, 1, 28, 28), y), ref)


def test_nearest_in_class_stays_in_the_class():
    x, y = digits()
    # a real 3 is its own nearest 3; labelled 5, it gets a 5 (never itself)
    three = x[y == 3][:1]
    assert torch.equal(metrics.nearest_in_class(three, torch.tensor([3]), x, y), three.double())
    five = metrics.nearest_in_class(three, torch.tensor([5]), x, y)
    assert any(torch.equal(five[0], r.double()) for r in x[y == 5]) and not torch.equal(five[0], three[0].double())
    # every generated digit that is one of the real ones is compared with itself: MSE 0, SSIM 1
    ref = metrics.nearest_in_class(x, y, x, y)
    assert float(metrics.mse(x, ref).max()) == 0 and float(metrics.ssim(x, ref).min()) == pytest.approx(1.0)


def test_nearest_in_class_needs_a_real_digit_of_each_class_asked_for():
    x, y = digits()
    with pytest.raises(ValueError, match="class 3"):
        metrics.nearest_in_class(x[:5], torch.full((5,), 3), x[y != 3], y[y != 3])
    with pytest.raises(ValueError):
        metrics.nearest_in_class(x[:2], torch.tensor([1, 10]), x, y)
    with pytest.raises(ValueError):
        metrics.nearest_in_class(x[:2], torch.tensor([1]), x, y)


# --- notebook 04: the lab guide's grade formulas (helpers.grades) ---

def test_compression_bonus():
    assert grades.compression_bonus(784) == pytest.approx(0.2)
    assert grades.compression_bonus(20) == pytest.approx(0.2 + 1 - 20 / 784)
    assert grades.compression_bonus(392) == pytest.approx(0.7)
    assert grades.compression_bonus(1) > grades.compression_bonus(4) > grades.compression_bonus(20) > 1
    for bad in (0, 785):
        with pytest.raises(ValueError):
            grades.compression_bonus(bad)


def test_reconstruction_points_by_hand():
    # min((ssim * 5 + max(0.1 - mse, 0) * 50) * bonus, 10); latent 392: bonus 0.7
    assert grades.reconstruction_points(0.6, 0.04, 392) == pytest.approx((3.0 + 3.0) * 0.7)
    assert grades.reconstruction_points(0.6, 0.15, 392) == pytest.approx(3.0 * 0.7), "MSE above 0.1 adds nothing"
    assert grades.reconstruction_points(0.0, 0.0, 392) == pytest.approx(5.0 * 0.7), "MSE 0 is worth 5 before the bonus"
    # perfect reconstructions are worth 10 before the bonus; with a 157-d code just under 10
    assert grades.reconstruction_points(1.0, 0.0, 157) == pytest.approx(10 * (1.2 - 157 / 784))
    # the cap, and the one addition to the guide: never below 0
    assert grades.reconstruction_points(1.0, 0.0, 4) == 10.0
    assert grades.reconstruction_points(0.9, 0.02, 20) == pytest.approx((4.5 + 4.0) * (1.2 - 20 / 784)), "9.98: just under"
    assert grades.reconstruction_points(0.9, 0.01, 20) == 10.0, "(4.5 + 4.5) * 1.174 = 10.57, capped"
    assert grades.reconstruction_points(-0.3, 0.2, 20) == 0.0


def test_generation_points_by_hand():
    # min((ssim * 10 + max(0.1 - mse, 0) * 100 + max(10 - fid, 0)) * bonus, 30); latent 392: bonus 0.7
    assert grades.generation_points(0.5, 0.03, 4.0, 392) == pytest.approx((5 + 7 + 6) * 0.7)
    assert grades.generation_points(0.5, 0.03, 12.0, 392) == pytest.approx((5 + 7) * 0.7), "FID above 10 adds nothing"
    assert grades.generation_points(0.5, 0.2, 12.0, 392) == pytest.approx(5 * 0.7), "MSE above 0.1 adds nothing"
    assert grades.generation_points(0.0, 0.1, 0.0, 392) == pytest.approx(10 * 0.7), "FID 0 is worth 10 before the bonus"
    # the reference CVAE's held-out figures (README): about 14 of 30 with a 4-d code
    assert grades.generation_points(0.491, 0.0314, 12.39, 4) == pytest.approx((4.91 + 6.86) * (1.2 - 4 / 784))
    # the cap needs 25.1 before a 4-d code's bonus; never below 0
    assert grades.generation_points(0.9, 0.0, 0.0, 4) == 30.0
    assert grades.generation_points(0.9, 0.02, 5.0, 4) == pytest.approx((9 + 8 + 5) * (1.2 - 4 / 784))
    assert grades.generation_points(-0.2, 0.3, 50.0, 4) == 0.0


def test_grades_ignore_module_attributes_a_notebook_could_assign(monkeypatch):
    """The numbers are in the functions: assigning the module's constants changes no grade."""
    for name in ("RECONSTRUCTION_MAX", "GENERATION_MAX"):
        monkeypatch.setattr(grades, name, 1e9)
    assert grades.reconstruction_points(1.0, 0.0, 4) == 10.0 and grades.generation_points(1.0, 0.0, 0.0, 4) == 30.0
