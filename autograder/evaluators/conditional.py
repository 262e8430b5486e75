"""Trusted evaluation of notebook 04's two models (grading side, never shipped in ``helpers``):
the lab guide's reconstruction grade for the unconditional VAE, its generation grade for the
conditional VAE.

The figures are computed on a **held-out split** that the student notebook never uses:
``PER_CLASS`` images of each digit drawn from the MNIST *test* set with a seed the TA chooses
(``$DGM_HELDOUT_SEED``, default ``DEFAULT_SEED``). Students train and validate on the MNIST
training set only.

Only the models' ``encode`` and ``decode`` are used, with the shapes notebook 04 asks for:
the VAE's ``encode(x) -> (mu, logvar)`` and ``decode(z) -> logits`` ``(batch, 784)``, the
CVAE's ``encode(x, y)`` and ``decode(z, y)`` likewise. Reconstructions are
``sigmoid(decode(mu))``; samples are ``sigmoid(decode(z, y))`` with ``z ~ N(0, I)`` drawn here
with a fixed seed, one per held-out image and of its label. ``latent_dim`` is read off the
encoder's output, never from an attribute the model declares. So ``reconstruct`` and
``generate`` cannot hand back stored images, and the compression bonus is that of the code
the decoder really receives. Figures come from ``helpers.metrics``, points from
``helpers.grades`` (the same functions the notebook shows students on their validation
digits).
"""
from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from helpers import classifier, data, grades, metrics

HELDOUT_ENV = "DGM_HELDOUT_SEED"
DEFAULT_SEED = 20270212
PER_CLASS = 100
SAMPLE_SEED = 0


def heldout_seed() -> int:
    """``$DGM_HELDOUT_SEED`` if set, else ``DEFAULT_SEED``."""
    return int(os.environ.get(HELDOUT_ENV) or DEFAULT_SEED)


def heldout(seed: int | None = None, per_class: int = PER_CLASS) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out split: ``per_class`` MNIST test images of each digit, chosen at random
    with ``seed`` (default ``heldout_seed()``) by ``data.pick_per_class``, ordered by label.

    Returns images ``(10 * per_class, 28, 28)`` in [0, 1] and labels ``(10 * per_class,)`` int64.
    """
    x, y = data.pick_per_class(*data.load("mnist", "test"), per_class,
                               seed=heldout_seed() if seed is None else seed)
    return x.reshape(-1, 28, 28), y


def _device(model) -> torch.device:
    params = list(model.parameters())
    return params[0].device if params else torch.device("cpu")


def _check(t, n: int, what: str, cols: int | None = None) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what} must return tensors, got {type(t).__name__}")
    t = t.detach().float().cpu().reshape(n, -1)
    if cols is not None and t.shape[1] != cols:
        raise ValueError(f"{what} returned {t.shape[1]} values per image, expected {cols}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{what} returned values that are not finite")
    return t


def _labels(y):
    return () if y is None else (y,)


@torch.no_grad()
def codes(model, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """The encoder's means ``(n, latent_dim)`` for images ``x`` ``(n, 28, 28)``: ``model.encode(x)``
    (``y`` None: the unconditional VAE) or ``model.encode(x, y)``."""
    dev = _device(model)
    mu, logvar = model.encode(x.reshape(len(x), 28, 28).to(dev), *(t.to(dev) for t in _labels(y)))
    mu = _check(mu, len(x), "encode")
    _check(logvar, len(x), "encode (logvar)", cols=mu.shape[1])
    return mu


@torch.no_grad()
def decoded(model, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """``sigmoid(model.decode(z))`` (``y`` None) or ``sigmoid(model.decode(z, y))`` as images ``(n, 28, 28)``.

    Decoded in reversed order and flipped back, so a decoder that looks at anything but its
    arguments (e.g. the images of the last ``encode`` call) gives wrong images.
    """
    dev = _device(model)
    logits = model.decode(z.flip(0).to(dev), *(t.flip(0).to(dev) for t in _labels(y)))
    return torch.sigmoid(_check(logits, len(z), "decode", cols=784)).flip(0).reshape(-1, 28, 28)


def _ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    # every parameter spelt out: a notebook cannot reach these through metrics.ssim's defaults
    return float(metrics.ssim(a, b, data_range=1.0, size=11, sigma=1.5).mean())


@contextmanager
def _evaluating(model):
    """Eval mode and no warnings (a graded cell that writes to stderr scores 0); the training
    mode is put back afterwards."""
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        model.train(was_training)


@dataclass
class Report:
    """What both grades are made of: the number of images scored, the code size, MSE and SSIM
    (means over images), the lab guide's compression bonus and the points."""
    images: int
    latent_dim: int
    mse: float
    ssim: float
    compression_bonus: float
    points: float


@dataclass
class ReconstructionReport(Report):
    """The unconditional VAE on the held-out split: the lab guide's reconstruction grade."""

    def __str__(self) -> str:
        return (f"held-out split ({self.images} images): latent_dim {self.latent_dim}, "
                f"MSE {self.mse:.4f}, SSIM {self.ssim:.3f}, bonus {self.compression_bonus:.3f} "
                f"-> reconstruction {self.points:.2f}/{grades.RECONSTRUCTION_MAX:g}")


@dataclass
class GenerationReport(Report):
    """The conditional VAE on the held-out split: the lab guide's generation grade, with the
    LeNet's accuracy and Fréchet distance for information (they do not enter the grade)."""
    per_class_fid: float
    accuracy: float
    lenet_frechet: float

    def __str__(self) -> str:
        return (f"held-out split ({self.images} samples): latent_dim {self.latent_dim}, "
                f"against the nearest real digit of the class: MSE {self.mse:.4f}, SSIM {self.ssim:.3f}; "
                f"per-class FID {self.per_class_fid:.2f}, bonus {self.compression_bonus:.3f} "
                f"-> generation {self.points:.2f}/{grades.GENERATION_MAX:g} "
                f"(LeNet accuracy {self.accuracy:.3f}, LeNet Fréchet {self.lenet_frechet:.1f})")


def evaluate_reconstruction(vae, seed: int | None = None, per_class: int = PER_CLASS) -> ReconstructionReport:
    """Score the unconditional ``vae`` on the held-out split (``heldout(seed, per_class)``):
    MSE and SSIM of ``sigmoid(decode(mu))`` against the images (means over images), the code
    size read off ``encode``, and ``grades.reconstruction_points``. Labels are never passed."""
    x, _ = heldout(seed, per_class)
    with _evaluating(vae):
        mu = codes(vae, x)
        rec = decoded(vae, mu)
    latent_dim = mu.shape[1]
    mse, ssim = float(metrics.mse(x, rec).mean()), _ssim(x, rec)
    return ReconstructionReport(
        images=len(x), latent_dim=latent_dim, mse=mse, ssim=ssim,
        compression_bonus=grades.compression_bonus(latent_dim),
        points=grades.reconstruction_points(ssim, mse, latent_dim))


def evaluate_generation(cvae, seed: int | None = None, per_class: int = PER_CLASS) -> GenerationReport:
    """Score the conditional ``cvae`` on the held-out split (``heldout(seed, per_class)``).

    One sample ``sigmoid(decode(z, y))``, ``z ~ N(0, I)`` (seeded), per held-out image, of its
    label. Each sample's SSIM and MSE are taken against the held-out digit of its class nearest
    to it (``metrics.nearest_in_class``), then averaged; the per-class FID compares the samples
    with the held-out digits class by class. With the code size read off ``encode``,
    ``grades.generation_points``. Seeded: the same model gets the same report.
    """
    x, y = heldout(seed, per_class)
    with _evaluating(cvae):
        latent_dim = codes(cvae, x[:2], y[:2]).shape[1]
        z = torch.randn(len(y), latent_dim, generator=torch.Generator().manual_seed(SAMPLE_SEED))
        fake = decoded(cvae, z, y)
    ref = metrics.nearest_in_class(fake, y, x, y)
    mse, ssim = float(metrics.mse(fake, ref).mean()), _ssim(fake, ref)
    fid = metrics.per_class_fid(x, y, fake, y)
    lenet = classifier.load("mnist", verbose=False)
    return GenerationReport(
        images=len(y), latent_dim=latent_dim, mse=mse, ssim=ssim, per_class_fid=fid,
        compression_bonus=grades.compression_bonus(latent_dim),
        points=grades.generation_points(ssim, mse, fid, latent_dim),
        accuracy=classifier.accuracy(lenet, fake.reshape(-1, 784), y),
        lenet_frechet=metrics.classifier_frechet(fake.reshape(-1, 784), x.reshape(-1, 784), lenet))
