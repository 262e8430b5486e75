"""CelebA faces as in-memory tensors, read with ``torchvision.datasets.CelebA`` from a folder you
supply, and the training run of notebook 06 (a results folder per run, epochs counted from 0).

**Where.** ``$DGM_CELEBA`` if set, else ``data/celeba`` at the repository root. The folder holds
what torchvision keeps in ``<root>/celeba/``::

    img_align_celeba/000001.jpg ... 202599.jpg   aligned and cropped faces, 178 x 218 RGB JPEGs
    list_eval_partition.txt                      image -> 0 (train), 1 (valid), 2 (test)
    list_attr_celeba.txt                         40 binary attributes per image
    identity_CelebA.txt                          person id per image
    list_bbox_celeba.txt                         face boxes (in the uncropped images)
    list_landmarks_align_celeba.txt              5 landmarks per aligned image

``$DGM_CELEBA`` may also name the folder above it (torchvision's ``root``, which holds
``celeba/``). Nothing is downloaded: ``CelebAMissing`` says how to get the files.

**Integrity.** torchvision refuses a folder unless the MD5 of each of the five annotation files
equals the one it lists in ``CelebA.file_list`` (the official files; torchvision 0.29 checks
them every time a dataset is constructed, ``_check_integrity``); of the images it only checks
that their folder exists. ``check`` verifies the same beforehand, so that the error can name the missing or damaged
file. A subset or miniature of CelebA (the tests build one) cannot hold the official annotation
files: it lists the MD5 of its own in ``md5sums.txt`` next to them (``md5sum``'s format, written
by ``write_md5sums``), and those are checked instead, by this module and by torchvision (the
loader gives them to torchvision as the dataset's ``file_list``).

**Images.** Each face is center-cropped to 148 x 148 pixels and resized to 64 x 64 (antialiased).
Subsets come back as ``uint8`` tensors ``(n, 3, 64, 64)``, 12 KiB per image (50 000 images take
614 MB; as float32 they would take four times that); ``to_unit`` turns a batch into float32 in
[0, 1], the models' input.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import os
import time
from pathlib import Path
from typing import Protocol

import torch
import torchvision
from matplotlib.figure import Figure
from torch import nn
from torchvision import transforms
from tqdm.auto import tqdm

from . import data, plots, runtime, train

ENV_VAR = "DGM_CELEBA"
REPO = Path(__file__).resolve().parents[1]
IMAGES = "img_align_celeba"
ANNOTATIONS = ("list_eval_partition.txt", "list_attr_celeba.txt", "identity_CelebA.txt",
               "list_bbox_celeba.txt", "list_landmarks_align_celeba.txt")
MANIFEST = "md5sums.txt"
SPLITS = ("train", "valid", "test")
OFFICIAL_PAGE = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"


class CelebAMissing(RuntimeError):
    """The CelebA folder is missing, incomplete or damaged; the message says how to fix it."""


# --- where the data is -------------------------------------------------------------------------

def celeba_folder(folder: str | Path | None = None) -> Path:
    """The folder holding ``img_align_celeba/`` and the annotation files.

    ``folder`` (default ``$DGM_CELEBA``, else ``<repo>/data/celeba``) may be that folder or the one
    above it that holds ``celeba/`` (torchvision's ``root``). The path is returned even when
    nothing is there; ``check`` says what is missing.
    """
    path = Path(folder or os.environ.get(ENV_VAR) or REPO / "data" / "celeba").expanduser()
    if not _holds_celeba(path) and _holds_celeba(path / "celeba"):
        return path / "celeba"
    return path


def _holds_celeba(path: Path) -> bool:
    return (path / IMAGES).exists() or any((path / name).exists() for name in ANNOTATIONS)


def how_to_get(folder: Path) -> str:
    """Where to get CelebA and where to put it (the end of every ``CelebAMissing`` message)."""
    return (f"Get the aligned and cropped faces (Img/img_align_celeba.zip) and the annotation files "
            f"(Anno/ and Eval/) from the official CelebA page, {OFFICIAL_PAGE}, or let torchvision "
            f"fetch them once: pip install gdown, then python -c \"import torchvision; "
            f"torchvision.datasets.CelebA('{folder.parent}', download=True)\" (Google Drive often "
            f"refuses with a quota error; download by hand then). Unzip so that "
            f"{folder / IMAGES / '000001.jpg'} exists next to {', '.join(ANNOTATIONS)}, or set "
            f"${ENV_VAR} to the folder that holds them. A subset of your own needs an {MANIFEST} "
            f"(python -m helpers.celeba --write-md5sums). CelebA is for non-commercial research "
            f"and teaching only (see its page).")


# --- integrity ---------------------------------------------------------------------------------

def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def official_checksums() -> dict[str, str]:
    """``file name -> MD5`` of the official annotation files, as torchvision lists them."""
    listed = {name: md5 for _, md5, name in torchvision.datasets.CelebA.file_list}
    return {name: listed[name] for name in ANNOTATIONS}


def expected_checksums(folder: Path) -> tuple[dict[str, str], str]:
    """The MD5s the annotation files of ``folder`` must have, and where they come from: its
    ``md5sums.txt`` if it has one (entries it lacks stay official), else torchvision's list."""
    sums = official_checksums()
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return sums, "the MD5s of the official files (torchvision's list)"
    for line in manifest.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            md5, name = parts[0].lower(), parts[1].lstrip("*")
            if name in sums:
                sums[name] = md5
    return sums, f"the MD5s in {manifest}"


def write_md5sums(folder: str | Path) -> Path:
    """Write ``md5sums.txt`` for the annotation files now in ``folder`` (a subset of your own);
    returns its path."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    manifest.write_text("".join(f"{_md5(folder / name)}  {name}\n" for name in ANNOTATIONS))
    return manifest


def check(folder: str | Path | None = None) -> Path:
    """Raise ``CelebAMissing`` unless the folder has the image folder (not empty) and the five
    annotation files with the expected MD5s; returns the folder."""
    folder = celeba_folder(folder)
    if not folder.is_dir():
        raise CelebAMissing(f"CelebA not found: there is no folder {folder}. " + how_to_get(folder))
    missing = [name for name in ANNOTATIONS if not (folder / name).is_file()]
    images = folder / IMAGES
    if not images.is_dir():
        missing.insert(0, f"{IMAGES}/")
    else:
        with os.scandir(images) as entries:  # the first thousand names are enough to tell
            if not any(entry.name.endswith(".jpg") for _, entry in zip(range(1000), entries)):
                missing.insert(0, f"{IMAGES}/ (no .jpg in it)")
    if missing:
        raise CelebAMissing(f"CelebA in {folder} is incomplete, missing: {', '.join(missing)}. "
                            + how_to_get(folder))
    expected, source = expected_checksums(folder)
    damaged = [f"{name} (MD5 {md5})" for name in ANNOTATIONS
               if (md5 := _md5(folder / name)) != expected[name]]
    if damaged:
        raise CelebAMissing(f"CelebA in {folder} is damaged: {', '.join(damaged)} do not match {source}. "
                            f"Replace these files with fresh copies. " + how_to_get(folder))
    return folder


# --- loading ---------------------------------------------------------------------------------

class _CelebA(torchvision.datasets.CelebA):
    """torchvision's CelebA on a folder of any name, checked against ``checksums``."""

    def __init__(self, folder: Path, checksums: dict[str, str], **kwargs):
        self.base_folder = folder.name  # torchvision reads <root>/<base_folder>/...
        self.file_list = [("", md5, name) for name, md5 in checksums.items()]
        super().__init__(str(folder.parent), **kwargs)


def _rgb(image):
    return image.convert("RGB")


def image_transform(size: int = 64, crop: int = 148) -> transforms.Compose:
    """PIL face (178 x 218) -> uint8 tensor ``(3, size, size)``: center crop ``crop`` x ``crop``,
    antialiased resize."""
    return transforms.Compose([transforms.Lambda(_rgb), transforms.CenterCrop(crop),
                               transforms.Resize(size, antialias=True), transforms.PILToTensor()])


def dataset(split: str = "train", size: int = 64, crop: int = 148,
            folder: str | Path | None = None) -> torchvision.datasets.CelebA:
    """The checked folder as a ``torchvision.datasets.CelebA`` (``download=False``, no targets):
    item ``i`` is ``(uint8 image (3, size, size), None)``; ``.filename[i]`` its file."""
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split must be one of {SPLITS} or 'all', not {split!r}")
    folder = check(folder)
    checksums, _ = expected_checksums(folder)
    try:
        return _CelebA(folder, checksums, split=split, target_type=[],
                       transform=image_transform(size, crop), download=False)
    except (RuntimeError, ValueError, IndexError, OSError) as e:  # unreadable or inconsistent lists
        raise CelebAMissing(f"CelebA in {folder} is damaged: torchvision cannot read its annotation files "
                            f"({type(e).__name__}: {e}). " + how_to_get(folder)) from None


def _cache_file(cache: Path, split: str, n: int, size: int, crop: int, seed: int) -> Path:
    return Path(cache) / f"celeba-{split}-n{n}-{size}px-crop{crop}-seed{seed}.pt"


def celeba_subset(n: int = 50_000, split: str = "train", size: int = 64, crop: int = 148,
                  seed: int = 0, folder: str | Path | None = None, cache: str | Path | None = None,
                  progress: bool = True) -> torch.Tensor:
    """``n`` faces of ``split`` as a uint8 tensor ``(n, 3, size, size)`` (see ``to_unit``).

    The images are a random choice (``seed``) among the split's (train: 162 770 in the official
    partition, valid: 19 867, test: 19 962), kept in file order. ``cache``: a folder where the
    tensor is saved after the first read and taken from afterwards (never under grading); a
    cached tensor is used only if it was read from the same file names. Raises ``CelebAMissing`` for a
    missing or damaged folder or image, ``ValueError`` if the split has fewer than ``n`` images.
    """
    ds = dataset(split, size, crop, folder)
    if not 0 < n <= len(ds):
        raise ValueError(f"asked for {n} images of CelebA's {split} split, which has {len(ds)} "
                         f"in {celeba_folder(folder)}")
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    files = [ds.filename[i] for i in order.tolist()]
    path = _cache_file(cache, split, n, size, crop, seed) if cache and not runtime.grading() else None
    if path and path.is_file():
        try:
            saved = torch.load(path, weights_only=True)
        except Exception:  # cut short while saving, or not ours: read the images again
            saved = {}
        if saved.get("files") == files:
            return saved["images"]
    out = torch.empty(n, 3, size, size, dtype=torch.uint8)
    for k, i in enumerate(tqdm(order.tolist(), desc=f"CelebA {split}", disable=not progress, mininterval=1.0)):
        try:
            out[k] = ds[i][0]
        except (OSError, SyntaxError, ValueError) as e:  # missing file, truncated or not a JPEG
            raise CelebAMissing(f"CelebA in {ds.root}/{ds.base_folder} is damaged: {IMAGES}/{files[k]} cannot be "
                                f"read ({type(e).__name__}: {e}). " + how_to_get(Path(ds.root) / ds.base_folder)) from None
    if path:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"files": files, "images": out}, path)
        except OSError as e:
            print(f"could not cache the images in {path} ({e}); they are read again next time")
    return out


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 images ``(..., 3, H, W)`` -> float32 in [0, 1], same shape and device."""
    return x.float().div_(255)


def available(folder: str | Path | None = None) -> str | None:
    """``None`` if the CelebA folder passes ``check``, else the reason (``CelebAMissing``'s message)."""
    try:
        check(folder)
    except CelebAMissing as e:
        return str(e)
    return None


# --- the training run -------------------------------------------------------------------------

class FaceModel(Protocol):
    """What ``train_run`` needs of a model (images are float ``(batch, 3, 64, 64)`` in [0, 1])."""

    latent: int

    def loss(self, x: torch.Tensor) -> torch.Tensor: ...           # scalar, mean over the batch
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor: ...    # images, same shape as x
    def generate(self, z: torch.Tensor) -> torch.Tensor: ...       # (n, latent) -> (n, 3, 64, 64)


def save_grid(images: torch.Tensor, path: str | Path, nrow: int = 8) -> Path:
    """Save RGB images ``(n, 3, H, W)`` in [0, 1] as one PNG grid, ``nrow`` per row (folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torchvision.utils.save_image(images.detach().float().cpu().clamp(0, 1), path, nrow=nrow, padding=2, pad_value=1.0)
    return path


def save_loss_curves(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Train and test loss per epoch (rows ``{epoch, train_loss, test_loss}``) as a PNG."""
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    plots.plot_losses({"VAE": rows}, ax=ax)
    ax.set_ylabel("negative ELBO per image")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return Path(path)


@torch.no_grad()
def mean_loss(model: nn.Module, x: torch.Tensor, batch_size: int = 500, device: torch.device | None = None) -> float:
    """``model.loss`` averaged over the uint8 images ``x`` (weighted by batch size), in eval mode."""
    device = device or next(model.parameters()).device
    model.eval()
    total = sum(model.loss(to_unit(xb.to(device))).item() * len(xb)
                for (xb,) in data.batches(x, batch_size=batch_size, shuffle=False))
    return total / len(x)


def train_run(model: FaceModel, x_train: torch.Tensor, x_test: torch.Tensor, epochs: int,
              folder: str | Path, lr: float = 1e-3, batch_size: int = 128, seed: int = 0,
              n_show: int = 8, n_samples: int = 64, device: torch.device | None = None,
              progress: bool = True) -> list[dict]:
    """Train ``model`` with Adam for ``epochs`` epochs on uint8 images ``(n, 3, 64, 64)``.

    Epochs are counted from 0, as Project 3 does: after epoch ``e`` (0 … epochs − 1) the run's
    ``folder`` gets a row ``e, train_loss, test_loss`` in ``perf_metrics.csv`` (train: mean over
    the epoch's batches; test: ``mean_loss`` on ``x_test`` after the epoch),
    ``reconstruction_<e>.png`` (the first ``n_show`` test images above, their reconstructions
    below), ``sample_<e>.png`` (``model.generate`` of ``n_samples`` fixed codes drawn from
    N(0, I) with ``seed``) and ``loss_curves.png`` (all epochs so far). So a 100-epoch run ends
    with ``sample_99.png``. Runs on ``device`` (default: the GPU if there is one); the model is
    left there, in eval mode. Returns the rows.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    device = device or runtime.device()
    model = model.to(device)
    opt = train.adam(model, lr)
    generator = torch.Generator().manual_seed(seed)
    z_fixed = torch.randn(n_samples, model.latent, generator=torch.Generator().manual_seed(seed)).to(device)
    x_show = to_unit(x_test[:n_show].to(device))
    metrics = folder / "perf_metrics.csv"
    with open(metrics, "w", newline="") as f:
        csv.writer(f).writerow(["epoch", "train_loss", "test_loss"])
    rows: list[dict] = []
    for epoch in range(epochs):
        start, total, seen = time.perf_counter(), 0.0, 0
        model.train()
        bar = tqdm(data.batches(x_train, batch_size=batch_size, generator=generator),
                   total=-(-len(x_train) // batch_size), desc=f"epoch {epoch}", disable=not progress,
                   mininterval=1.0, leave=False)
        for (xb,) in bar:
            loss = model.loss(to_unit(xb.to(device, non_blocking=True)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, seen = total + loss.item() * len(xb), seen + len(xb)
        row = {"epoch": epoch, "train_loss": total / seen, "test_loss": mean_loss(model, x_test, device=device)}
        rows.append(row)
        with open(metrics, "a", newline="") as f:
            csv.writer(f).writerow([epoch, f"{row['train_loss']:.6f}", f"{row['test_loss']:.6f}"])
        with torch.no_grad():
            save_grid(torch.cat([x_show, model.reconstruct(x_show)]), folder / f"reconstruction_{epoch}.png", nrow=n_show)
            save_grid(model.generate(z_fixed), folder / f"sample_{epoch}.png", nrow=8)
        save_loss_curves(rows, folder / "loss_curves.png", title=folder.name)
        if progress:
            print(f"epoch {epoch}: train {row['train_loss']:.1f}, test {row['test_loss']:.1f} "
                  f"({time.perf_counter() - start:.0f} s)")
    model.eval()
    return rows


def read_metrics(folder: str | Path) -> list[dict]:
    """The rows of a run's ``perf_metrics.csv`` (epoch as int, losses as floats)."""
    with open(Path(folder) / "perf_metrics.csv") as f:
        return [{"epoch": int(r["epoch"]), "train_loss": float(r["train_loss"]),
                 "test_loss": float(r["test_loss"])} for r in csv.DictReader(f)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m helpers.celeba", description=(
        f"Check the CelebA folder (${ENV_VAR}, default data/celeba) and count its splits."))
    p.add_argument("folder", nargs="?", type=Path, help=f"the folder to check (default: ${ENV_VAR} or data/celeba)")
    p.add_argument("--write-md5sums", action="store_true",
                   help=f"first write {MANIFEST} for the annotation files there (a subset of your own)")
    args = p.parse_args(argv)
    folder = celeba_folder(args.folder)
    try:
        if args.write_md5sums:
            absent = [name for name in ANNOTATIONS if not (folder / name).is_file()]
            if absent:
                raise CelebAMissing(f"no {', '.join(absent)} in {folder}. " + how_to_get(folder))
            print(f"wrote {write_md5sums(folder)}")
        counts = {split: len(dataset(split, folder=folder)) for split in SPLITS}
    except CelebAMissing as e:
        raise SystemExit(f"error: {e}")
    print(f"CelebA in {folder}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
