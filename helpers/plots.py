"""Image grids, loss curves, latent scatter plots, and figures saved whole or one panel at a time."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.transforms import Bbox
import torch


def image_grid(images: torch.Tensor, nrow: int = 10, pad: int = 2) -> torch.Tensor:
    """Tile images into one ``(H, W)`` array with values in [0, 1].

    ``images``: ``(n, 784)``, ``(n, 28, 28)`` or ``(n, 1, 28, 28)``; ``nrow`` images per row.
    """
    x = images.detach().float().cpu().reshape(len(images), 28, 28).clamp(0, 1)
    rows = -(-len(x) // nrow)
    grid = torch.ones(rows * (28 + pad) + pad, nrow * (28 + pad) + pad)
    for i, img in enumerate(x):
        r, c = divmod(i, nrow)
        grid[pad + r * (28 + pad): pad + r * (28 + pad) + 28, pad + c * (28 + pad): pad + c * (28 + pad) + 28] = img
    return grid


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 10) -> Path:
    """Save ``image_grid(images, nrow)`` as a grey-scale PNG (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, image_grid(images, nrow).numpy(), cmap="gray", vmin=0, vmax=1)
    return path


def show_grid(images: torch.Tensor, nrow: int = 10, title: str | None = None, ax=None):
    """Draw ``image_grid(images, nrow)`` on ``ax`` (a new figure if None); returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(nrow * 0.6, -(-len(images) // nrow) * 0.6 + 0.4))
    ax.imshow(image_grid(images, nrow).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_losses(runs: dict[str, list[dict]], ax=None, keys: tuple[str, str] = ("train_loss", "test_loss")):
    """Loss curves of several runs: ``runs`` maps a label to rows ``{epoch, train_loss, test_loss}``
    (e.g. ``ResultsFolder.metrics()``); solid lines for ``keys[0]``, dashed for ``keys[1]``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for i, (label, rows) in enumerate(runs.items()):
        epochs = [r["epoch"] for r in rows]
        color = f"C{i}"
        ax.plot(epochs, [r[keys[0]] for r in rows], color=color, marker=".", label=f"{label} ({keys[0].split('_')[0]})")
        ax.plot(epochs, [r[keys[1]] for r in rows], color=color, ls="--", marker=".", label=f"{label} ({keys[1].split('_')[0]})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per image")
    ax.legend()
    return ax


def scatter_latents(z: torch.Tensor, labels: torch.Tensor, ax=None, title: str | None = None, s: float = 2):
    """Scatter 2-D latent codes ``z`` ``(n, 2)`` coloured by ``labels`` ``(n,)`` (ten classes),
    with a colour bar; returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    z = z.detach().float().cpu()
    points = ax.scatter(z[:, 0], z[:, 1], c=labels.cpu(), cmap="tab10", vmin=-0.5, vmax=9.5, s=s)
    ax.figure.colorbar(points, ax=ax, ticks=range(10), label="label")
    ax.set(xlabel="$z_1$", ylabel="$z_2$")
    if title:
        ax.set_title(title)
    return ax


def save_figure(fig_or_ax, path: str | Path, dpi: int = 150) -> Path:
    """Save a figure as a PNG (folders created). Given an axes, only its part of the figure:
    the axes with its title, labels and colour bar (e.g. one panel of a side-by-side view)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(fig_or_ax, plt.Axes):
        ax = fig_or_ax
        fig = ax.figure
        renderer = fig.canvas.get_renderer()
        bars = [m.colorbar.ax for m in [*ax.collections, *ax.images] if getattr(m, "colorbar", None)]
        box = Bbox.union([a.get_tightbbox(renderer) for a in [ax, *bars]])
        fig.savefig(path, dpi=dpi, bbox_inches=box.transformed(fig.dpi_scale_trans.inverted()).padded(0.05))
    else:
        fig_or_ax.savefig(path, dpi=dpi)
    return path
