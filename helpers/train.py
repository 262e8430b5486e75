"""Training loops the notebooks call: the VAE's iteration loop, an epoch ``Trainer`` that
validates every epoch and keeps the best weights, and a results folder per run.

Every loop takes mini-batches from in-memory tensors (``helpers.data.batches``), never a
``DataLoader``, and shows a ``tqdm`` progress bar.
"""
from __future__ import annotations

import copy
import csv
import math
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm.auto import tqdm

from . import data, plots, runtime


def adam(model: nn.Module, lr: float) -> torch.optim.Adam:
    """Adam over the trainable parameters; PyTorch's fused kernel on CPU and CUDA (same
    update, one pass over the weights instead of a dozen ops per parameter)."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, fused=fused or None)


def warmup_stable_decay(step: int, total: int, warmup: int = 100, decay: float = 0.3) -> float:
    """Learning-rate factor: linear warm-up over ``warmup`` steps, then 1, then a linear decay
    to 0 over the last ``decay`` fraction of the ``total`` steps (0 < decay <= 1)."""
    return min(1.0, (step + 1) / warmup, (total - step) / (decay * total))


def _loss(model: nn.Module, *batch: torch.Tensor) -> torch.Tensor:
    out = model.loss(*batch)
    return out[0] if isinstance(out, tuple) else out


def train_vae(model: nn.Module, x: torch.Tensor, iterations: int, batch_size: int = 128,
              lr: float = 3e-3, warmup: int = 100, generator: torch.Generator | None = None,
              evaluate: Callable[[nn.Module], float] | None = None, eval_every: int = 1000,
              num_threads: int | None = None, progress: bool = True) -> list[dict]:
    """Minimise ``model.loss(batch)`` for ``iterations`` Adam steps; returns the history.

    ``x``: training images ``(N, 784)`` in [0, 1], binarized anew for every batch
    (``data.sample_binary``). The learning rate warms up, stays, and decays linearly to 0
    over the last 30 % of the steps (``warmup_stable_decay``). Every ``eval_every`` steps and
    at the end, ``evaluate(model)`` (if given) is recorded. History rows: ``iteration``,
    ``seconds`` (training time only, evaluation excluded), ``loss`` (mean over the last
    steps), ``value`` (evaluation). Fewer than ``batch_size`` images is a ``ValueError``
    (every step takes a full batch).
    """
    if len(x) < batch_size:
        raise ValueError(f"train_vae needs at least batch_size={batch_size} images, got {len(x)}")
    opt = adam(model, lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_stable_decay(s, iterations, warmup))
    history, losses, seconds, step = [], [], 0.0, 0
    model.train()
    with runtime.threads(num_threads), tqdm(total=iterations, disable=not progress, mininterval=1.0) as bar:
        while step < iterations:
            for (xb,) in data.batches(x, batch_size=batch_size, generator=generator):
                if len(xb) < batch_size:
                    continue  # equal batches: every step has the same noise level
                start = time.perf_counter()
                loss = _loss(model, data.sample_binary(xb, generator))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                seconds += time.perf_counter() - start
                losses.append(loss.item())
                step += 1
                bar.update()
                if step % 100 == 0:
                    bar.set_postfix(loss=f"{sum(losses[-100:]) / len(losses[-100:]):.2f}")
                if step % eval_every == 0 or step == iterations:
                    row = {"iteration": step, "seconds": seconds,
                           "loss": sum(losses[-eval_every:]) / len(losses[-eval_every:])}
                    if evaluate is not None:
                        model.eval()
                        row["value"] = float(evaluate(model))
                        model.train()
                    history.append(row)
                if step == iterations:
                    break
    model.eval()
    return history


@contextmanager
def _evaluation_images(x: torch.Tensor, seed: int) -> Iterator[torch.Tensor]:
    """The block runs with torch's global generator seeded with ``seed`` (its state restored
    after) on ``x`` (n, 784) binarized once by ``data.binarized(x, seed)``, the images the
    course's evaluator grades on."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield data.binarized(x, seed)


@torch.no_grad()
def evaluate_lower_bound(model: nn.Module, x: torch.Tensor, repeat: int = 100, seed: int = 0
                         ) -> tuple[float, float, float]:
    """CS236's evaluation: ``(nelbo, kl, rec)`` of ``model.negative_elbo_bound`` on ``x``.

    ``x`` (n, 784) in [0, 1] is binarized once with ``data.binarized(x, seed)`` (the images the
    course's evaluator grades on); the bound is averaged over ``repeat`` calls (fresh latent
    samples each time, drawn after ``torch.manual_seed(seed)``). The global random state is
    restored afterwards, so evaluating during training leaves its noise as it was.
    """
    totals = torch.zeros(3)
    with _evaluation_images(x, seed) as xb:
        for _ in range(repeat):
            totals += torch.stack([t.detach().float().cpu() for t in model.negative_elbo_bound(xb)])
    nelbo, kl, rec = (totals / repeat).tolist()
    return nelbo, kl, rec


@torch.no_grad()
def evaluate_iwae_bound(model: nn.Module, x: torch.Tensor, iw: int, repeat: int | None = None,
                        seed: int = 0, chunk: int = 10_000) -> float:
    """The negative IWAE bound ``model.negative_iwae_bound(x, iw)[0]`` with ``iw`` samples per
    image, averaged over the images of ``x`` and over ``repeat`` calls.

    ``x`` (n, 784) in [0, 1] is binarized once as in ``evaluate_lower_bound``. ``repeat``
    defaults to ``max(100 // iw, 1)`` (about 100 latent draws per image whatever ``iw``). Each
    call gets at most ``max(1, chunk // iw)`` images, so it decodes at most about ``chunk``
    codes. Seeded; the global random state is restored afterwards.
    """
    repeat = max(100 // iw, 1) if repeat is None else repeat
    per_call = max(1, chunk // iw)
    total = 0.0
    with _evaluation_images(x, seed) as xb:
        for _ in range(repeat):
            for i in range(0, len(xb), per_call):
                part = xb[i: i + per_call]
                total += float(model.negative_iwae_bound(part, iw)[0]) * len(part)
    return total / (repeat * len(xb))


class Trainer:
    """Epoch training with Adam, a validation pass after every epoch, and the best weights kept.

    The data are one tensor or a tuple of equally long tensors, batched together as
    ``data.batches(*tensors)`` does, e.g. images ``(N, 28, 28)`` alone or ``(images, labels)``.
    ``loss_fn(model, *batch) -> scalar`` defaults to ``model.loss(*batch)`` (first item if a
    tuple). ``transform`` is applied to the first tensor of each training batch (e.g.
    ``torch.bernoulli`` on the images). After ``fit`` the model holds the weights of the epoch
    with the lowest validation loss (``best_epoch``, ``best_state``; also saved to
    ``checkpoint`` if given); with ``keep_best=False`` (e.g. when the second set is the test
    set) or without a validation set it keeps the last weights.
    """

    def __init__(self, model: nn.Module, lr: float = 1e-3, batch_size: int = 100,
                 loss_fn: Callable[..., torch.Tensor] | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 generator: torch.Generator | None = None, checkpoint: str | Path | None = None,
                 keep_best: bool = True):
        self.keep_best = keep_best
        self.model, self.batch_size, self.generator = model, batch_size, generator
        self.loss_fn = loss_fn or _loss
        self.transform = transform
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.opt = adam(model, lr)
        self.history: list[dict] = []
        self.best_epoch, self.best_state, self.best_loss = 0, None, math.inf

    @torch.no_grad()
    def evaluate(self, val: Tensors) -> float:
        """Mean loss over ``val`` (batches in order, weighted by size), in eval mode."""
        self.model.eval()
        tensors = _tensors(val)
        total = sum(self.loss_fn(self.model, *batch).item() * len(batch[0])
                    for batch in data.batches(*tensors, batch_size=1000, shuffle=False))
        return total / len(tensors[0])

    def fit(self, train: Tensors, val: Tensors | None, epochs: int,
            on_epoch: Callable[[dict], None] | None = None, progress: bool = True) -> list[dict]:
        """Train ``epochs`` epochs on ``train``; rows ``{epoch, train_loss, val_loss}`` (no
        ``val_loss`` if ``val`` is None); ``on_epoch(row)`` after each."""
        train = _tensors(train)
        for _ in range(epochs):
            epoch = len(self.history) + 1
            self.model.train()
            total, n = 0.0, 0
            bar = tqdm(data.batches(*train, batch_size=self.batch_size, generator=self.generator),
                       total=-(-len(train[0]) // self.batch_size), desc=f"epoch {epoch}",
                       disable=not progress, mininterval=1.0, leave=False)
            for xb, *rest in bar:
                loss = self.loss_fn(self.model, self.transform(xb) if self.transform else xb, *rest)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                total, n = total + loss.item() * len(xb), n + len(xb)
            row = {"epoch": epoch, "train_loss": total / n}
            if val is not None:
                row["val_loss"] = self.evaluate(val)
            self.history.append(row)
            if val is not None and row["val_loss"] < self.best_loss and self.keep_best:
                self.best_epoch, self.best_loss = epoch, row["val_loss"]
                self.best_state = copy.deepcopy(self.model.state_dict())
                if self.checkpoint:
                    self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
                    torch.save(self.best_state, self.checkpoint)
            if progress:
                print(f"epoch {epoch}: train {row['train_loss']:.3f}"
                      + (f", val {row['val_loss']:.3f}" if val is not None else "")
                      + (" (best)" if self.keep_best and self.best_epoch == epoch else ""))
            if on_epoch:
                on_epoch(row)
        if self.keep_best and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        self.model.eval()
        return self.history


Tensors = torch.Tensor | tuple[torch.Tensor, ...]  # what Trainer batches: one tensor or several


def _tensors(d: Tensors) -> tuple[torch.Tensor, ...]:
    return tuple(d) if isinstance(d, (tuple, list)) else (d,)


def run_name(kind: str, arch: str, lr: float, epochs: int) -> str:
    """``run_name("AE", "ae(512)", 1e-3, 100) == "AE-arch=ae(512)-lr=0.001-ep=100"``."""
    return f"{kind}-arch={arch}-lr={lr:g}-ep={epochs}"


class ResultsFolder:
    """One run's folder: ``perf_metrics.csv`` (epoch, train loss, test loss), per-epoch
    ``reconstruction_<epoch>.png`` and ``sample_<epoch>.png``, and ``loss_curves.png``. Epochs
    are counted from 0 as in Project 3: a 100-epoch run ends with ``sample_99.png``.

    ``reconstruct(x) -> x_hat`` and ``sample(n) -> images`` are called without gradients on
    the fixed images ``x_show`` (the first row of the reconstruction grid; second row: output).
    """

    def __init__(self, folder: str | Path, reconstruct: Callable[[torch.Tensor], torch.Tensor],
                 sample: Callable[[int], torch.Tensor], x_show: torch.Tensor, n_samples: int = 100):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.reconstruct, self.sample, self.x_show, self.n_samples = reconstruct, sample, x_show, n_samples
        self.csv = self.folder / "perf_metrics.csv"
        with open(self.csv, "w", newline="") as f:
            csv.writer(f).writerow(["epoch", "train_loss", "test_loss"])

    @torch.no_grad()
    def __call__(self, row: dict) -> None:
        """Record one epoch (a ``Trainer`` row, epochs from 1, whose ``val_loss`` is the test loss)."""
        epoch = row["epoch"] - 1
        with open(self.csv, "a", newline="") as f:
            csv.writer(f).writerow([epoch, f"{row['train_loss']:.6f}", f"{row['val_loss']:.6f}"])
        pair = torch.cat([self.x_show, self.reconstruct(self.x_show).reshape(len(self.x_show), -1)])
        plots.save_grid(pair, self.folder / f"reconstruction_{epoch}.png", nrow=len(self.x_show))
        plots.save_grid(self.sample(self.n_samples), self.folder / f"sample_{epoch}.png", nrow=10)
        fig = Figure(figsize=(6, 3.5))  # not pyplot: nothing appears in the notebook
        plots.plot_losses({self.folder.name: self.metrics()}, ax=fig.add_subplot())
        fig.tight_layout()
        fig.savefig(self.folder / "loss_curves.png", dpi=100)

    def metrics(self) -> list[dict]:
        """The rows of ``perf_metrics.csv`` as floats (epoch as int)."""
        with open(self.csv) as f:
            return [{"epoch": int(r["epoch"]), "train_loss": float(r["train_loss"]),
                     "test_loss": float(r["test_loss"])} for r in csv.DictReader(f)]


REUSE_ENV = "DGM_REUSE_CHECKPOINTS"


def checkpointed(model: nn.Module, path: str | Path, fit: Callable[[nn.Module], object],
                 reuse: bool | None = None) -> nn.Module:
    """Train ``model`` with ``fit(model)`` and save its weights to ``path``, or, when asked,
    load the weights a previous run saved there instead of training again.

    ``reuse`` defaults to the environment variable ``DGM_REUSE_CHECKPOINTS=1`` (set it, or pass
    ``reuse=True``, to pick up a run after a kernel restart). Under nbgrader it is always off:
    a grade is earned by training, never by a file left in the submission. A checkpoint that
    does not fit the model (another architecture) is reported and the model is trained anew.
    Returns ``model`` in eval mode.
    """
    path = Path(path)
    if reuse is None:
        reuse = os.environ.get(REUSE_ENV, "") not in ("", "0")
    if reuse and not runtime.grading() and path.is_file():
        try:
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            print(f"loaded saved weights from {path} (delete the file or set reuse=False to retrain)")
            return model.eval()
        except Exception as e:  # another architecture, or a file cut short while saving
            reason = (str(e).splitlines() or [type(e).__name__])[0]
            print(f"{path} cannot be loaded into this model ({reason}); training anew")
    fit(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model.eval()
