"""Notebook 01 (autoencoder): its tests tell right from wrong.

In-process: a test cell of the source notebook (hidden tests included) runs against the
reference namespace with one solution cell replaced by a planted mistake (must raise) or a
different correct implementation (must pass). Through nbgrader: one submission whose VAE loss
has the KL's sign flipped loses the VAE cells and keeps the autoencoder's.
"""
from __future__ import annotations

from functools import partial

import pytest
import torch

from autograder.solutions import cell_source, load_solution
from planted import assert_graded

AID = "01_autoencoder"


def cell(gid: str) -> str:
    return cell_source(AID, gid)


check = partial(assert_graded, AID)  # check(ns, gid, answer, right)


@pytest.fixture(scope="module")
def ns():
    torch.manual_seed(0)
    return load_solution(AID, until="autoencoder")


AE_SOURCE = cell("autoencoder")
AE_PLANTED = {
    "reference": (True, None),
    "ReLU written as a module list": (True, (
        "self.encoder = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, latent))",
        "self.encoder = nn.Sequential(*[nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, latent)])")),
    "no ReLU in the encoder": (False, (
        "nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, latent)", "nn.Linear(784, hidden), nn.Linear(hidden, latent)")),
    "ReLU on the code": (False, (
        "nn.Linear(hidden, latent))", "nn.Linear(hidden, latent), nn.ReLU())")),
    "no sigmoid on the output": (False, ("nn.Linear(hidden, 784), nn.Sigmoid())", "nn.Linear(hidden, 784))")),
    "hidden size fixed at 256": (False, ("nn.Linear(784, hidden)", "nn.Linear(784, 256)")),
    "sizes hard-coded": (False, ("nn.Linear(hidden, latent))", "nn.Linear(512, 2))")),
}


@pytest.mark.parametrize("name", AE_PLANTED)
def test_autoencoder_cell(ns, name):
    right, swap = AE_PLANTED[name]
    src = AE_SOURCE if swap is None else AE_SOURCE.replace(*swap)
    assert swap is None or src != AE_SOURCE, "the planted edit must change the source"
    if name == "hidden size fixed at 256":  # also the decoder, so the model still runs
        src = src.replace("nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, 784)",
                          "nn.Linear(latent, 256), nn.ReLU(), nn.Linear(256, 784)")
    check(ns, "test_autoencoder", src, right)


VAE_SOURCE = cell("vae")
VAE_PLANTED = {
    "reference": (True, None),
    "KL through torch.distributions": (True, (
        "return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)",
        "return torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * logvar).exp()), "
        "torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)")),
    "logvar used as a standard deviation": (False, ("z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)",
                                                    "z = mu + logvar * torch.randn_like(mu)")),
    "no sample (decodes the mean)": (False, ("z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)", "z = mu")),
    "KL sign flipped": (False, ("return -0.5 * (1 + logvar", "return 0.5 * (1 + logvar")),
    "KL with exp(logvar) squared": (False, ("logvar.exp()).sum(-1)", "logvar.exp() ** 2).sum(-1)")),
    "loss summed over the batch": (False, ("return (rec + self.kl(mu, logvar)).mean()",
                                           "return (rec + self.kl(mu, logvar)).sum()")),
    "one head": (False, ("return self.mean_head(h), self.logvar_head(h)", "return self.mean_head(h), self.mean_head(h)")),
}


@pytest.mark.parametrize("name", VAE_PLANTED)
def test_vae_cell(ns, name):
    right, swap = VAE_PLANTED[name]
    src = VAE_SOURCE if swap is None else VAE_SOURCE.replace(*swap)
    assert swap is None or src != VAE_SOURCE, "the planted edit must change the source"
    check(ns, "test_vae", src, right)


def test_results_folder_layout(tmp_path, monkeypatch):
    """The grading run writes the documented folders and files."""
    monkeypatch.chdir(tmp_path)
    full = load_solution(AID, until="train-vae")
    for arch in ("ae", "vae"):
        folder = tmp_path / "results" / f"AE-arch={arch}(512)-lr=0.001-ep=1"
        assert sorted(p.name for p in folder.iterdir()) == [  # epochs from 0, as in Project 3
            "loss_curves.png", "perf_metrics.csv", "reconstruction_0.png", "sample_0.png"]
        header, first = (folder / "perf_metrics.csv").read_text().splitlines()
        assert header == "epoch,train_loss,test_loss" and first.startswith("0,")
    assert full["EPOCHS"] == 1


def test_kl_sign_mistake_loses_the_vae_cells_only(grade_planted):
    wrong = VAE_SOURCE.replace("return -0.5 * (1 + logvar", "return 0.5 * (1 + logvar")
    score, cells = grade_planted(AID, "kl_sign", {"vae": wrong})
    assert cells["test_vae"] == 0 and cells["test_train_vae"] == 0
    assert cells["test_autoencoder"] == 3 and cells["test_train_ae"] == 2
