"""Notebook 05 (GAN): the networks and loop of helpers.gan, and the grading of planted answers.

Planted answers are graded in-process: the source notebook's own test cells (hidden tests
included) run against a namespace from ``load_solution`` in which one solution cell was
replaced. One real nbgrader submission checks the same through the release and autograde.
"""
from __future__ import annotations

import copy

import nbformat
import pytest
import torch
from torch.nn import functional as F

from autograder.config import REPO
from autograder.cells import grade_id, is_solution_cell, is_test_cell, points
from autograder.solutions import load_solution
from planted import grade_in_process
from helpers import gan

AID = "05_gan"
CPU = torch.device("cpu")


# --- helpers.gan ------------------------------------------------------------------------------

def test_network_shapes():
    torch.manual_seed(0)
    g, d = gan.Generator(dim_z=16), gan.Discriminator()
    x = g(torch.randn(5, 16))
    assert x.shape == (5, 1, 28, 28) and 0 <= x.min() and x.max() <= 1
    assert d(x).shape == (5,) and d(x.reshape(5, 784)).shape == (5,)
    s = g.sample(7, generator=torch.Generator().manual_seed(1))
    assert s.shape == (7, 1, 28, 28) and not s.requires_grad and g.training, "sample restores train mode"


def _nonsaturating(g, d, x_real, *, device):
    # deliberately without detach: d_loss reaches g, and g_loss's graph goes through d
    x_fake = g(torch.randn(len(x_real), g.dim_z, device=device))
    return F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake)).mean(), F.softplus(-d(x_fake)).mean()


def test_step_takes_both_gradients_at_the_same_parameters():
    """CS236's order (d steps, then g_loss.backward()) fails on current torch; ``step`` must
    instead update d by grad d_loss only and g by grad g_loss only, both at the old parameters."""
    torch.manual_seed(0)
    g, d = gan.Generator(dim_z=4, width=4), gan.Discriminator(width=4)
    g2, d2 = copy.deepcopy(g), copy.deepcopy(d)
    x = torch.rand(6, 1, 28, 28)
    torch.manual_seed(1)
    d_loss, g_loss = _nonsaturating(g, d, x, device=CPU)
    want_d = torch.autograd.grad(d_loss, list(d.parameters()), retain_graph=True)
    want_g = torch.autograd.grad(g_loss, list(g.parameters()))
    torch.manual_seed(1)
    losses = gan.step(g2, d2, _nonsaturating, x, torch.optim.SGD(g2.parameters(), lr=1.0),
                      torch.optim.SGD(d2.parameters(), lr=1.0), CPU)
    assert losses == pytest.approx((d_loss.item(), g_loss.item()), rel=1e-5)
    for p, o, w in zip(d2.parameters(), d.parameters(), want_d):
        assert torch.allclose(p, o - w, atol=1e-6)
    for p, o, w in zip(g2.parameters(), g.parameters(), want_g):
        assert torch.allclose(p, o - w, atol=1e-6)
    assert any(w.abs().sum() > 0 for w in want_g) and any(w.abs().sum() > 0 for w in want_d)


def test_gradients_of_an_unconnected_loss_are_zero():
    g = gan.Generator(dim_z=4, width=4)
    grads = gan.gradients(torch.tensor(1.0), g)
    assert len(grads) == len(list(g.parameters())) and all(t.abs().sum() == 0 for t in grads)


def test_train_saves_grids_and_losses(tmp_path):
    torch.manual_seed(0)
    g, d = gan.Generator(dim_z=8, width=4), gan.Discriminator(width=4)
    x = torch.rand(8 * 30, 784)
    h = gan.train(g, d, _nonsaturating, x, iterations=21, batch_size=8, out_dir=tmp_path, save_every=10,
                  generator=torch.Generator().manual_seed(0), progress=False)
    assert [p.name for p in h.grids] == ["fake_0000.png", "fake_0010.png", "fake_0020.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in h.grids]
    assert len(h.d_loss) == len(h.g_loss) == 21
    assert all(map(torch.isfinite, torch.tensor(h.d_loss + h.g_loss)))
    assert not g.training and not d.training
    # without a limit: exactly one epoch, the last batch shorter
    h = gan.train(g, d, _nonsaturating, x[:20], batch_size=8, out_dir=tmp_path, progress=False)
    assert len(h.d_loss) == 3


# --- grading of planted answers ----------------------------------------------------------------

SOURCE = REPO / "notebooks" / AID / f"{AID}.ipynb"
CELLS = nbformat.read(SOURCE, as_version=4).cells
TESTS = {grade_id(c): c for c in CELLS if is_test_cell(c)}
POINTS = {gid: points(c) for gid, c in TESTS.items()}
SOLUTIONS = {grade_id(c): c.source for c in CELLS if is_solution_cell(c)
             and c.cell_type == "code"}

HEADER = "def {name}(g, d, x_real, *, device):\n    z = torch.randn(x_real.shape[0], g.dim_z, device=device)\n"


def loss_cell(name: str, body: str) -> str:
    """A student's solution cell for ``loss_nonsaturating`` or ``loss_minimax``."""
    return HEADER.format(name=name) + "".join(f"    {line}\n" for line in body.strip().splitlines())


NS_BODY = {  # loss_nonsaturating
    "reference": None,
    "alt_bce_with_logits": """
x_fake = g(z)
h_real, h_fake = d(x_real), d(x_fake.detach())
d_loss = (F.binary_cross_entropy_with_logits(h_real, torch.ones_like(h_real))
          + F.binary_cross_entropy_with_logits(h_fake, torch.zeros_like(h_fake)))
h = d(x_fake)
g_loss = F.binary_cross_entropy_with_logits(h, torch.ones_like(h))
return d_loss, g_loss""",
    "alt_logsigmoid_fresh_z": """
d_loss = -F.logsigmoid(d(x_real)).mean() - F.logsigmoid(-d(g(z))).mean()
z2 = torch.randn(x_real.shape[0], g.dim_z, device=device)
g_loss = -F.logsigmoid(d(g(z2))).mean()
return d_loss, g_loss""",
    "d_sign_flip": """
x_fake = g(z)
d_loss = -(F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake)).mean())
g_loss = F.softplus(-d(x_fake)).mean()
return d_loss, g_loss""",
    "g_sign_flip": """
x_fake = g(z)
d_loss = F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake)).mean()
g_loss = -F.softplus(-d(x_fake)).mean()
return d_loss, g_loss""",
    "log_of_probabilities": """
x_fake = g(z)
p_real, p_fake = torch.sigmoid(d(x_real)), torch.sigmoid(d(x_fake))
d_loss = -torch.log(p_real).mean() - torch.log(1 - p_fake).mean()
g_loss = -torch.log(p_fake).mean()
return d_loss, g_loss""",
    "bce_on_probabilities": """
x_fake = g(z)
p_real, p_fake = torch.sigmoid(d(x_real)), torch.sigmoid(d(x_fake))
d_loss = (F.binary_cross_entropy(p_real, torch.ones_like(p_real))
          + F.binary_cross_entropy(p_fake, torch.zeros_like(p_fake)))
g_loss = F.binary_cross_entropy(p_fake, torch.ones_like(p_fake))
return d_loss, g_loss""",
    "sigmoid_then_logits": """
x_fake = g(z)
p_real, p_fake = torch.sigmoid(d(x_real)), torch.sigmoid(d(x_fake))
d_loss = F.softplus(-p_real).mean() + F.softplus(p_fake).mean()
g_loss = F.softplus(-p_fake).mean()
return d_loss, g_loss""",
    "minimax_instead": """
x_fake = g(z)
d_loss = F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake)).mean()
g_loss = -F.softplus(d(x_fake)).mean()
return d_loss, g_loss""",
    "detached_fake_for_g": """
x_fake = g(z).detach()
d_loss = F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake)).mean()
g_loss = F.softplus(-d(x_fake)).mean()
return d_loss, g_loss""",
    "sum_not_mean": """
x_fake = g(z)
d_loss = F.softplus(-d(x_real)).sum() + F.softplus(d(x_fake)).sum()
g_loss = F.softplus(-d(x_fake)).sum()
return d_loss, g_loss""",
}

MM_BODY = {  # loss_minimax
    "reference": None,
    "alt_reuse_and_logsigmoid": """
d_loss, _ = loss_nonsaturating(g, d, x_real, device=device)
g_loss = F.logsigmoid(-d(g(z))).mean()
return d_loss, g_loss""",
    "sign_flip": """
x_fake = g(z)
d_loss = F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake)).mean()
g_loss = F.softplus(d(x_fake)).mean()
return d_loss, g_loss""",
    "nonsaturating_instead": """
x_fake = g(z)
d_loss = F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake)).mean()
g_loss = F.softplus(-d(x_fake)).mean()
return d_loss, g_loss""",
    "log_of_probabilities": """
x_fake = g(z)
d_loss = F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake)).mean()
g_loss = torch.log(1 - torch.sigmoid(d(x_fake))).mean()
return d_loss, g_loss""",
    "detached_fake_for_g": """
x_fake = g(z)
d_loss = F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake)).mean()
g_loss = -F.softplus(d(x_fake.detach())).mean()
return d_loss, g_loss""",
}

ID_CELL = {  # identities
    "reference": None,
    "alt_two_steps": "steps_complement = [1 - sigma(xi), sigma(-xi)]\n"
                     "steps_log_grad = [sp.diff(sp.log(sigma(xi)), xi), 1 - sigma(xi), sigma(-xi)]\n",
    "wrong_step": "steps_complement = [1 - sigma(xi), sp.exp(xi) / (1 + sp.exp(-xi)), sigma(-xi)]\n"
                  "steps_log_grad = [sp.diff(sp.log(sigma(xi)), xi), sigma(-xi)]\n",
    "wrong_end": "steps_complement = [1 - sigma(xi), sigma(-xi)]\n"
                 "steps_log_grad = [sp.diff(sp.log(sigma(xi)), xi), sigma(xi)]\n",
}

DERIV_CELL = {  # loss_derivatives
    "reference": None,
    "alt_exp_form": "dloss_minimax = -sp.exp(xi) / (1 + sp.exp(xi))\ndloss_ns = -1 / (1 + sp.exp(xi))\n",
    "swapped": "dloss_minimax = -sigma(-xi)\ndloss_ns = -sigma(xi)\n",
    "sign": "dloss_minimax = sigma(xi)\ndloss_ns = sigma(-xi)\n",
}


@pytest.fixture(scope="module")
def solution_ns():
    torch.set_num_threads(1)
    return load_solution(AID, until="loss_minimax")


CASES = ([("loss_nonsaturating", k, None if v is None else loss_cell("loss_nonsaturating", v)) for k, v in NS_BODY.items()]
         + [("loss_minimax", k, None if v is None else loss_cell("loss_minimax", v)) for k, v in MM_BODY.items()
            if v is not None]
         + [("identities", k, v) for k, v in ID_CELL.items() if v is not None]
         + [("loss_derivatives", k, v) for k, v in DERIV_CELL.items() if v is not None])


@pytest.mark.parametrize("cell,case,source", CASES, ids=[f"{c}-{k}" for c, k, _ in CASES])
def test_planted_answers(solution_ns, cell, case, source):
    earned = grade_in_process(AID, solution_ns, source)
    full = sum(POINTS.values())
    if case == "reference" or case.startswith("alt_"):
        assert earned == POINTS, f"a correct answer lost points: {earned}"
    else:
        assert sum(earned.values()) < full, f"the mistake {case!r} in {cell} kept full marks"


def test_each_nonsaturating_mistake_loses_in_the_cell_that_names_it(solution_ns):
    """Which test cell catches which mistake (so feedback points at the right problem)."""
    expect = {
        "d_sign_flip": "test_loss_nonsaturating",
        "g_sign_flip": "test_loss_nonsaturating",
        "minimax_instead": "test_loss_nonsaturating",
        "sum_not_mean": "test_loss_nonsaturating",
        "sigmoid_then_logits": "test_loss_nonsaturating",
        "log_of_probabilities": "test_loss_nonsaturating_stable",
        "bce_on_probabilities": "test_loss_nonsaturating_stable",
        "detached_fake_for_g": "test_loss_nonsaturating_gradients",
    }
    for case, gid in expect.items():
        earned = grade_in_process(AID, solution_ns, loss_cell("loss_nonsaturating", NS_BODY[case]))
        assert earned[gid] == 0, f"{case} passed {gid}"
        assert earned["test_loss_minimax"] == POINTS["test_loss_minimax"], f"{case} cost loss_minimax's points"


def test_planted_submission_through_nbgrader(grade_planted):
    """One real release + autograde: mistakes in independent cells lose exactly their cells."""
    overrides = {
        "identities": ID_CELL["wrong_step"],
        "loss_nonsaturating": loss_cell("loss_nonsaturating", NS_BODY["detached_fake_for_g"]),
        "loss_minimax": loss_cell("loss_minimax", MM_BODY["alt_reuse_and_logsigmoid"]),
    }
    score, cells = grade_planted(AID, "planted05", overrides)
    lost = {gid for gid, pts in POINTS.items() if cells[gid] != pts}
    assert lost == {"test_identities", "test_loss_nonsaturating_gradients"}, cells
    assert score.auto == score.auto_max - POINTS["test_identities"] - POINTS["test_loss_nonsaturating_gradients"]
