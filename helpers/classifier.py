"""A small LeNet-style classifier for MNIST and Fashion-MNIST, used to compare image sets.

Its penultimate layer gives the features of the Fréchet distance (``helpers.metrics``).
It is trained here, on the first use, in a few seconds of CPU time, and cached under
``<data>/classifiers/lenet_<name>.pt``; nothing is downloaded.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from . import data

FEATURES = 128  # width of the penultimate layer


class LeNet(nn.Module):
    """Two conv-pool blocks and two linear layers; input ``(batch, 784)`` or ``(batch, 1, 28, 28)``
    with values in [0, 1]."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),   # 16 x 12 x 12
            nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),  # 32 x 4 x 4
        )
        self.fc = nn.Linear(32 * 4 * 4, FEATURES)
        self.out = nn.Linear(FEATURES, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations ``(batch, 128)``."""
        return F.relu(self.fc(self.conv(x.reshape(-1, 1, 28, 28)).flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(batch, 10)``."""
        return self.out(self.features(x))


@torch.no_grad()
def features(model: LeNet, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``model.features`` over ``x`` in batches, without gradients, on the model's device: ``(n, 128)``."""
    model.eval()
    dev = next(model.parameters()).device
    return torch.cat([model.features(x[i: i + batch_size].to(dev)).cpu()
                      for i in range(0, len(x), batch_size)])


@torch.no_grad()
def accuracy(model: LeNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Fraction of ``x`` ``(n, 784)`` classified as ``y`` ``(n,)``."""
    model.eval()
    dev = next(model.parameters()).device
    hits = sum(int((model(x[i: i + batch_size].to(dev)).argmax(-1).cpu() == y[i: i + batch_size]).sum())
               for i in range(0, len(x), batch_size))
    return hits / len(x)


def train(name: str = "fashion", epochs: int = 2, batch_size: int = 128, lr: float = 2e-3,
          seed: int = 0) -> LeNet:
    """Train a fresh ``LeNet`` on the training split of ``name`` (``"mnist"`` or ``"fashion"``).

    ``train.Trainer`` (Adam) on images and labels, cross-entropy, ``epochs`` passes without a
    validation set; on 2 CPU cores about 30 s. Returns the model in eval mode.
    """
    from .train import Trainer  # here: helpers.train imports pyplot, which metrics' users need not load

    torch.manual_seed(seed)
    model = LeNet()
    trainer = Trainer(model, lr=lr, batch_size=batch_size, generator=torch.Generator().manual_seed(seed),
                      loss_fn=lambda m, x, y: F.cross_entropy(m(x), y))
    trainer.fit(data.load(name, "train"), None, epochs, progress=False)
    return model


def cache_path(name: str = "fashion", cache_dir: Path | None = None) -> Path:
    """Where the trained classifier of ``name`` is kept: ``<data>/classifiers/lenet_<name>.pt``."""
    return Path(cache_dir or data.data_root() / "classifiers") / f"lenet_{name}.pt"


def load(name: str = "fashion", cache_dir: Path | None = None, verbose: bool = True) -> LeNet:
    """The classifier of ``name``: read from the cache, or trained now and cached (eval mode, CPU)."""
    data._folder(name)
    path = cache_path(name, cache_dir)
    model = LeNet()
    if path.is_file():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    if verbose:
        print(f"training the {name} classifier once (cached in {path}) ...", flush=True)
    model = train(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.part")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)  # atomic: a parallel reader sees the old state or the whole file
    return model


def main() -> None:
    """``python -m helpers.classifier``: train and cache both classifiers now; print test accuracy."""
    for name in data.NAMES:
        model = load(name)
        x, y = data.load(name, "test")
        print(f"{name}: test accuracy {accuracy(model, x, y):.4f} ({cache_path(name)})")


if __name__ == "__main__":
    main()
