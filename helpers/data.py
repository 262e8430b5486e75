"""MNIST and Fashion-MNIST as in-memory tensors, read from a verified data folder.

The folder is ``$DGM_DATA`` if set, else ``data/`` at the repository root, in
torchvision's layout (``<root>/MNIST/raw/*-ubyte``). Every idx file is checked
against a SHA-256 of its uncompressed bytes before it is used. Missing files are
taken from ``<root>/<name>/raw/*.gz`` if present, else from a mirror folder given
with ``source=`` (``python -m helpers.data --from DIR``), else downloaded by
torchvision. Whole splits are returned as tensors; no per-item transforms.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import torch

ENV_VAR = "DGM_DATA"
REPO = Path(__file__).resolve().parents[1]

# SHA-256 of the uncompressed idx files (the original distribution's content).
CHECKSUMS: dict[str, dict[str, str]] = {
    "MNIST": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
NAMES = {"mnist": "MNIST", "fashion": "FashionMNIST"}
SIZES = {"train": 60_000, "test": 10_000}

Split = tuple[torch.Tensor, torch.Tensor]


class DataError(RuntimeError):
    """A data file is missing or corrupt; the message says how to fix it."""


def data_root() -> Path:
    """The data folder: ``$DGM_DATA`` or ``<repo>/data``."""
    return Path(os.environ.get(ENV_VAR) or REPO / "data")


def _folder(name: str) -> str:
    if name not in NAMES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(NAMES)}")
    return NAMES[name]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _fix_hint(root: Path) -> str:
    return (f"Run `make data` (or `python -m helpers.data`) to fetch it, or point ${ENV_VAR} "
            f"at a folder holding MNIST/raw and FashionMNIST/raw (now: {root}).")


def _extract(gz: Path, out: Path) -> bool:
    """Decompress ``gz`` to ``out``; False if the archive is unreadable."""
    tmp = out.with_suffix(".part")
    try:
        with gzip.open(gz, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
    except (OSError, EOFError):
        tmp.unlink(missing_ok=True)
        return False
    tmp.replace(out)
    return True


def prepare(name: str = "mnist", root: Path | None = None, source: Path | None = None,
            download: bool = True) -> Path:
    """Make sure the four idx files of ``name`` are in ``root`` and verified.

    Order of sources for a missing or corrupt file: the ``.gz`` next to it, the
    ``.gz`` in ``source/<Name>/raw/`` (copied, never written to), torchvision's
    download (if ``download``). Returns the raw folder. Raises ``DataError``.
    """
    folder = _folder(name)
    root = Path(root) if root else data_root()
    raw = root / folder / "raw"
    bad = [f for f, digest in CHECKSUMS[folder].items()
           if not (raw / f).is_file() or _sha256(raw / f) != digest]
    for f in bad:
        raw.mkdir(parents=True, exist_ok=True)
        mirror = Path(source) / folder / "raw" / f"{f}.gz" if source else None
        if not (raw / f"{f}.gz").is_file() and mirror and mirror.is_file():
            shutil.copyfile(mirror, raw / f"{f}.gz")
        if (raw / f"{f}.gz").is_file():
            _extract(raw / f"{f}.gz", raw / f)
    bad = [f for f in bad if not (raw / f).is_file() or _sha256(raw / f) != CHECKSUMS[folder][f]]
    if bad and download:
        import torchvision

        for f in bad:  # a broken file would stop torchvision from fetching a good one
            (raw / f).unlink(missing_ok=True)
            (raw / f"{f}.gz").unlink(missing_ok=True)
        try:
            getattr(torchvision.datasets, folder)(str(root), download=True)
        except Exception as e:  # network errors come in many types
            raise DataError(f"{folder}: could not download {bad} into {raw} ({e}). "
                            + _fix_hint(root)) from None
        bad = [f for f in bad if not (raw / f).is_file() or _sha256(raw / f) != CHECKSUMS[folder][f]]
    if bad:
        state = ["corrupt" if (raw / f).is_file() else "missing" for f in bad]
        listing = ", ".join(f"{f} ({s})" for f, s in zip(bad, state))
        raise DataError(f"{folder} data in {raw}: {listing}. Delete the broken files. "
                        + _fix_hint(root))
    return raw


@lru_cache(maxsize=8)
def _read(name: str, split: str, root: str) -> Split:
    import torchvision

    prepare(name, Path(root))
    ds = getattr(torchvision.datasets, NAMES[name])(root, train=split == "train", download=False)
    x, y = ds.data, ds.targets
    if x.shape != (SIZES[split], 28, 28) or y.shape != (SIZES[split],) or int(y.max()) != 9:
        raise DataError(f"{name} {split}: read {tuple(x.shape)} images and {tuple(y.shape)} labels, "
                        f"expected ({SIZES[split]}, 28, 28). " + _fix_hint(Path(root)))
    return x, y


def load(name: str = "mnist", split: str = "train", root: Path | None = None) -> Split:
    """One split as tensors: images ``(N, 784)`` float32 in [0, 1], labels ``(N,)`` int64.

    ``split`` is ``"train"`` (60 000) or ``"test"`` (10 000).
    """
    if split not in SIZES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    _folder(name)
    x, y = _read(name, split, str(Path(root) if root else data_root()))
    return x.reshape(len(x), -1).float().div_(255), y.clone()


def split_5_1_1(name: str = "mnist", seed: int = 0, root: Path | None = None) -> dict[str, Split]:
    """All 70 000 images shuffled with ``seed`` and cut 5:1:1 into train/val/test (50k/10k/10k)."""
    xs, ys = zip(*(load(name, s, root) for s in ("train", "test")))
    x, y = torch.cat(xs), torch.cat(ys)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n = len(x) // 7
    cuts = {"train": order[: 5 * n], "val": order[5 * n: 6 * n], "test": order[6 * n:]}
    return {k: (x[i], y[i]) for k, i in cuts.items()}


def pick_per_class(x: torch.Tensor, y: torch.Tensor, per_class: int, seed: int | None = None,
                   classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """``per_class`` items of each label ``0 .. classes - 1``, ordered by label: the first ones,
    or with ``seed`` a random choice (one generator, one ``randperm`` per label in turn), each
    label's items kept in their original order.

    ``x`` ``(n, ...)`` and labels ``y`` ``(n,)``; returns ``x[idx]`` ``(classes * per_class, ...)``
    and ``y[idx]`` ``(classes * per_class,)``.
    """
    g = None if seed is None else torch.Generator().manual_seed(seed)
    idx = []
    for k in range(classes):
        members = torch.nonzero(y == k).flatten()
        if g is not None:
            members = members[torch.randperm(len(members), generator=g)[:per_class]].sort().values
        idx.append(members[:per_class])
    idx = torch.cat(idx)
    return x[idx], y[idx]


def fixed_test_subset(name: str = "mnist", per_class: int = 10, root: Path | None = None) -> Split:
    """The fixed evaluation subset: the first ``per_class`` test images of each label,
    ordered by label, as ``(10 * per_class, 784)`` and ``(10 * per_class,)``."""
    return pick_per_class(*load(name, "test", root), per_class)


def binarize(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Fixed binarization: 1.0 where ``x > threshold``, else 0.0 (same shape)."""
    return (x > threshold).to(x.dtype)


def sample_binary(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarization: each pixel ~ Bernoulli(x), drawn anew on every call (same shape).

    Drawn as ``uniform < x``: the same distribution as ``torch.bernoulli``, about 3x faster
    on the CPU, which matters once per training step.
    """
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return (u < x).to(x.dtype)


def binarized(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Binarization by sampling, fixed by ``seed``: each pixel ~ Bernoulli(x), drawn by
    ``sample_binary`` with a CPU generator seeded with ``seed``, so the same ``x`` and ``seed``
    give the same images on every call and every device (same shape and device as ``x``).

    The one binarization of an evaluation set: the bound a notebook reports
    (``helpers.train.evaluate_lower_bound``) and the one the course grades are computed on
    the same images.
    """
    return sample_binary(x.cpu(), torch.Generator().manual_seed(seed)).to(x.device)


def batches(*tensors: torch.Tensor, batch_size: int = 100, shuffle: bool = True,
            generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, ...]]:
    """Mini-batches over the first dimension of equally long tensors (one epoch).

    The last batch may be shorter. Indexing an in-memory tensor, no DataLoader.
    """
    n = len(tensors[0])
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for i in range(0, n, batch_size):
        idx = order[i: i + batch_size]
        yield tuple(t[idx] for t in tensors)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m helpers.data", description=(
        f"Fetch and verify MNIST and Fashion-MNIST in ${ENV_VAR} (default data/)."))
    p.add_argument("--from", dest="source", type=Path,
                   help="a folder in torchvision's layout to copy the .gz files from")
    p.add_argument("--no-download", action="store_true", help="never use the network")
    args = p.parse_args(argv)
    for name in NAMES:
        try:
            raw = prepare(name, source=args.source, download=not args.no_download)
        except DataError as e:
            raise SystemExit(f"error: {e}")
        print(f"{name}: verified {raw}")


if __name__ == "__main__":
    main()
