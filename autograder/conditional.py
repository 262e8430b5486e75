"""Trusted evaluation of a student's conditional VAE (notebook 04; grading side, never shipped
in ``helpers``).

The figures are computed on a **held-out split** that the student notebook never uses:
``PER_CLASS`` images of each digit drawn from the MNIST *test* set with a seed the TA chooses
(``$DGM_HELDOUT_SEED``, default ``DEFAULT_SEED``). Students train and validate on the MNIST
training set only.

Only two methods of the student's model are used, with the shapes notebook 04 asks for:
``model.encode(x, y) -> (mu, logvar)``, each ``(batch, latent_dim)``, and
``model.decode(z, y) -> logits`` ``(batch, 784)``. Reconstructions are
``sigmoid(decode(mu, y))``, samples are ``sigmoid(decode(z, y))`` with ``z ~ N(0, I)`` drawn here
with a fixed seed, and ``latent_dim`` is read off the encoder's output (not an attribute the
model declares). So ``reconstruct`` and ``generate`` cannot hand back stored images, and the
compression bonus is that of the code the decoder really receives. The scoring is
``helpers.metrics`` (the same functions the notebook shows students on their validation split).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import torch

from helpers import classifier, data, metrics

HELDOUT_ENV = "DGM_HELDOUT_SEED"
DEFAULT_SEED = 20270212
PER_CLASS = 100
SAMPLE_SEED = 0


def heldout_seed() -> int:
    """``$DGM_HELDOUT_SEED`` if set, else ``DEFAULT_SEED``."""
    return int(os.environ.get(HELDOUT_ENV) or DEFAULT_SEED)


def heldout(seed: int | None = None, per_class: int = PER_CLASS) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out split: ``per_class`` MNIST test images of each digit, chosen at random
    with ``seed`` (default ``heldout_seed()``), ordered by label.

    Returns images ``(10 * per_class, 28, 28)`` in [0, 1] and labels ``(10 * per_class,)`` int64.
    """
    x, y = data.load("mnist", "test")
    g = torch.Generator().manual_seed(heldout_seed() if seed is None else seed)
    idx = []
    for k in range(10):
        members = torch.nonzero(y == k).flatten()
        idx.append(members[torch.randperm(len(members), generator=g)[:per_class]].sort().values)
    idx = torch.cat(idx)
    return x[idx].reshape(-1, 28, 28), y[idx]


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


@torch.no_grad()
def codes(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The encoder's means ``(n, latent_dim)`` for images ``x`` ``(n, 28, 28)`` and labels ``y``."""
    dev = _device(model)
    mu, logvar = model.encode(x.reshape(len(x), 784).to(dev), y.to(dev))
    mu = _check(mu, len(x), "encode")
    _check(logvar, len(x), "encode (logvar)", cols=mu.shape[1])
    return mu


@torch.no_grad()
def decoded(model, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``sigmoid(model.decode(z, y))`` as images ``(n, 28, 28)``.

    Decoded in reversed order and flipped back, so a decoder that looks at anything but
    ``(z, y)`` (e.g. the images of the last ``encode`` call) gives wrong images.
    """
    dev = _device(model)
    logits = model.decode(z.flip(0).to(dev), y.flip(0).to(dev))
    return torch.sigmoid(_check(logits, len(z), "decode", cols=784)).flip(0).reshape(-1, 28, 28)


@dataclass
class Report:
    """The course's figures for one model on the held-out split, and the points they earn."""
    images: int
    latent_dim: int
    mse: float
    ssim: float
    compression_bonus: float
    per_class_fid: float
    accuracy: float
    lenet_frechet: float
    reconstruction_points: float
    generation_points: float

    def __str__(self) -> str:
        return (f"held-out split ({self.images} images): latent_dim {self.latent_dim}, "
                f"MSE {self.mse:.4f}, SSIM {self.ssim:.3f}, bonus {self.compression_bonus:.3f} "
                f"-> reconstruction {self.reconstruction_points:.2f}/{metrics.RECONSTRUCTION_MAX:g}; "
                f"per-class FID {self.per_class_fid:.2f}, accuracy {self.accuracy:.3f}, "
                f"LeNet Fréchet {self.lenet_frechet:.1f} "
                f"-> generation {self.generation_points:.2f}/{metrics.GENERATION_MAX:g}")


def evaluate(model, seed: int | None = None, per_class: int = PER_CLASS) -> Report:
    """Score ``model`` on the held-out split (``heldout(seed, per_class)``).

    Reconstructions of the held-out images give MSE and SSIM (means over images) and, with the
    latent size, ``metrics.reconstruction_points``. One sample per held-out image, of the same
    label, gives the per-class FID against the held-out images, the fraction the MNIST LeNet
    classifies as the requested label, the Fréchet distance on the LeNet's features, and
    ``metrics.generation_points``. Seeded: the same model gets the same report. Warnings are
    silenced (a graded cell that writes to stderr scores 0).
    """
    x, y = heldout(seed, per_class)
    was_training = model.training
    model.eval()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mu = codes(model, x, y)
            rec = decoded(model, mu, y)
            z = torch.randn(len(y), mu.shape[1], generator=torch.Generator().manual_seed(SAMPLE_SEED))
            fake = decoded(model, z, y)
    finally:
        model.train(was_training)
    lenet = classifier.load("mnist", verbose=False)
    latent_dim = mu.shape[1]
    mse, ssim = float(metrics.mse(x, rec).mean()), float(metrics.ssim(x, rec).mean())
    fid = metrics.per_class_fid(x, y, fake, y)
    acc = classifier.accuracy(lenet, fake.reshape(-1, 784), y)
    return Report(
        images=len(x), latent_dim=latent_dim, mse=mse, ssim=ssim,
        compression_bonus=metrics.compression_bonus(latent_dim), per_class_fid=fid, accuracy=acc,
        lenet_frechet=metrics.classifier_frechet(fake.reshape(-1, 784), x.reshape(-1, 784), lenet),
        reconstruction_points=metrics.reconstruction_points(ssim, mse, latent_dim),
        generation_points=metrics.generation_points(fid, acc),
    )
