"""Notebook 04 (conditional generation): its tests tell right from wrong, the held-out split is
the TA's, and the trusted evaluator (``autograder.conditional``) scores what the model does.

In-process: a test cell of the source notebook (hidden tests included) runs in the reference
namespace from ``load_solution`` with one solution cell replaced by a planted mistake (the cell
must fail) or another correct design (it must pass). Through nbgrader: the two quality cells
give partial credit, and models that ignore the label, do not train or use a large code lose
the points they should.
"""
from __future__ import annotations

from functools import partial

import warnings

import pytest
import torch

from autograder import conditional
from autograder.config import REPO
from autograder.solutions import assert_graded, cell_source, grade_in_process, load_solution, with_answer
from helpers import data, metrics

AID = "04_conditional_generation"


check = partial(assert_graded, AID)  # check(ns, gid, answer, right)


@pytest.fixture(scope="module")
def functions():
    torch.set_num_threads(1)
    return load_solution(AID, until="cvae_loss")


@pytest.fixture(scope="module")
def trained():
    """The notebook up to its evaluation, trained with the grading budget."""
    torch.set_num_threads(1)
    return load_solution(AID, until="evaluate")


def reference(gid: str) -> str:
    return cell_source(AID, gid)


def patched(gid: str, old: str, new: str) -> str:
    src = reference(gid)
    assert old in src, old
    return src.replace(old, new, 1)


# --- the model cell -----------------------------------------------------------------------------

EMBEDDING_CVAE = '''
class CVAE(nn.Module):
    """Another design: a learnt label embedding, two hidden layers, a softplus-free log-variance."""
    def __init__(self, latent_dim=8):
        super().__init__()
        self.latent_dim = latent_dim
        self.emb_e, self.emb_d = nn.Embedding(10, 16), nn.Embedding(10, 16)
        self.body = nn.Sequential(nn.Linear(784 + 16, 256), nn.ELU(), nn.Linear(256, 128), nn.ELU())
        self.mu, self.lv = nn.Linear(128, latent_dim), nn.Linear(128, latent_dim)
        self.dec = nn.Sequential(nn.Linear(latent_dim + 16, 128), nn.ELU(), nn.Linear(128, 256), nn.ELU(),
                                 nn.Linear(256, 784))

    def encode(self, x, y):
        h = self.body(torch.cat([x.flatten(1), self.emb_e(y)], -1))
        return self.mu(h), self.lv(h)

    def decode(self, z, y):
        return self.dec(torch.cat([z, self.emb_d(y)], -1))

    def reconstruct(self, x, y):
        return self.decode(self.encode(x, y)[0], y).sigmoid().view(len(x), 28, 28)

    def generate(self, y, n=None):
        labels = torch.tensor([y] * (n or 1)) if isinstance(y, int) else y
        return self.decode(torch.randn(len(labels), self.latent_dim), labels).sigmoid().view(-1, 28, 28)
'''

CVAES = {
    "reference": (True, None),
    "label embedding, deeper": (True, EMBEDDING_CVAE),
    "encoder ignores the label": (False, ("self.enc(self._with_label(x.reshape(len(x), 784), y))",
                                          "self.enc(self._with_label(x.reshape(len(x), 784), torch.zeros_like(y)))")),
    "decoder ignores the label": (False, ("return self.dec(self._with_label(z, y))",
                                          "return self.dec(self._with_label(z, torch.zeros_like(y)))")),
    "reconstruct adds noise": (False, ("self.decode(self.encode(x, y)[0], y)",
                                       "self.decode(self.encode(x, y)[0] + torch.randn_like(self.encode(x, y)[0]), y)")),
    "reconstruct returns logits": (False, ("return torch.sigmoid(self.decode(self.encode(x, y)[0], y)).reshape(-1, 28, 28)",
                                           "return self.decode(self.encode(x, y)[0], y).reshape(-1, 28, 28)")),
    "reconstruct returns (batch, 784)": (False, ("return torch.sigmoid(self.decode(self.encode(x, y)[0], y)).reshape(-1, 28, 28)",
                                                 "return torch.sigmoid(self.decode(self.encode(x, y)[0], y))")),
    "generate decodes z = 0": (False, ("z = torch.randn(len(y), self.latent_dim, device=device)",
                                       "z = torch.zeros(len(y), self.latent_dim, device=device)")),
    "generate with uniform noise": (False, ("z = torch.randn(len(y), self.latent_dim, device=device)",
                                            "z = torch.rand(len(y), self.latent_dim, device=device)")),
    "generate with standard deviation 0.5": (False, ("z = torch.randn(len(y), self.latent_dim, device=device)",
                                                     "z = 0.5 * torch.randn(len(y), self.latent_dim, device=device)")),
    "generate(k) ignores n": (False, ("y = torch.full((1 if n is None else n,), y, dtype=torch.long)",
                                      "y = torch.full((1,), y, dtype=torch.long)")),
    "generate ignores the label": (False, ("return torch.sigmoid(self.decode(z, y)).reshape(-1, 28, 28)",
                                           "return torch.sigmoid(self.decode(z, torch.zeros_like(y))).reshape(-1, 28, 28)")),
    "only (batch, 784) inputs": (False, ("self.enc(self._with_label(x.reshape(len(x), 784), y))",
                                         "self.enc(self._with_label(x, y))")),
}


@pytest.mark.parametrize("name", CVAES)
def test_cvae_cell(functions, name):
    right, change = CVAES[name]
    src = reference("cvae") if change is None else change if isinstance(change, str) else patched("cvae", *change)
    check(functions, "test_cvae_interface", src, right)


# --- the loss cell ------------------------------------------------------------------------------

LOSS = "def cvae_loss(model, x, y):\n    x = x.reshape(len(x), 784)\n    mu, logvar = model.encode(x, y)\n{}\n"
LOSSES = {
    "reference": (True, None),
    "torch.distributions": (True, """
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    logits = model.decode(q.rsample(), y)
    rec = -torch.distributions.Bernoulli(logits=logits, validate_args=False).log_prob(x).sum(1).mean()
    return kl + rec, kl, rec"""),
    "logsigmoid by hand": (True, """
    kl = -0.5 * torch.sum(1 + logvar - mu ** 2 - torch.exp(logvar), dim=1).mean()
    l = model.decode(mu + torch.randn_like(logvar) * torch.exp(logvar / 2), y)
    rec = -(x * F.logsigmoid(l) + (1 - x) * F.logsigmoid(-l)).sum(1).mean()
    return kl + rec, kl, rec"""),
    "logvar used as a standard deviation": (False, """
    kl = 0.5 * (mu ** 2 + logvar ** 2 - 1 - torch.log(logvar ** 2)).sum(1).mean()
    rec = F.binary_cross_entropy_with_logits(model.decode(mu + logvar * torch.randn_like(mu), y), x, reduction="none").sum(1).mean()
    return kl + rec, kl, rec"""),
    "noise scaled by exp(logvar)": (False, """
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
    rec = F.binary_cross_entropy_with_logits(model.decode(mu + logvar.exp() * torch.randn_like(mu), y), x, reduction="none").sum(1).mean()
    return kl + rec, kl, rec"""),
    "KL summed over the batch": (False, """
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum()
    rec = F.binary_cross_entropy_with_logits(model.decode(mu + (0.5 * logvar).exp() * torch.randn_like(mu), y), x, reduction="none").sum(1).mean()
    return kl + rec, kl, rec"""),
    "rec averaged over pixels": (False, """
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
    rec = F.binary_cross_entropy_with_logits(model.decode(mu + (0.5 * logvar).exp() * torch.randn_like(mu), y), x)
    return kl + rec, kl, rec"""),
    "no sample (decodes mu)": (False, """
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
    rec = F.binary_cross_entropy_with_logits(model.decode(mu, y), x, reduction="none").sum(1).mean()
    return kl + rec, kl, rec"""),
    "detached sample": (False, """
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
    z = (mu + (0.5 * logvar).exp() * torch.randn_like(mu)).detach()
    rec = F.binary_cross_entropy_with_logits(model.decode(z, y), x, reduction="none").sum(1).mean()
    return kl + rec, kl, rec"""),
    "sigmoid applied twice": (False, """
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
    p = torch.sigmoid(model.decode(mu + (0.5 * logvar).exp() * torch.randn_like(mu), y))
    rec = F.binary_cross_entropy_with_logits(p, x, reduction="none").sum(1).mean()
    return kl + rec, kl, rec"""),
}


@pytest.mark.parametrize("name", LOSSES)
def test_cvae_loss_cell(functions, name):
    right, body = LOSSES[name]
    check(functions, "test_cvae_loss", reference("cvae_loss") if body is None else LOSS.format(body), right)


def test_loss_tests_pass_with_the_embedding_design(functions):
    """The loss tests build models with the student's own CVAE: another design must pass too."""
    ns = with_answer(functions, EMBEDDING_CVAE)
    assert grade_in_process(AID, ns, tests=["test_cvae_loss"])["test_cvae_loss"] > 0


# --- the held-out split ---------------------------------------------------------------------------

def test_heldout_split_is_stratified_seeded_and_from_the_test_set(monkeypatch):
    x, y = conditional.heldout()
    assert x.shape == (1000, 28, 28) and y.tolist() == [k for k in range(10) for _ in range(100)]
    x_test, y_test = data.load("mnist", "test")
    x_train, _ = data.load("mnist", "train")
    rows = {bytes(r.numpy()) for r in (x_test * 255).round().to(torch.uint8)}
    assert all(bytes(r.numpy()) in rows for r in (x.reshape(-1, 784) * 255).round().to(torch.uint8)), "test images"
    train_rows = {bytes(r.numpy()) for r in (x_train[:20_000] * 255).round().to(torch.uint8)}
    assert not any(bytes(r.numpy()) in train_rows for r in (x.reshape(-1, 784) * 255).round().to(torch.uint8))
    assert torch.equal(conditional.heldout()[0], x), "the same split every time"
    monkeypatch.setenv(conditional.HELDOUT_ENV, "123")
    other, labels = conditional.heldout()
    assert torch.equal(labels, y) and not torch.equal(other, x), "the TA's seed picks another split"
    assert torch.equal(other, conditional.heldout(seed=123)[0])


def test_the_notebook_never_touches_the_test_set():
    import nbformat

    nb = nbformat.read(REPO / "notebooks" / AID / f"{AID}.ipynb", as_version=4)
    public = "\n".join(c.source.split("### BEGIN HIDDEN TESTS")[0] for c in nb.cells if c.cell_type == "code")
    assert '"test"' not in public and "fixed_test_subset" not in public and "heldout" not in public


# --- the trusted evaluator ------------------------------------------------------------------------

def test_reference_earns_full_marks_on_two_heldout_splits_with_margin(trained):
    model = trained["model"]
    for seed in (None, 7):
        r = conditional.evaluate(model, seed=seed)
        assert r.latent_dim == model.latent_dim == 4
        assert r.reconstruction_points == 10.0 and r.generation_points == 30.0, str(r)
        # margin: the quality scores are full well before the thresholds
        assert r.ssim > metrics.SSIM_FULL + 0.02 and r.mse < metrics.MSE_FULL - 0.001, str(r)
        assert r.per_class_fid < metrics.FID_FULL - 1 and r.accuracy > metrics.ACC_FULL + 0.05, str(r)


def test_evaluator_agrees_with_the_notebooks_validation_figures(trained):
    r = conditional.evaluate(trained["model"])
    assert abs(r.mse - trained["val_mse"]) < 0.004 and abs(r.ssim - trained["val_ssim"]) < 0.04
    assert abs(r.accuracy - trained["val_acc"]) < 0.06 and abs(r.per_class_fid - trained["val_fid"]) < 2.5
    assert conditional.evaluate(trained["model"]) == r, "seeded: the same report every call"


def test_evaluator_reads_the_code_size_off_the_encoder(trained):
    model = trained["model"]
    honest = conditional.evaluate(model)
    model.latent_dim = 1  # a claim the encoder does not keep
    try:
        assert conditional.evaluate(model) == honest
    finally:
        model.latent_dim = 4


class Wrapper(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.latent_dim = inner, inner.latent_dim

    def encode(self, x, y):
        return self.inner.encode(x, y)

    def decode(self, z, y):
        return self.inner.decode(z, y)


class Memoriser(Wrapper):
    """Remembers the images it encoded and 'decodes' them: perfect reconstructions if trusted."""

    def encode(self, x, y):
        self.last = x.reshape(len(x), 784)
        return super().encode(x, y)

    def decode(self, z, y):
        if getattr(self, "last", None) is not None and len(self.last) == len(z):
            return torch.logit(self.last.clamp(1e-4, 1 - 1e-4))
        return super().decode(z, y)

    def reconstruct(self, x, y):
        return x.reshape(-1, 28, 28)


class StoredSamples(Wrapper):
    """Hands back real training digits from generate (which the evaluator does not call)."""

    def generate(self, y, n=None):
        x, labels = data.load("mnist", "train")
        return torch.stack([x[labels == k][0] for k in y]).reshape(-1, 28, 28)


def test_evaluator_does_not_trust_reconstruct_generate_or_a_memorising_decoder(trained):
    model = trained["model"]
    honest = conditional.evaluate(model)
    cheat = conditional.evaluate(Memoriser(model))
    assert cheat.mse > 3 * honest.mse and cheat.reconstruction_points < 5, str(cheat)
    assert conditional.evaluate(StoredSamples(model)) == honest


def test_evaluator_silences_warnings_and_restores_the_training_mode(trained):
    class Noisy(Wrapper):
        def decode(self, z, y):
            warnings.warn("a warning in the student's decode")
            return super().decode(z, y)

    noisy = Noisy(trained["model"]).train()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        conditional.evaluate(noisy)
    assert not seen and noisy.training


def test_untrained_model_earns_nothing(functions):
    torch.manual_seed(0)
    r = conditional.evaluate(functions["CVAE"]())
    assert r.reconstruction_points == 0 and r.generation_points == 0, str(r)


def test_evaluator_rejects_wrong_shapes(functions):
    class Flat(Wrapper):
        def decode(self, z, y):
            return super().decode(z, y)[:, :700]

    torch.manual_seed(0)
    with pytest.raises(ValueError, match="784"):
        conditional.evaluate(Flat(functions["CVAE"]()))


def test_grading_budget_is_short(trained):
    assert trained["EPOCHS"] <= 4


# --- through nbgrader: partial credit -------------------------------------------------------------

def _ignore_label() -> str:
    return patched("cvae", "def _with_label(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:\n",
                   "def _with_label(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:\n        y = torch.zeros_like(y)\n")


NO_GRADIENT = LOSS.format("""
    kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
    rec = F.binary_cross_entropy_with_logits(model.decode(mu + (0.5 * logvar).exp() * torch.randn_like(mu), y), x, reduction="none").sum(1).mean()
    return (kl + rec).detach().requires_grad_(True), kl, rec""")


def test_a_model_that_ignores_the_label_loses_the_generation_points(grade_planted):
    score, cells = grade_planted(AID, "ignores_label", {"cvae": _ignore_label()})
    assert cells["test_generation"] == 0, "chance accuracy: no generation points"
    assert cells["test_label_conditioning"] == 0 and cells["test_cvae_interface"] == 0
    assert cells["test_reconstruction"] > 5, "its reconstructions are still good"
    assert cells["test_cvae_loss"] == 3
    assert 0 < score.auto < score.auto_max


def test_a_model_that_does_not_train_loses_most_points(grade_planted):
    score, cells = grade_planted(AID, "untrained", {"cvae_loss": NO_GRADIENT})
    assert cells["test_cvae_loss"] == 0
    assert cells["test_reconstruction"] < 1 and cells["test_generation"] == 0, cells
    assert cells["test_cvae_interface"] == 4, "the model itself is fine"
    assert score.auto <= 5


def test_a_large_code_earns_partial_generation_credit(grade_planted):
    """latent_dim = 16: a correct CVAE whose code carries much of the digit, so that samples often
    are not the requested label: full reconstruction points, a fraction of the generation points."""
    big = patched("cvae", "latent_dim: int = 4", "latent_dim: int = 16")
    score, cells = grade_planted(AID, "large_code", {"cvae": big})
    assert cells["test_reconstruction"] == 10 and cells["test_cvae_interface"] == 4
    assert 0 < cells["test_generation"] < 30, cells
    assert cells["test_generation"] != int(cells["test_generation"]), "a fraction, from the cell's last value"
