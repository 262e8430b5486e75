"""Notebook 01 (autoencoder): its tests tell right from wrong.

In-process: ``PLANTED`` holds, per test cell, held-back answers to a solution cell (the reference,
correct implementations written another way, and realistic mistakes, each named for what it
does); the test cell, hidden tests included, must keep a correct answer's points and take a
mistake's. The training cells are graded with the answer's class trained anew by the notebook's
own training cell. Through nbgrader: one submission whose VAE loss has the KL's sign flipped loses
the VAE cells and keeps the autoencoder's.
"""
from __future__ import annotations

import pytest
import torch

from autograder.course.solutions import cell_source, load_solution
from planted import assert_graded, edited, params

AID = "01_autoencoder"

AE = cell_source(AID, "autoencoder")
VAE = cell_source(AID, "vae")
TRAIN_AE, TRAIN_VAE = cell_source(AID, "train-ae"), cell_source(AID, "train-vae")


# --- the KL to the prior N(0, I) in the VAE's parametrisation (mu, logvar) ----------------------
# Per image, KL(N(mu, diag exp(logvar)) || N(0, I)) for mu, logvar of shape (batch, latent): right
# and wrong expressions. Notebook 06's loss takes them too.

KL_REFERENCE = "-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())"
KL_TO_PRIOR = {
    "KL through torch.distributions": (True, "torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * logvar).exp()), "
                                             "torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))).sum(-1)"),
    "KL as (mu^2 + sigma^2 - 1 - log sigma^2) / 2": (True, "0.5 * (mu ** 2 + torch.exp(logvar) - 1 - logvar).sum(dim=-1)"),
    "KL sign flipped": (False, "0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)"),
    "KL with the variance taken as exp(logvar) squared": (False, "-0.5 * (1 + logvar - mu.pow(2) - logvar.exp() ** 2).sum(-1)"),
    "KL with logvar taken as the log standard deviation": (False, "-0.5 * (1 + 2 * logvar - mu.pow(2) - (2 * logvar).exp()).sum(-1)"),
    "KL with logvar taken as the variance": (False, "-0.5 * (1 + logvar.abs().log() - mu.pow(2) - logvar).sum(-1)"),
    "KL forgets the 1": (False, "-0.5 * (logvar - mu.pow(2) - logvar.exp()).sum(-1)"),
    "KL forgets the 1/2": (False, "-(1 + logvar - mu.pow(2) - logvar.exp()).sum(-1)"),
    "KL with mu not squared": (False, "-0.5 * (1 + logvar - mu - logvar.exp()).sum(-1)"),
    "KL averaged over the latent dimensions": (False, f"{KL_REFERENCE}.mean(-1)"),
    "KL summed over the batch, not the latent dimensions": (False, f"{KL_REFERENCE}.sum(0)"),
}
assert KL_REFERENCE in VAE, "the notebook's KL is the reference expression"

# --- the autoencoder --------------------------------------------------------------------------

ENCODER = "self.encoder = nn.Sequential(nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, latent))"
DECODER = "self.decoder = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, 784), nn.Sigmoid())"
AES = {
    "the notebook's solution": (True, AE),
    "layers from a list": (True, edited(AE, (ENCODER, "self.encoder = nn.Sequential(*[nn.Linear(784, hidden), nn.ReLU(), nn.Linear(hidden, latent)])"))),
    "named layers (OrderedDict), flattening encode": (True, edited(
        AE, (ENCODER, "from collections import OrderedDict\n        self.encoder = nn.Sequential(OrderedDict("
                      "fc1=nn.Linear(784, hidden), relu=nn.ReLU(inplace=True), code=nn.Linear(hidden, latent)))"),
        ("return self.encoder(x)", "return self.encoder(x.reshape(len(x), -1))"))),
    "no ReLU in the encoder": (False, edited(AE, (ENCODER, "self.encoder = nn.Sequential(nn.Linear(784, hidden), nn.Linear(hidden, latent))"))),
    "ReLU on the code": (False, edited(AE, ("nn.Linear(hidden, latent))", "nn.Linear(hidden, latent), nn.ReLU())"))),
    "sigmoid on the code": (False, edited(AE, ("nn.Linear(hidden, latent))", "nn.Linear(hidden, latent), nn.Sigmoid())"))),
    "LeakyReLU instead of ReLU": (False, edited(AE, ("nn.ReLU()", "nn.LeakyReLU()"))),
    "no sigmoid on the output": (False, edited(AE, ("nn.Linear(hidden, 784), nn.Sigmoid())", "nn.Linear(hidden, 784))"))),
    "tanh on the output": (False, edited(AE, ("nn.Sigmoid())", "nn.Tanh())"))),
    "sigmoid in decode, not in the decoder network": (False, edited(
        AE, ("nn.Linear(hidden, 784), nn.Sigmoid())", "nn.Linear(hidden, 784))"), ("return self.decoder(z)", "return torch.sigmoid(self.decoder(z))"))),
    "dropout in the encoder": (False, edited(AE, ("nn.ReLU(), nn.Linear(hidden, latent)", "nn.ReLU(), nn.Dropout(0.2), nn.Linear(hidden, latent)"))),
    "hidden size fixed at 256": (False, edited(AE, ("nn.Linear(784, hidden)", "nn.Linear(784, 256)"), ("nn.Linear(hidden, latent)", "nn.Linear(256, latent)"),
                                               ("nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, 784)",
                                                "nn.Linear(latent, 256), nn.ReLU(), nn.Linear(256, 784)"))),
    "sizes hard-coded": (False, edited(AE, ("nn.Linear(hidden, latent))", "nn.Linear(512, 2))"))),
    "latent size hard-coded in the decoder": (False, edited(AE, ("nn.Linear(latent, hidden)", "nn.Linear(2, hidden)"))),
    "encode detaches the code (the encoder never learns)": (False, edited(AE, ("return self.encoder(x)", "return self.encoder(x).detach()"))),
    "encode under torch.no_grad()": (False, edited(AE, ("return self.encoder(x)", "with torch.no_grad():\n            return self.encoder(x)"))),
    "decode returns images (batch, 1, 28, 28)": (False, edited(AE, ("return self.decoder(z)", "return self.decoder(z).reshape(-1, 1, 28, 28)"))),
}

# The training cell graded: the answer's class, trained anew by the notebook's training cell.
# The given loss is part of the student's cell: an edited loss trains a model whose recorded
# test loss is not the binary cross-entropy the notebook documents.
AE_LOSS = 'return F.binary_cross_entropy(self(x), x, reduction="sum") / len(x)'
TRAINED_AES = {
    "the notebook's solution": (True, AE + "\n" + TRAIN_AE),
    "named layers (OrderedDict), flattening encode": (True, AES["named layers (OrderedDict), flattening encode"][1] + "\n" + TRAIN_AE),
    "the given loss averaged over the pixels": (False, edited(AE, (AE_LOSS, "return F.binary_cross_entropy(self(x), x)")) + "\n" + TRAIN_AE),
    "the given loss summed over the batch": (False, edited(AE, (AE_LOSS, 'return F.binary_cross_entropy(self(x), x, reduction="sum")')) + "\n" + TRAIN_AE),
}

# --- the VAE ------------------------------------------------------------------------------------

SAMPLE = "z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)"
REC = 'rec = F.binary_cross_entropy(self.decode(z), x, reduction="none").sum(-1)'
LOSS = "return (rec + self.kl(mu, logvar)).mean()"
HEADS = "return self.mean_head(h), self.logvar_head(h)"
KL_LINE = f"return {KL_REFERENCE}.sum(-1)"
VAES = {
    "the notebook's solution": (True, VAE),
    **{name: (right, edited(VAE, (KL_LINE, f"return {expr}"))) for name, (right, expr) in KL_TO_PRIOR.items()},
    "sample through Normal(mu, sigma).rsample()": (True, edited(VAE, (SAMPLE, "z = torch.distributions.Normal(mu, torch.exp(logvar / 2)).rsample()"))),
    "noise from torch.randn(mu.shape)": (True, edited(VAE, (SAMPLE, "std = torch.exp(0.5 * logvar)\n        z = mu + std * torch.randn(mu.shape)"))),
    "BCE summed over the batch, then divided by it": (True, edited(
        VAE, (REC, 'rec = F.binary_cross_entropy(self.decode(z), x, reduction="sum") / len(x)'),
        (LOSS, "return rec + self.kl(mu, logvar).mean()"))),
    "BCE written out": (True, edited(VAE, (REC, "p = self.decode(z)\n        rec = -(x * p.log() + (1 - x) * (1 - p).log()).sum(-1)"))),
    "trunk sliced from the autoencoder's encoder": (True, edited(
        VAE, ("del self.encoder\n        self.trunk = nn.Sequential(nn.Linear(784, hidden), nn.ReLU())",
              "self.trunk = self.encoder[:2]\n        del self.encoder"))),
    # the noise and what reaches the decoder
    "no sample (decodes the mean)": (False, edited(VAE, (SAMPLE, "z = mu"))),
    "logvar used as the standard deviation": (False, edited(VAE, (SAMPLE, "z = mu + logvar * torch.randn_like(mu)"))),
    "exp(logvar) used as the standard deviation": (False, edited(VAE, (SAMPLE, "z = mu + logvar.exp() * torch.randn_like(mu)"))),
    "uniform noise (torch.rand_like)": (False, edited(VAE, (SAMPLE, "z = mu + (0.5 * logvar).exp() * torch.rand_like(mu)"))),
    "one noise vector shared by the batch": (False, edited(VAE, (SAMPLE, "z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape[-1])"))),
    "one noise value per image, shared by the coordinates": (False, edited(VAE, (SAMPLE, "z = mu + (0.5 * logvar).exp() * torch.randn(len(mu), 1)"))),
    "the same noise at every call (generator reseeded)": (False, edited(VAE, (SAMPLE, "torch.manual_seed(0)\n        " + SAMPLE))),
    "mean detached in the sample": (False, edited(VAE, (SAMPLE, "z = mu.detach() + (0.5 * logvar).exp() * torch.randn_like(mu)"))),
    "standard deviation detached in the sample": (False, edited(VAE, (SAMPLE, "z = mu + (0.5 * logvar).exp().detach() * torch.randn_like(mu)"))),
    "sample detached": (False, edited(VAE, (SAMPLE, "z = (mu + (0.5 * logvar).exp() * torch.randn_like(mu)).detach()"))),
    # reductions and terms
    "KL of the sample, not the mean": (False, edited(VAE, (LOSS, "return (rec + self.kl(z, logvar)).mean()"))),
    "loss summed over the batch": (False, edited(VAE, (LOSS, "return (rec + self.kl(mu, logvar)).sum()"))),
    "BCE averaged over the pixels": (False, edited(VAE, (REC, 'rec = F.binary_cross_entropy(self.decode(z), x, reduction="none").mean(-1)'))),
    "BCE summed over the batch, KL averaged": (False, edited(
        VAE, (REC, 'rec = F.binary_cross_entropy(self.decode(z), x, reduction="sum")'), (LOSS, "return rec + self.kl(mu, logvar).mean()"))),
    "KL summed over the batch, BCE averaged": (False, edited(VAE, (LOSS, "return rec.mean() + self.kl(mu, logvar).sum()"))),
    "MSE instead of BCE": (False, edited(VAE, (REC, 'rec = F.mse_loss(self.decode(z), x, reduction="none").sum(-1)'))),
    "input and target swapped in the BCE": (False, edited(VAE, (REC, 'rec = F.binary_cross_entropy(x, self.decode(z), reduction="none").sum(-1)'))),
    "no KL in the loss": (False, edited(VAE, (LOSS, "return rec.mean()"))),
    "no reconstruction term": (False, edited(VAE, (LOSS, "return self.kl(mu, logvar).mean()"))),
    # the encoder
    "one head": (False, edited(VAE, (HEADS, "return self.mean_head(h), self.mean_head(h)"))),
    "no ReLU in the trunk": (False, edited(VAE, ("nn.Sequential(nn.Linear(784, hidden), nn.ReLU())", "nn.Sequential(nn.Linear(784, hidden))"))),
    "ReLU on the log-variance": (False, edited(VAE, (HEADS, "return self.mean_head(h), F.relu(self.logvar_head(h))"))),
    "heads return (logvar, mu)": (False, edited(VAE, (HEADS, "return self.logvar_head(h), self.mean_head(h)"))),
}

# run_experiment finds VariationalAutoencoder in the namespace it was defined in: the answer
# defines it anew (the training cell up to its autoencoder run) before training the VAE.
RUN_EXPERIMENT = TRAIN_AE[:TRAIN_AE.index('autoencoder_type = "ae"')]
TRAINED_VAES = {name: (right, "\n".join([vae, RUN_EXPERIMENT, TRAIN_VAE])) for name, (right, vae) in {
    "the notebook's solution": (True, VAE),
    "sample through Normal(mu, sigma).rsample()": (True, VAES["sample through Normal(mu, sigma).rsample()"][1]),
    "no KL in the loss (the codes ignore the prior)": (False, VAES["no KL in the loss"][1]),
    "KL weighted 100 times (posterior collapse)": (False, edited(VAE, (LOSS, "return (rec + 100 * self.kl(mu, logvar)).mean()"))),
}.items()}

PLANTED = {
    "test_autoencoder": AES,
    "test_train_ae": TRAINED_AES,
    "test_vae": VAES,
    "test_train_vae": TRAINED_VAES,
}


@pytest.fixture(scope="module")
def solution(one_thread, tmp_path_factory):
    """The notebook's namespace after both training runs, in a folder of the module's own (the
    runs, and the planted ones, write ``results/``)."""
    with pytest.MonkeyPatch.context() as m:
        m.chdir(tmp_path_factory.mktemp("01"))
        yield load_solution(AID, until="train-vae")


@pytest.mark.parametrize("test, right, answer", params(PLANTED))
def test_planted(solution, test, right, answer, monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")  # as nbgrader grades: the short training budget
    assert_graded(AID, solution, test, answer, right)


def test_results_folder_layout(tmp_path, monkeypatch):
    """The grading run writes the documented folders and files."""
    monkeypatch.chdir(tmp_path)
    full = load_solution(AID, until="train-vae")
    for arch in ("ae", "vae"):
        folder = tmp_path / "results" / f"AE-arch={arch}(512)-lr=0.001-ep=1"
        assert sorted(p.name for p in folder.iterdir()) == [  # epochs from 0, as in Project 3
            "loss_curves.png", "model.pt", "perf_metrics.csv", "reconstruction_0.png", "sample_0.png"]
        header, first = (folder / "perf_metrics.csv").read_text().splitlines()
        assert header == "epoch,train_loss,test_loss" and first.startswith("0,")
        # the trained weights, which notebook 03 loads to draw these models' manifolds
        saved = torch.load(folder / "model.pt", weights_only=True)
        trained = full[arch].state_dict()
        assert saved.keys() == trained.keys() and all(torch.equal(saved[k], trained[k]) for k in saved)
    assert full["EPOCHS"] == 1


def test_kl_sign_mistake_loses_the_vae_cells_only(grade_planted):
    wrong = VAES["KL sign flipped"][1]
    score, cells = grade_planted(AID, "kl_sign", {"vae": wrong})
    assert cells["test_vae"] == 0 and cells["test_train_vae"] == 0
    assert cells["test_autoencoder"] == 3 and cells["test_train_ae"] == 2
