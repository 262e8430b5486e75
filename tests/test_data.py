"""helpers.data: verified loading, clear errors for missing/corrupt files, the course's splits."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

from helpers import data

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def copy_raw(dst, name="MNIST", gz=False):
    """Copy the verified raw files of one data set into ``dst/<name>/raw`` (idx, or only .gz)."""
    src = data.data_root() / name / "raw"
    out = dst / name / "raw"
    out.mkdir(parents=True)
    for f in data.CHECKSUMS[name]:
        shutil.copyfile(src / (f + ".gz" if gz else f), out / (f + ".gz" if gz else f))
    return out


@pytest.mark.parametrize("name", ["mnist", "fashion"])
@pytest.mark.parametrize("split,n", [("train", 60_000), ("test", 10_000)])
def test_load_gives_whole_split_as_tensors(name, split, n):
    x, y = data.load(name, split)
    assert x.shape == (n, 784) and x.dtype == torch.float32
    assert y.shape == (n,) and y.dtype == torch.int64
    assert x.min() == 0 and x.max() == 1
    assert torch.bincount(y).tolist() == ((TRAIN_COUNTS if split == "train" else TEST_COUNTS)
                                          if name == "mnist" else [n // 10] * 10)


def test_load_returns_copies_callers_cannot_corrupt_the_cache():
    x, _ = data.load("mnist", "test")
    x.zero_()
    assert data.load("mnist", "test")[0].max() == 1


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown dataset"):
        data.load("cifar")
    with pytest.raises(ValueError, match="split"):
        data.load("mnist", "val")


def test_corrupt_file_is_reported_with_the_fix(tmp_path):
    raw = copy_raw(tmp_path)
    with open(raw / "t10k-labels-idx1-ubyte", "r+b") as f:
        f.seek(100)
        f.write(b"\x07")
    with pytest.raises(data.DataError) as err:
        data.prepare("mnist", tmp_path, download=False)
    msg = str(err.value)
    assert "t10k-labels-idx1-ubyte (corrupt)" in msg and "make data" in msg and "DGM_DATA" in msg


def test_missing_files_are_reported_with_the_fix(tmp_path):
    with pytest.raises(data.DataError) as err:
        data.prepare("fashion", tmp_path, download=False)
    assert "train-images-idx3-ubyte (missing)" in str(err.value) and "make data" in str(err.value)


def test_corrupt_idx_is_extracted_again_from_its_archive(tmp_path):
    raw = copy_raw(tmp_path, gz=True)
    (raw / "train-labels-idx1-ubyte").write_bytes(b"truncated")
    data.prepare("mnist", tmp_path, download=False)
    assert data._sha256(raw / "train-labels-idx1-ubyte") == data.CHECKSUMS["MNIST"]["train-labels-idx1-ubyte"]


def test_mirror_is_copied_not_written_to(tmp_path):
    mirror = tmp_path / "mirror"
    copy_raw(mirror, gz=True)
    before = sorted(p.name for p in (mirror / "MNIST" / "raw").iterdir())
    raw = data.prepare("mnist", tmp_path / "root", source=mirror, download=False)
    assert sorted(p.name for p in (mirror / "MNIST" / "raw").iterdir()) == before
    assert all((raw / f).is_file() for f in data.CHECKSUMS["MNIST"])


def test_environment_variable_chooses_the_folder(tmp_path, monkeypatch):
    copy_raw(tmp_path)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path))
    assert data.data_root() == tmp_path
    (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"")
    with pytest.raises(data.DataError, match=str(tmp_path)):
        data.prepare("mnist", download=False)


def test_command_line_fails_with_a_message_not_a_traceback(tmp_path):
    env = dict(os.environ, **{data.ENV_VAR: str(tmp_path)})
    run = subprocess.run([sys.executable, "-m", "helpers.data", "--no-download"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "error:" in run.stderr and "make data" in run.stderr and "Traceback" not in run.stderr


def test_split_5_1_1_is_a_deterministic_partition_of_all_70000_images():
    parts = data.split_5_1_1("mnist", seed=0)
    assert {k: len(v[0]) for k, v in parts.items()} == {"train": 50_000, "val": 10_000, "test": 10_000}
    probe = torch.randn(784, dtype=torch.float64)
    fingerprint = lambda x: torch.sort(x.double() @ probe).values  # noqa: E731
    everything = torch.cat([data.load("mnist", s)[0] for s in ("train", "test")])
    assert torch.equal(fingerprint(torch.cat([v[0] for v in parts.values()])), fingerprint(everything))
    again = data.split_5_1_1("mnist", seed=0)
    assert torch.equal(again["val"][0], parts["val"][0]) and torch.equal(again["val"][1], parts["val"][1])
    assert not torch.equal(data.split_5_1_1("mnist", seed=1)["val"][0], parts["val"][0])


def test_fixed_test_subset_has_the_first_ten_test_images_of_each_digit():
    x, y = data.fixed_test_subset("mnist")
    assert x.shape == (100, 784) and y.tolist() == [k for k in range(10) for _ in range(10)]
    xt, yt = data.load("mnist", "test")
    first_sevens = torch.nonzero(yt == 7).flatten()[:10]
    assert torch.equal(x[70:80], xt[first_sevens])


def test_binarization_fixed_and_dynamic():
    x, _ = data.fixed_test_subset()
    b = data.binarize(x)
    assert set(b.unique().tolist()) <= {0.0, 1.0} and torch.equal(b, (x > 0.5).float())
    s1, s2 = data.sample_binary(x), data.sample_binary(x)
    assert set(s1.unique().tolist()) <= {0.0, 1.0} and not torch.equal(s1, s2)
    assert abs(s1.mean() - x.mean()) < 0.01
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(data.sample_binary(x, g()), data.sample_binary(x, g()))
    assert torch.equal(data.sample_binary(torch.zeros(5)), torch.zeros(5))
    assert torch.equal(data.sample_binary(torch.ones(5)), torch.ones(5))
    p = torch.tensor([0.1, 0.5, 0.9]).expand(20_000, 3)
    assert torch.allclose(data.sample_binary(p, g()).mean(0), p[0], atol=0.015)  # sd 0.0035


def test_batches_cover_each_item_once():
    x, y = torch.arange(25).float(), torch.arange(25)
    got = list(data.batches(x, y, batch_size=10, generator=torch.Generator().manual_seed(0)))
    assert [len(b[0]) for b in got] == [10, 10, 5]
    assert sorted(torch.cat([b[1] for b in got]).tolist()) == list(range(25))
    assert all(torch.equal(bx.long(), by) for bx, by in got)
    assert torch.equal(next(data.batches(x, batch_size=4, shuffle=False))[0], x[:4])


def test_pick_per_class_first_or_seeded_and_ordered_by_label():
    y = torch.tensor([3, 0, 1, 0, 1, 3, 0, 1, 3, 0])
    x = torch.arange(10.0).unsqueeze(1)  # (n, 1): each row says where it came from
    xs, ys = data.pick_per_class(x, y, 2, classes=4)  # label 2 has none: it gives none
    assert ys.tolist() == [0, 0, 1, 1, 3, 3] and xs.flatten().tolist() == [1, 3, 2, 4, 0, 5]
    picks = [data.pick_per_class(x, y, 2, seed=s, classes=4) for s in (7, 7, 8, 9, 10)]
    assert torch.equal(picks[0][0], picks[1][0])  # the same seed, the same choice
    assert any(not torch.equal(picks[0][0], p[0]) for p in picks[2:])  # other seeds choose otherwise
    for xs, ys in picks:
        assert ys.tolist() == [0, 0, 1, 1, 3, 3]
        assert torch.equal(y[xs.flatten().long()], ys)  # each item keeps its own label
        for k in (0, 1, 3):
            rows = xs[ys == k].flatten()
            assert rows.tolist() == sorted(rows.tolist())  # in their original order
