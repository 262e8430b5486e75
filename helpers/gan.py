"""The GAN of notebook 05: a small convolutional generator and discriminator for 28x28 images
and the training loop. The losses are the notebook's; the loop takes one as an argument.

Conventions of the CS236 GAN code, so that its loss functions are drop-in:
``loss_fn(g, d, x_real, device=device) -> (d_loss, g_loss)``, ``g.dim_z`` is the latent size,
``g(z)`` maps ``(batch, dim_z)`` to images ``(batch, 1, 28, 28)`` and ``d(x)`` returns
**logits** of shape ``(batch,)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from . import data, plots

Loss = Callable[..., tuple[torch.Tensor, torch.Tensor]]


class Generator(nn.Module):
    """``z (batch, dim_z)`` -> images ``(batch, 1, 28, 28)`` with values in (0, 1)."""

    def __init__(self, dim_z: int = 64, width: int = 32):
        super().__init__()
        self.dim_z = dim_z
        self.net = nn.Sequential(
            nn.Linear(dim_z, 2 * width * 7 * 7), nn.BatchNorm1d(2 * width * 7 * 7), nn.ReLU(),
            nn.Unflatten(1, (2 * width, 7, 7)),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.BatchNorm2d(width), nn.ReLU(),  # 14 x 14
            nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Sigmoid(),  # 28 x 28
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images ``(n, 1, 28, 28)`` in eval mode (the mode is restored afterwards)."""
        dev = next(self.parameters()).device
        z = torch.randn(n, self.dim_z, generator=generator).to(dev)
        was_training = self.training
        self.eval()
        x = self(z)
        self.train(was_training)
        return x


class Discriminator(nn.Module):
    """Images ``(batch, 1, 28, 28)`` (or ``(batch, 784)``) -> logits ``(batch,)``."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2),  # 14 x 14
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),  # 7 x 7
            nn.Flatten(), nn.Linear(2 * width * 7 * 7, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.reshape(-1, 1, 28, 28)).squeeze(-1)


def gradients(loss: torch.Tensor, module: nn.Module, retain_graph: bool = False) -> list[torch.Tensor]:
    """d loss / d parameters of ``module``; zeros where ``loss`` does not depend on a parameter."""
    params = list(module.parameters())
    if not loss.requires_grad:
        return [torch.zeros_like(p) for p in params]
    grads = torch.autograd.grad(loss, params, retain_graph=retain_graph, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)]


def step(g: nn.Module, d: nn.Module, loss_fn: Loss, x_real: torch.Tensor,
         g_opt: torch.optim.Optimizer, d_opt: torch.optim.Optimizer,
         device: torch.device, order: str = "simultaneous") -> tuple[float, float]:
    """One update of both networks; returns the two losses (``g_loss`` as the generator stepped on it).

    ``order="simultaneous"``: both gradients are taken at the current parameters, then both
    optimisers step. ``order="alternating"`` (discriminator first): the discriminator steps on
    ``d_loss``, then ``loss_fn`` is called again and the generator steps on the ``g_loss`` of the
    updated discriminator (fresh fakes). Stepping ``d`` and then calling ``g_loss.backward()`` on
    the first call's graph, as CS236's loop did, changes tensors that graph still needs, which
    current torch refuses; the second call is what that order means now.
    """
    if order not in ("simultaneous", "alternating"):
        raise ValueError(f"order must be 'simultaneous' or 'alternating', got {order!r}")
    d_loss, g_loss = loss_fn(g, d, x_real, device=device)
    if order == "alternating":
        updates = [(d_opt, d, gradients(d_loss, d))]
        _apply(updates)
        g_loss = loss_fn(g, d, x_real, device=device)[1]
        _apply([(g_opt, g, gradients(g_loss, g))])
        return d_loss.item(), g_loss.item()
    d_grads = gradients(d_loss, d, retain_graph=True)
    g_grads = gradients(g_loss, g)
    _apply([(d_opt, d, d_grads), (g_opt, g, g_grads)])
    return d_loss.item(), g_loss.item()


def _apply(updates: list[tuple[torch.optim.Optimizer, nn.Module, list[torch.Tensor]]]) -> None:
    for opt, module, grads in updates:
        for p, grad in zip(module.parameters(), grads):
            p.grad = grad
        opt.step()


@dataclass
class History:
    """What ``train`` leaves behind: the losses per iteration and the saved sample grids."""
    d_loss: list[float] = field(default_factory=list)
    g_loss: list[float] = field(default_factory=list)
    grids: list[Path] = field(default_factory=list)


def train(g: Generator, d: Discriminator, loss_fn: Loss, x: torch.Tensor, *,
          iterations: int | None = None, batch_size: int = 64, lr: float = 1e-3,
          out_dir: str | Path = "out", save_every: int = 100, device: torch.device | None = None,
          generator: torch.Generator | None = None, progress: bool = True,
          order: str = "simultaneous") -> History:
    """Train ``g`` and ``d`` with ``loss_fn`` on images ``x`` ``(N, 784)`` in [0, 1].

    One epoch of shuffled mini-batches, or its first ``iterations`` if given. Adam with
    ``lr`` and betas (0.5, 0.999). Before update ``i`` with ``i % save_every == 0``, a 10x10
    grid from a fixed latent batch is saved as ``out_dir/fake_{i:04d}.png``. Returns a
    ``History`` (losses per iteration, paths of the grids in order); ``g`` and ``d`` end in eval mode.
    ``order``: how each step updates the two networks (``step``).

    Its own loop, not ``train.Trainer``: each step updates two networks with two Adam
    optimisers (betas of GANs, not ``train.adam``'s) from one loss function that returns two
    losses (``step``), and there is no validation loss whose best epoch could be kept. The
    batches come from ``data.batches`` all the same.
    """
    from tqdm.auto import tqdm

    device = device or torch.device("cpu")
    g.to(device).train()
    d.to(device).train()
    g_opt = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999))
    d_opt = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999))
    z_fixed = torch.randn(100, g.dim_z, generator=torch.Generator().manual_seed(0))
    total = -(-len(x) // batch_size)
    total = total if iterations is None else min(iterations, total)
    history = History()
    bar = tqdm(data.batches(x, batch_size=batch_size, generator=generator), total=total,
               disable=not progress, desc="GAN", mininterval=1.0)
    for i, (xb,) in enumerate(bar):
        if i >= total:
            break
        if i % save_every == 0:
            g.eval()
            with torch.no_grad():
                history.grids.append(plots.save_grid(g(z_fixed.to(device)).cpu(),
                                                     Path(out_dir) / f"fake_{i:04d}.png"))
            g.train()
        d_loss, g_loss = step(g, d, loss_fn, xb.reshape(-1, 1, 28, 28).to(device), g_opt, d_opt, device, order)
        history.d_loss.append(d_loss)
        history.g_loss.append(g_loss)
        if i % 20 == 0:
            bar.set_postfix(d_loss=f"{d_loss:.3f}", g_loss=f"{g_loss:.3f}")
    bar.close()
    g.eval()
    d.eval()
    return history
