"""Notebook 06 (CelebA bonus) and ``helpers.celeba``, on a miniature CelebA built here.

There is no CelebA on this machine and no network, so the module builds one in torchvision's
exact on-disk layout: 60 generated 178 x 218 JPEGs (40 train, 10 valid, 10 test) and the five
annotation files in the official formats, with an ``md5sums.txt`` (torchvision's CelebA refuses
any annotation file whose MD5 differs from the official one; the loader hands it these instead).
The real loading code reads it through ``torchvision.datasets.CelebA``; the notebook runs end to
end on it in grading mode (and without it, training skipped); planted mistakes in the graded
cells lose their points in-process, and one loses exactly its cell through nbgrader.

Every image has its own background colour, a red band along the top and bottom 31 rows (which
the center crop to 148 x 148 removes) and a skin-coloured disc in the middle.
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
import torchvision
from nbclient import NotebookClient
from PIL import Image, ImageDraw

from autograder.course.config import REPO
from autograder.course.solutions import cell_source, load_solution
from planted import assert_graded, edited, grade_in_process, own_solution, params
from test_autoencoder import KL_REFERENCE, KL_TO_PRIOR
from helpers import celeba, runtime
from helpers.train import run_name

AID = "06_celeba_bonus"
UNTIL = "vae_loss"  # the `solution` fixture (conftest): the notebook up to this cell
SPLIT = (40, 10, 10)  # train, valid, test
FACE = (230, 180, 150)
ATTRIBUTES = ("5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
              "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
              "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
              "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
              "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()
LANDMARKS = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"


def background(index: int) -> tuple[int, int, int]:
    """The background colour of image ``index`` (0-based; file ``f"{index + 1:06d}.jpg"``)."""
    return (40 + 3 * index, 200 - 2 * index, 90)


def build_miniature(folder: Path, split: tuple[int, int, int] = SPLIT, md5sums: bool = True) -> Path:
    """A CelebA in torchvision's layout at ``folder`` (its ``celeba/``): images and the five
    annotation files, formatted as the official ones (counts and headers where they have them)."""
    images = folder / celeba.IMAGES
    images.mkdir(parents=True)
    n = sum(split)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for i, name in enumerate(names):
        im = Image.new("RGB", (178, 218), background(i))
        draw = ImageDraw.Draw(im)
        draw.rectangle([0, 0, 177, 30], fill=(255, 0, 0))
        draw.rectangle([0, 187, 177, 217], fill=(255, 0, 0))
        draw.ellipse([49, 69, 129, 149], fill=FACE)
        im.save(images / name, quality=95)
    rng = np.random.default_rng(0)
    parts = [0] * split[0] + [1] * split[1] + [2] * split[2]
    (folder / "list_eval_partition.txt").write_text("".join(f"{f} {p}\n" for f, p in zip(names, parts)))
    (folder / "identity_CelebA.txt").write_text("".join(f"{f} {1 + i // 3}\n" for i, f in enumerate(names)))
    attributes = rng.choice([-1, 1], size=(n, len(ATTRIBUTES)))
    (folder / "list_attr_celeba.txt").write_text(f"{n}\n{' '.join(ATTRIBUTES)} \n" + "".join(
        f"{f} " + " ".join(f"{a:2d}" for a in row) + "\n" for f, row in zip(names, attributes)))
    (folder / "list_bbox_celeba.txt").write_text(f"{n}\nimage_id x_1 y_1 width height\n" + "".join(
        f"{f}    {95 + i % 7:3d} {71:3d} {226:3d} {313:3d}\n" for i, f in enumerate(names)))
    (folder / "list_landmarks_align_celeba.txt").write_text(f"{n}\n{LANDMARKS}\n" + "".join(
        f"{f} " + " ".join(f"{v:4d}" for v in rng.integers(60, 160, 10)) + "\n" for f in names))
    if md5sums:
        celeba.write_md5sums(folder)
    return folder


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    """The miniature's folder (``<root>/celeba``); built once, never modified by tests."""
    return build_miniature(tmp_path_factory.mktemp("celeba-root") / "celeba")


@pytest.fixture
def own_mini(tmp_path) -> Path:
    """A miniature of the test's own, to damage."""
    return build_miniature(tmp_path / "celeba")


# --- the loader --------------------------------------------------------------------------------

def test_the_miniature_is_what_torchvision_reads_and_the_official_checksums_refuse_it(mini):
    expected, source = celeba.expected_checksums(mini)
    assert "md5sums.txt" in source and expected != celeba.official_checksums()
    assert set(celeba.official_checksums()) == set(celeba.ANNOTATIONS)
    with pytest.raises(RuntimeError, match="not found or corrupted"):  # torchvision as shipped
        torchvision.datasets.CelebA(str(mini.parent), split="train", download=False)
    ds = celeba.dataset("all", folder=mini)
    assert isinstance(ds, torchvision.datasets.CelebA)
    assert len(ds) == 60 and ds.attr.shape == (60, 40) and ds.attr_names[0] == "5_o_Clock_Shadow"
    assert set(ds.attr.unique().tolist()) == {0, 1}  # torchvision's {-1, 1} -> {0, 1}
    assert [len(celeba.dataset(s, folder=mini)) for s in celeba.SPLITS] == list(SPLIT)


def test_celeba_subset_reads_through_torchvision_cropped_and_resized(mini, monkeypatch):
    calls = []
    get = torchvision.datasets.CelebA.__getitem__
    monkeypatch.setattr(torchvision.datasets.CelebA, "__getitem__",
                        lambda self, i: calls.append(self.filename[i]) or get(self, i))
    x = celeba.celeba_subset(32, "train", folder=mini, progress=False)
    assert x.shape == (32, 3, 64, 64) and x.dtype == torch.uint8
    assert len(calls) == 32 and calls == sorted(calls) and len(set(calls)) == 32
    train_files = {f"{i + 1:06d}.jpg" for i in range(SPLIT[0])}
    assert set(calls) <= train_files
    for k, name in enumerate(calls):
        want = torch.tensor(background(int(name[:6]) - 1), dtype=torch.int16)
        for corner in (x[k, :, 0, 0], x[k, :, -1, -1], x[k, :, 0, -1]):  # background, not the red band:
            assert (corner.short() - want).abs().max() <= 10, (name, corner)  # cropped before resizing
        assert (x[k, :, 32, 32].short() - torch.tensor(FACE)).abs().max() <= 10
    unit = celeba.to_unit(x[:4])
    assert unit.dtype == torch.float32 and unit.shape == (4, 3, 64, 64) and 0 <= unit.min() and unit.max() <= 1
    assert torch.equal(celeba.celeba_subset(32, "train", folder=mini, progress=False), x)  # seeded
    other = celeba.celeba_subset(8, "test", size=32, crop=100, seed=1, folder=mini, progress=False)
    assert other.shape == (8, 3, 32, 32)


def test_the_folder_comes_from_dgm_celeba_either_level(mini, monkeypatch):
    for value in (mini, mini.parent):  # the folder with the files, or torchvision's root above it
        monkeypatch.setenv(celeba.ENV_VAR, str(value))
        assert celeba.celeba_folder() == mini and celeba.available() is None
        assert celeba.celeba_subset(4, "valid", progress=False).shape == (4, 3, 64, 64)
    monkeypatch.delenv(celeba.ENV_VAR)
    assert celeba.celeba_folder() == REPO / "data" / "celeba"


def test_asking_for_more_images_than_the_split_has_says_so(mini):
    with pytest.raises(ValueError, match="asked for 41 images of CelebA's train split, which has 40"):
        celeba.celeba_subset(41, folder=mini, progress=False)
    with pytest.raises(ValueError, match="split"):
        celeba.dataset("val", folder=mini)


def test_the_cache_is_used_for_the_same_files_and_never_under_grading(mini, tmp_path, monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    x = celeba.celeba_subset(16, folder=mini, cache=tmp_path, progress=False)
    [cached] = tmp_path.iterdir()
    assert cached.name == "celeba-train-n16-64px-crop148-seed0.pt"

    def unreadable(self, i):
        raise AssertionError("read an image despite the cache")
    with monkeypatch.context() as m:
        m.setattr(torchvision.datasets.CelebA, "__getitem__", unreadable)
        assert torch.equal(celeba.celeba_subset(16, folder=mini, cache=tmp_path, progress=False), x)
    torch.save({"files": ["other.jpg"], "images": x}, cached)  # another folder's images: read anew
    assert torch.equal(celeba.celeba_subset(16, folder=mini, cache=tmp_path, progress=False), x)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    celeba.celeba_subset(8, folder=mini, cache=tmp_path / "graded", progress=False)
    assert not (tmp_path / "graded").exists()


# --- clear messages for a missing or damaged folder ----------------------------------------------

def how_to_get_it(message: str) -> None:
    """Every message says where CelebA comes from and where it goes."""
    assert celeba.OFFICIAL_PAGE in message and "download=True" in message
    assert "DGM_CELEBA" in message and "img_align_celeba" in message and "list_eval_partition.txt" in message


def test_a_missing_folder_says_how_to_get_celeba(tmp_path, monkeypatch):
    monkeypatch.setenv(celeba.ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(celeba.CelebAMissing, match="there is no folder") as err:
        celeba.celeba_subset(4, progress=False)
    how_to_get_it(str(err.value))
    assert str(tmp_path / "nowhere") in str(err.value)
    assert celeba.available() == str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(celeba.CelebAMissing, match="incomplete, missing: img_align_celeba/, list_eval_partition.txt"):
        celeba.check(tmp_path / "empty")


@pytest.mark.parametrize("remove", ["list_attr_celeba.txt", "identity_CelebA.txt", "img_align_celeba"])
def test_an_incomplete_folder_names_what_is_missing(own_mini, remove):
    path = own_mini / remove
    shutil.rmtree(path) if path.is_dir() else path.unlink()
    with pytest.raises(celeba.CelebAMissing, match="incomplete, missing: " + remove) as err:
        celeba.dataset(folder=own_mini)
    how_to_get_it(str(err.value))


def test_an_empty_image_folder_is_incomplete(own_mini):
    for p in (own_mini / celeba.IMAGES).iterdir():
        p.unlink()
    with pytest.raises(celeba.CelebAMissing, match=r"img_align_celeba/ \(no .jpg in it\)"):
        celeba.check(own_mini)


def test_a_changed_annotation_file_is_damaged(own_mini):
    path = own_mini / "list_eval_partition.txt"
    path.write_text(path.read_text().replace("000003.jpg 0", "000003.jpg 2"))
    with pytest.raises(celeba.CelebAMissing, match="damaged: list_eval_partition.txt") as err:
        celeba.celeba_subset(4, folder=own_mini, progress=False)
    assert "md5sums.txt" in str(err.value) and "list_attr_celeba.txt (MD5" not in str(err.value)
    how_to_get_it(str(err.value))


def test_without_md5sums_the_official_checksums_apply(own_mini):
    (own_mini / celeba.MANIFEST).unlink()
    with pytest.raises(celeba.CelebAMissing, match="official files") as err:
        celeba.check(own_mini)
    assert all(f"{name} (MD5" in str(err.value) for name in celeba.ANNOTATIONS)


def test_inconsistent_annotation_files_are_reported_as_damaged(own_mini):
    path = own_mini / "list_attr_celeba.txt"
    path.write_text("\n".join(path.read_text().splitlines()[:-5]) + "\n")  # 5 images without attributes
    celeba.write_md5sums(own_mini)  # checksums that match: torchvision itself fails
    with pytest.raises(celeba.CelebAMissing, match="torchvision cannot read its annotation files") as err:
        celeba.dataset(folder=own_mini)
    how_to_get_it(str(err.value))


@pytest.mark.parametrize("damage", ["truncated", "not a jpeg", "deleted"])
def test_a_damaged_image_is_named(own_mini, damage):
    path = own_mini / celeba.IMAGES / "000002.jpg"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "not a jpeg":
        path.write_text("<html>quota exceeded</html>")
    else:
        path.unlink()
    with pytest.raises(celeba.CelebAMissing, match="damaged: img_align_celeba/000002.jpg cannot be read") as err:
        celeba.celeba_subset(40, folder=own_mini, progress=False)
    how_to_get_it(str(err.value))


def test_the_command_line_checks_and_writes_md5sums(own_mini, capsys):
    celeba.main([str(own_mini)])
    assert "train 40, valid 10, test 10" in capsys.readouterr().out
    (own_mini / celeba.MANIFEST).unlink()
    with pytest.raises(SystemExit, match="official files"):
        celeba.main([str(own_mini)])
    celeba.main([str(own_mini.parent), "--write-md5sums"])
    assert f"wrote {own_mini / celeba.MANIFEST}" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="there is no folder"):
        celeba.main([str(own_mini / "nope")])


# --- the training run ----------------------------------------------------------------------------

class TinyVAE(torch.nn.Module):
    """A small stand-in with the interface train_run needs (not the notebook's answer)."""

    latent = 3

    def __init__(self):
        super().__init__()
        self.enc = torch.nn.Linear(3 * 64 * 64, 2 * self.latent)
        self.dec = torch.nn.Linear(self.latent, 3 * 64 * 64)

    def loss(self, x):
        mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (logvar / 2).exp()
        rec = torch.nn.functional.binary_cross_entropy_with_logits(self.dec(z), x.flatten(1), reduction="none").sum(1)
        return (rec + 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)).mean()

    def reconstruct(self, x):
        return self.generate(self.enc(x.flatten(1))[:, :self.latent])

    def generate(self, z):
        return torch.sigmoid(self.dec(z)).reshape(-1, 3, 64, 64)


def test_train_run_counts_epochs_from_0_and_writes_the_run_folder(mini, tmp_path):
    x_train = celeba.celeba_subset(32, folder=mini, progress=False)
    x_test = celeba.celeba_subset(8, "test", folder=mini, progress=False)
    runtime.seed(0)
    rows = celeba.train_run(TinyVAE(), x_train, x_test, 3, tmp_path / "run", batch_size=16,
                            device=torch.device("cpu"), progress=False, n_samples=16)
    assert [r["epoch"] for r in rows] == [0, 1, 2] == [r["epoch"] for r in celeba.read_metrics(tmp_path / "run")]
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == sorted(["perf_metrics.csv", "loss_curves.png"] + [f"{kind}_{e}.png" for kind in ("reconstruction", "sample")
                                                                        for e in range(3)])
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert Image.open(tmp_path / "run" / "sample_2.png").size == (2 + 8 * 66, 2 + 2 * 66)  # 16 RGB faces, 8 a row
    assert Image.open(tmp_path / "run" / "sample_2.png").mode == "RGB"
    assert Image.open(tmp_path / "run" / "reconstruction_2.png").size == (2 + 8 * 66, 2 + 2 * 66)


# --- the notebook --------------------------------------------------------------------------------

def test_the_documented_run_folder_is_the_notebooks():
    intro = nbformat.read(REPO / "notebooks" / AID / f"{AID}.ipynb", as_version=4).cells[0].source
    assert f"results/{run_name('CelebA', 'convvae(z=128)', 1e-3, 100)}/" in intro and "sample_99.png" in intro


def test_the_notebook_runs_end_to_end_in_grading_mode_on_the_miniature(mini, tmp_path, monkeypatch):
    """Every cell of the source notebook (hidden tests included) in a real kernel, as nbgrader runs it."""
    nb = nbformat.read(REPO / "notebooks" / AID / f"{AID}.ipynb", as_version=4)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setenv(celeba.ENV_VAR, str(mini.parent))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, as in JupyterLab
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = {c.metadata.nbgrader["grade_id"]: "".join(o.get("text", "") for o in c.outputs)
            for c in nb.cells if c.cell_type == "code"}
    assert "grading mode" in text["setup"] and f"CelebA: {mini}" in text["setup"]
    assert "train (32, 3, 64, 64) test (8, 3, 64, 64) torch.uint8" in text["train"]
    assert "epoch 0:" in text["train"] and "epoch 1:" in text["train"]
    assert any(o.output_type == "display_data" for c in nb.cells if c.metadata.nbgrader["grade_id"] == "show" for o in c.outputs)
    run = tmp_path / "results" / "CelebA-arch=convvae(z=128)-lr=0.001-ep=2"
    assert sorted(p.name for p in run.iterdir()) == ["loss_curves.png", "perf_metrics.csv", "reconstruction_0.png",
                                                     "reconstruction_1.png", "sample_0.png", "sample_1.png"]
    with open(run / "perf_metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["0", "1"] and all(float(r["test_loss"]) > 0 for r in rows)
    assert (tmp_path / "results" / f"{run.name}.pt").is_file()
    assert not (tmp_path / "results" / "cache").exists()  # never cached under grading


def test_without_celeba_the_graded_parts_still_run_and_earn_full_marks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(celeba.ENV_VAR, str(tmp_path / "no-celeba"))
    ns = load_solution(AID)
    assert ns["vae"] is None and "there is no folder" in ns["MISSING"] and celeba.OFFICIAL_PAGE in ns["MISSING"]
    assert not (tmp_path / "results").exists()
    earned = grade_in_process(AID, ns)
    assert earned == {"test_encoder": 3.0, "test_decoder": 3.0, "test_vae_loss": 3.0, "test_conv_vae": 2.0}


# --- planted answers --------------------------------------------------------------------------------
# PLANTED: per test cell, held-back answers to its solution cell (the reference, correct ones written
# another way, realistic mistakes), each named for what it does; the test cell, hidden tests
# included, keeps a correct answer's points and takes a mistake's.

ENCODER = cell_source(AID, "conv_encoder")
ENCODER_EXPLICIT = """
class ConvEncoder(nn.Module):
    def __init__(self, latent: int = 128):
        super().__init__()
        self.latent = latent
        self.c1, self.c2 = nn.Conv2d(3, 32, 4, 2, 1), nn.Conv2d(32, 64, 4, 2, 1)
        self.c3, self.c4 = nn.Conv2d(64, 128, 4, 2, 1), nn.Conv2d(128, 256, 4, 2, 1)
        self.mu, self.lv = nn.Linear(4096, latent), nn.Linear(4096, latent)

    def forward(self, x):
        for conv in (self.c1, self.c2, self.c3, self.c4):
            x = F.relu(conv(x))
        x = x.view(x.size(0), -1)
        return self.mu(x), self.lv(x)
"""
HEADS = "return self.mean_head(h), self.logvar_head(h)"
LAST_CONV = "nn.Conv2d(128, 256, 4, stride=2, padding=1), nn.ReLU(),"
ENCODERS = {
    "the notebook's solution": (True, ENCODER),
    "one linear layer, split in two": (True, edited(
        ENCODER, ("self.mean_head = nn.Linear(256 * 4 * 4, latent)\n        self.logvar_head = nn.Linear(256 * 4 * 4, latent)",
                  "self.heads = nn.Linear(256 * 4 * 4, 2 * latent)"), (HEADS, "return self.heads(h).chunk(2, dim=1)"))),
    "explicit layers, functional ReLU": (True, ENCODER_EXPLICIT),
    "in-place ReLUs": (True, edited(ENCODER, ("nn.ReLU()", "nn.ReLU(inplace=True)"))),
    "no ReLU after the last convolution": (False, edited(ENCODER, (LAST_CONV, "nn.Conv2d(128, 256, 4, stride=2, padding=1),"))),
    "no ReLU at all": (False, edited(ENCODER, (", nn.ReLU(),", ","))),
    "LeakyReLU": (False, edited(ENCODER, ("nn.ReLU()", "nn.LeakyReLU(0.2)"))),
    "ReLU on the log-variance": (False, edited(ENCODER, ("self.logvar_head(h)", "F.relu(self.logvar_head(h))"))),
    "returns the variance, exp(log-variance)": (False, edited(ENCODER, ("self.logvar_head(h)", "self.logvar_head(h).exp()"))),
    "the mean head used twice": (False, edited(ENCODER, (HEADS, "return self.mean_head(h), self.mean_head(h)"))),
    "3 x 3 kernels": (False, edited(ENCODER, ("4, stride=2", "3, stride=2"))),
    "no padding": (False, edited(ENCODER, ("padding=1", "padding=0"))),
    "batch norm after each convolution": (False, edited(ENCODER, *[(f"nn.Conv2d({a}, {b}, 4, stride=2, padding=1),", f"nn.Conv2d({a}, {b}, 4, stride=2, padding=1), nn.BatchNorm2d({b}),")
                                                                    for a, b in [(3, 32), (32, 64), (64, 128), (128, 256)]])),
    "latent size hard-coded": (False, edited(ENCODER, ("256 * 4 * 4, latent)", "256 * 4 * 4, 128)"))),
    "flatten that mixes the batch": (False, edited(ENCODER, ("nn.Flatten(),\n", ""), ("h = self.features(x)", "h = self.features(x).reshape(256 * 4 * 4, -1).T"))),
    "the mean detached": (False, edited(ENCODER, (HEADS, "return self.mean_head(h).detach(), self.logvar_head(h)"))),
    "features under torch.no_grad()": (False, edited(ENCODER, ("h = self.features(x)", "with torch.no_grad():\n            h = self.features(x)"))),
}

DECODER = cell_source(AID, "conv_decoder")
DECODER_EXPLICIT = """
class ConvDecoder(nn.Module):
    def __init__(self, latent: int = 128):
        super().__init__()
        self.latent = latent
        self.fc = nn.Linear(latent, 4096)
        self.ups = nn.ModuleList([nn.ConvTranspose2d(a, b, 4, 2, 1) for a, b in [(256, 128), (128, 64), (64, 32), (32, 3)]])

    def forward(self, z):
        h = F.relu(self.fc(z)).view(-1, 256, 4, 4)
        for i, up in enumerate(self.ups):
            h = up(h) if i == len(self.ups) - 1 else F.relu(up(h))
        return h
"""
LAST_UP = "nn.ConvTranspose2d(32, 3, 4, stride=2, padding=1),"
RESHAPE = ".reshape(len(z), 256, 4, 4))"
DECODERS = {
    "the notebook's solution": (True, DECODER),
    "explicit layers, functional ReLU": (True, DECODER_EXPLICIT),
    "channels last, then permuted": (True, edited(DECODER, (RESHAPE, ".reshape(len(z), 4, 4, 256).permute(0, 3, 1, 2))"))),
    "nn.Unflatten, in-place ReLUs": (True, edited(
        DECODER, ("nn.Sequential(nn.Linear(latent, 256 * 4 * 4), nn.ReLU())", "nn.Sequential(nn.Linear(latent, 256 * 4 * 4), nn.ReLU(inplace=True), nn.Unflatten(1, (256, 4, 4)))"),
        (RESHAPE, ")"))),
    "sigmoid at the end": (False, edited(DECODER, (LAST_UP, LAST_UP + " nn.Sigmoid(),"))),
    "tanh at the end": (False, edited(DECODER, (LAST_UP, LAST_UP + " nn.Tanh(),"))),
    "ReLU on the logits": (False, edited(DECODER, (LAST_UP, LAST_UP + " nn.ReLU(),"))),
    "logits clamped to +-10": (False, edited(DECODER, ("return self.upsample(", "return torch.clamp(self.upsample("), (RESHAPE, RESHAPE + ", -10, 10)"))),
    "no ReLU after the linear layer": (False, edited(DECODER, ("nn.Linear(latent, 256 * 4 * 4), nn.ReLU())", "nn.Linear(latent, 256 * 4 * 4))"))),
    "no ReLU between the transposed convolutions": (False, edited(DECODER, ("padding=1), nn.ReLU(),", "padding=1),"))),
    "reshape that mixes the batch": (False, edited(DECODER, (RESHAPE, ".reshape(256, len(z), 4, 4).transpose(0, 1))"))),
    "one output channel": (False, edited(DECODER, ("nn.ConvTranspose2d(32, 3,", "nn.ConvTranspose2d(32, 1,"))),
    "latent size hard-coded": (False, edited(DECODER, ("nn.Linear(latent,", "nn.Linear(128,"))),
    "upsampling and convolutions instead of transposed convolutions": (False, edited(DECODER, *[
        (f"nn.ConvTranspose2d({a}, {b}, 4, stride=2, padding=1)", f"nn.Upsample(scale_factor=2), nn.Conv2d({a}, {b}, 3, padding=1)")
        for a, b in [(256, 128), (128, 64), (64, 32), (32, 3)]])),
}

LOSS = cell_source(AID, "vae_loss")
REC = 'rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)'
KL = f"kl = {KL_REFERENCE}.sum(1)"
RETURN = "return (rec + kl).mean()"
LOSSES = {
    "the notebook's solution": (True, LOSS),
    **{name: (right, edited(LOSS, (KL, f"kl = {expr}"))) for name, (right, expr) in KL_TO_PRIOR.items()},
    "softplus form": (True, edited(LOSS, (REC, "rec = (F.softplus(logits) - x * logits).sum((1, 2, 3))"))),
    "through torch.distributions": (True, edited(
        LOSS, (REC, "rec = -torch.distributions.Bernoulli(logits=logits, validate_args=False).log_prob(x).flatten(1).sum(1)"),
        (KL, "kl = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (logvar / 2).exp()), "
             "torch.distributions.Normal(0.0, 1.0)).sum(1)"))),
    "logsigmoid form": (True, edited(LOSS, (REC, "rec = -(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum((1, 2, 3))"))),
    "sums over everything, divided by the batch size": (True, edited(
        LOSS, (REC, 'rec = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")'),
        (KL, "kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum()"), (RETURN, "return (rec + kl) / len(x)"))),
    "sigmoid, then binary_cross_entropy (unstable)": (False, edited(
        LOSS, (REC, 'rec = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").flatten(1).sum(1)'))),
    "sigmoid with an epsilon in the logs (inexact)": (False, edited(
        LOSS, (REC, "p = torch.sigmoid(logits)\n    rec = -(x * (p + 1e-7).log() + (1 - x) * (1 - p + 1e-7).log()).sum((1, 2, 3))"))),
    "sigmoid applied twice": (False, edited(LOSS, (REC, 'rec = F.binary_cross_entropy_with_logits(torch.sigmoid(logits), x, reduction="none").flatten(1).sum(1)'))),
    "logits and images swapped": (False, edited(LOSS, (REC, 'rec = F.binary_cross_entropy_with_logits(x, torch.sigmoid(logits), reduction="none").flatten(1).sum(1)'))),
    "mean over the pixels": (False, edited(LOSS, (".flatten(1).sum(1)", ".flatten(1).mean(1)"))),
    "MSE instead of BCE": (False, edited(LOSS, (REC, 'rec = F.mse_loss(torch.sigmoid(logits), x, reduction="none").flatten(1).sum(1)'))),
    "no KL": (False, edited(LOSS, (RETURN, "return rec.mean()"))),
    "summed over the batch": (False, edited(LOSS, (RETURN, "return (rec + kl).sum()"))),
    "KL summed over the batch, reconstruction averaged": (False, edited(LOSS, (RETURN, "return rec.mean() + kl.sum()"))),
    "per-image losses (not averaged)": (False, edited(LOSS, (RETURN, "return rec + kl"))),
    "in float64": (False, edited(LOSS, (RETURN, "return (rec.double() + kl.double()).mean()"))),
    "detached": (False, edited(LOSS, (RETURN, "return (rec + kl).mean().detach()"))),
    "exponentiates logvar in place": (False, edited(LOSS, (KL, "kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp_()).sum(1)"))),
}

CONV_VAE = cell_source(AID, "conv_vae")
LOSS_BODY = """        mu, logvar = self.encoder(x)
        eps = torch.randn_like(mu)
        return vae_loss(x, self.decoder(mu + eps * (0.5 * logvar).exp()), mu, logvar)"""
SAMPLE = "self.decoder(mu + eps * (0.5 * logvar).exp())"
RECONSTRUCT = "return self.decoder(mu).sigmoid()"
GENERATE = "        return self.decoder(z).sigmoid()"
CONV_VAES = {
    **own_solution(AID, "conv_vae"),
    "Normal.rsample": (True, edited(CONV_VAE, (LOSS_BODY, """        mu, logvar = self.encoder(x)
        z = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).rsample()
        return vae_loss(x, self.decoder(z), mu, logvar)"""))),
    "standard deviation as sqrt(exp(logvar))": (True, edited(CONV_VAE, (SAMPLE, "self.decoder(mu + eps * logvar.exp().sqrt())"))),
    "torch.sigmoid": (True, edited(CONV_VAE, (RECONSTRUCT, "return torch.sigmoid(self.decoder(mu))"))),
    "the loss decodes the mean (no sample)": (False, edited(CONV_VAE, (SAMPLE, "self.decoder(mu)"))),
    "logvar taken for the standard deviation": (False, edited(CONV_VAE, (SAMPLE, "self.decoder(mu + eps * logvar)"))),
    "logvar taken for the variance": (False, edited(CONV_VAE, (SAMPLE, "self.decoder(mu + eps * logvar.abs().sqrt())"))),
    "exp(logvar) as the standard deviation": (False, edited(CONV_VAE, (SAMPLE, "self.decoder(mu + eps * logvar.exp())"))),
    "uniform noise": (False, edited(CONV_VAE, ("eps = torch.randn_like(mu)", "eps = torch.rand_like(mu)"))),
    "the same noise every call": (False, edited(CONV_VAE, ("eps = torch.randn_like(mu)",
                                                            "eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(0))"))),
    "the sample detached": (False, edited(CONV_VAE, (SAMPLE, "self.decoder((mu + eps * (0.5 * logvar).exp()).detach())"))),
    "reconstruct decodes a sample": (False, edited(CONV_VAE, ("        mu, _ = self.encoder(x)\n        " + RECONSTRUCT,
                                                              "        mu, logvar = self.encoder(x)\n"
                                                              "        return self.decoder(mu + torch.randn_like(mu) * (0.5 * logvar).exp()).sigmoid()"))),
    "reconstruct returns logits": (False, edited(CONV_VAE, (RECONSTRUCT, "return self.decoder(mu)"))),
    "generate draws its own codes": (False, edited(CONV_VAE, (GENERATE, "        return self.decoder(torch.randn_like(z)).sigmoid()"))),
    "generate returns logits": (False, edited(CONV_VAE, (GENERATE, "        return self.decoder(z)"))),
}

PLANTED = {"test_encoder": ENCODERS, "test_decoder": DECODERS, "test_vae_loss": LOSSES, "test_conv_vae": CONV_VAES}


@pytest.mark.parametrize("test, right, answer", params(PLANTED))
def test_planted(solution, test, right, answer):
    assert_graded(AID, solution, test, answer, right)


def test_sigmoid_decoder_loses_the_decoder_cell_only(grade_planted):
    """Through nbgrader (released notebook, grading kernel, no CelebA): one cell lost, the others
    kept, the written answer left to the TA."""
    score, cells = grade_planted(AID, "sigmoid_decoder", {"conv_decoder": DECODERS["sigmoid at the end"][1]})
    assert cells["test_decoder"] == 0
    assert cells["test_encoder"] == 3 and cells["test_vae_loss"] == 3 and cells["test_conv_vae"] == 2
    assert cells["answer_samples"] is None and score.needs_manual_grade
    assert score.auto == 8 and score.auto_max == 11
