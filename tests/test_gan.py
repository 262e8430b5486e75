"""Notebook 05 (GAN): the networks and loop of helpers.gan, and the grading of planted answers.

Planted answers are graded in-process: the source notebook's own test cells (hidden tests
included) run against a namespace from ``load_solution`` in which one solution cell was
replaced by a held-back answer (``PLANTED``). One real nbgrader submission checks the same
through the release and autograde.
"""
from __future__ import annotations

import copy
import textwrap

import nbformat
import pytest
import torch
from torch.nn import functional as F

from autograder.course.config import REPO
from autograder.course.cells import grade_id, is_test_cell
from autograder.course.cells import points as points_of
from planted import answers, assert_graded, own_solution, params
from helpers import gan

AID = "05_gan"
UNTIL = "loss_minimax"  # the `solution` fixture (conftest): the notebook up to this cell
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


def test_alternating_step_updates_d_then_g_against_the_updated_d():
    """The homework's order: d steps on d_loss; then g steps on the g_loss of a second call of the
    loss, taken against the updated discriminator."""
    torch.manual_seed(0)
    g, d = gan.Generator(dim_z=4, width=4), gan.Discriminator(width=4)
    g2, d2 = copy.deepcopy(g), copy.deepcopy(d)
    x = torch.rand(6, 1, 28, 28)
    torch.manual_seed(1)
    d_loss, _ = _nonsaturating(g, d, x, device=CPU)
    want_d = torch.autograd.grad(d_loss, list(d.parameters()))
    with torch.no_grad():
        for p, w in zip(d.parameters(), want_d):
            p -= w
    g_loss = _nonsaturating(g, d, x, device=CPU)[1]  # the same random stream: the second call's fakes
    want_g = torch.autograd.grad(g_loss, list(g.parameters()))
    torch.manual_seed(1)
    losses = gan.step(g2, d2, _nonsaturating, x, torch.optim.SGD(g2.parameters(), lr=1.0),
                      torch.optim.SGD(d2.parameters(), lr=1.0), CPU, order="alternating")
    assert losses == pytest.approx((d_loss.item(), g_loss.item()), rel=1e-5)
    for p, o in zip(d2.parameters(), d.parameters()):
        assert torch.allclose(p, o, atol=1e-6)
    for p, o, w in zip(g2.parameters(), g.parameters(), want_g):
        assert torch.allclose(p, o - w, atol=1e-6)
    with pytest.raises(ValueError, match="order"):
        gan.step(g2, d2, _nonsaturating, x, torch.optim.SGD(g2.parameters(), lr=1.0),
                 torch.optim.SGD(d2.parameters(), lr=1.0), CPU, order="g_first")


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
# PLANTED: per test cell, held-back answers to its solution cell, each named for what it does;
# the test cell, hidden tests included, keeps a correct answer's points and takes a mistake's.
# loss_nonsaturating has three test cells: a correct answer keeps the points of all three, a
# mistake loses those of the cell that names it (so the feedback points at the problem).

ID_CELL = "{}\n"
IDENTITIES = answers(ID_CELL, {
    "two-step chains": (True, "steps_complement = [1 - sigma(xi), sigma(-xi)]\n"
                              "steps_log_grad = [sp.diff(sp.log(sigma(xi)), xi), 1 - sigma(xi), sigma(-xi)]"),
    "tuples, exponential forms": (True, "steps_complement = (1 - sigma(xi), sp.exp(-xi) / (1 + sp.exp(-xi)), 1 / (1 + sp.exp(xi)), sigma(-xi))\n"
                                        "steps_log_grad = (sp.diff(sp.log(sigma(xi)), xi), sp.exp(-xi) * sigma(xi), sigma(-xi))"),
    "a wrong step": (False, "steps_complement = [1 - sigma(xi), sp.exp(xi) / (1 + sp.exp(-xi)), sigma(-xi)]\n"
                            "steps_log_grad = [sp.diff(sp.log(sigma(xi)), xi), sigma(-xi)]"),
    "a wrong end": (False, "steps_complement = [1 - sigma(xi), sigma(-xi)]\n"
                           "steps_log_grad = [sp.diff(sp.log(sigma(xi)), xi), sigma(xi)]"),
    "a chain that starts elsewhere": (False, "steps_complement = [1 - sigma(xi), sigma(-xi)]\n"
                                             "steps_log_grad = [sp.diff(sp.log(1 - sigma(xi)), xi), -sigma(xi), sigma(-xi)]"),
    "a step in another symbol": (False, "t = sp.Symbol('t')\nsteps_complement = [1 - sigma(xi), 1 - sigma(t), sigma(-xi)]\n"
                                        "steps_log_grad = [sp.diff(sp.log(sigma(xi)), xi), sigma(-xi)]"),
    "a step that is a number": (False, "steps_complement = [1 - sigma(xi), sp.Rational(1, 2), sigma(-xi)]\n"
                                       "steps_log_grad = [sp.diff(sp.log(sigma(xi)), xi), sigma(-xi)]"),
})

DERIVATIVES = answers("{}\n", {
    "exponential forms": (True, "dloss_minimax = -sp.exp(xi) / (1 + sp.exp(xi))\ndloss_ns = -1 / (1 + sp.exp(xi))"),
    "simplified sp.diff": (True, "dloss_minimax = sp.simplify(sp.diff(sp.log(1 - sigma(xi)), xi))\n"
                                 "dloss_ns = sp.simplify(sp.diff(-sp.log(sigma(xi)), xi))"),
    "1 - sigma": (True, "dloss_minimax = sigma(-xi) - 1\ndloss_ns = -(1 - sigma(xi))"),
    "swapped": (False, "dloss_minimax = -sigma(-xi)\ndloss_ns = -sigma(xi)"),
    "sign": (False, "dloss_minimax = sigma(xi)\ndloss_ns = sigma(-xi)"),
    "derivatives with respect to D, not the logit": (False, "dloss_minimax = -1 / (1 - sigma(xi))\ndloss_ns = -1 / sigma(xi)"),
    "raw sp.diff, not simplified": (False, "dloss_minimax = sp.diff(sp.log(1 - sigma(xi)), xi)\ndloss_ns = sp.diff(-sp.log(sigma(xi)), xi)"),
    "numbers (the limits)": (False, "dloss_minimax = sp.Integer(0)\ndloss_ns = sp.Integer(-1)"),
})


def loss_cell(name: str, body: str) -> str:
    """A student's solution cell for ``loss_nonsaturating`` or ``loss_minimax``: the given
    signature and ``z``, then ``body``."""
    return (f"def {name}(g, d, x_real, *, device):\n    z = torch.randn(x_real.shape[0], g.dim_z, device=device)\n"
            + textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n")


D_LOSS = "d_loss = F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake.detach())).mean()"


def with_g_loss(expr: str) -> str:
    """A body with the fakes drawn once, the right ``d_loss``, and ``g_loss = expr``."""
    return f"x_fake = g(z)\n{D_LOSS}\ng_loss = {expr}\nreturn d_loss, g_loss"


NS_RIGHT = {  # loss_nonsaturating, correct
    "BCE with logits": """
        x_fake = g(z)
        h_real, h_fake = d(x_real), d(x_fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(h_real, torch.ones_like(h_real))
                  + F.binary_cross_entropy_with_logits(h_fake, torch.zeros_like(h_fake)))
        h = d(x_fake)
        g_loss = F.binary_cross_entropy_with_logits(h, torch.ones_like(h))
        return d_loss, g_loss""",
    "logsigmoid, a fresh z for g": """
        d_loss = -F.logsigmoid(d(x_real)).mean() - F.logsigmoid(-d(g(z))).mean()
        z2 = torch.randn(x_real.shape[0], g.dim_z, device=device)
        g_loss = -F.logsigmoid(d(g(z2))).mean()
        return d_loss, g_loss""",
    "fakes not detached in d_loss": """
        x_fake = g(z)
        h_fake = d(x_fake)
        d_loss = F.softplus(-d(x_real)).mean() + F.softplus(h_fake).mean()
        g_loss = F.softplus(-h_fake).mean()
        return d_loss, g_loss""",
    "softplus written stably by hand": """
        sp_ = lambda h: h.clamp(min=0) + torch.log1p(torch.exp(-h.abs()))
        x_fake = g(z)
        d_loss = sp_(-d(x_real)).mean() + sp_(d(x_fake.detach())).mean()
        g_loss = sp_(-d(x_fake)).mean()
        return d_loss, g_loss""",
}
NS_WRONG = {  # loss_nonsaturating: {test cell that names the mistake: {name: body}}
    "test_loss_nonsaturating": {
        "d_loss sign flipped": """
            x_fake = g(z)
            d_loss = -(F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake)).mean())
            g_loss = F.softplus(-d(x_fake)).mean()
            return d_loss, g_loss""",
        "g_loss sign flipped": with_g_loss("-F.softplus(-d(x_fake)).mean()"),
        "the minimax g_loss instead": with_g_loss("-F.softplus(d(x_fake)).mean()"),
        "sigmoid, then the logit formulas": """
            x_fake = g(z)
            p_real, p_fake = torch.sigmoid(d(x_real)), torch.sigmoid(d(x_fake))
            d_loss = F.softplus(-p_real).mean() + F.softplus(p_fake).mean()
            g_loss = F.softplus(-p_fake).mean()
            return d_loss, g_loss""",
        "summed over the batch": """
            x_fake = g(z)
            d_loss = F.softplus(-d(x_real)).sum() + F.softplus(d(x_fake.detach())).sum()
            g_loss = F.softplus(-d(x_fake)).sum()
            return d_loss, g_loss""",
        "real and fake swapped in d_loss": """
            x_fake = g(z)
            d_loss = F.softplus(-d(x_fake.detach())).mean() + F.softplus(d(x_real)).mean()
            g_loss = F.softplus(-d(x_fake)).mean()
            return d_loss, g_loss""",
        "g_loss of the real images": with_g_loss("F.softplus(-d(x_real)).mean()"),
        "BCE over the real and fake batches concatenated (half of L_D)": """
            x_fake = g(z)
            h = torch.cat([d(x_real), d(x_fake.detach())])
            d_loss = F.binary_cross_entropy_with_logits(h, torch.cat([torch.ones(len(x_real)), torch.zeros(len(x_real))]))
            g_loss = F.softplus(-d(x_fake)).mean()
            return d_loss, g_loss""",
        "smoothed labels (0.9 for real)": """
            x_fake = g(z)
            h_real = d(x_real)
            d_loss = (F.binary_cross_entropy_with_logits(h_real, torch.full_like(h_real, 0.9))
                      + F.softplus(d(x_fake.detach())).mean())
            g_loss = F.softplus(-d(x_fake)).mean()
            return d_loss, g_loss""",
        "uniform noise (torch.rand)": f"""
            z = torch.rand(x_real.shape[0], g.dim_z, device=device)
            x_fake = g(z)
            {D_LOSS}
            g_loss = F.softplus(-d(x_fake)).mean()
            return d_loss, g_loss""",
        "the same noise at every call (generator reseeded)": f"""
            torch.manual_seed(0)
            z = torch.randn(x_real.shape[0], g.dim_z, device=device)
            x_fake = g(z)
            {D_LOSS}
            g_loss = F.softplus(-d(x_fake)).mean()
            return d_loss, g_loss""",
        "one latent vector for the whole batch": f"""
            x_fake = g(torch.randn(1, g.dim_z, device=device).expand(x_real.shape[0], -1))
            {D_LOSS}
            g_loss = F.softplus(-d(x_fake)).mean()
            return d_loss, g_loss""",
        "real images rescaled in place to [-1, 1]": f"""
            x_real.mul_(2).sub_(1)
            x_fake = g(z)
            {D_LOSS}
            g_loss = F.softplus(-d(x_fake)).mean()
            return d_loss, g_loss""",
    },
    "test_loss_nonsaturating_stable": {
        "log of probabilities": """
            x_fake = g(z)
            p_real, p_fake = torch.sigmoid(d(x_real)), torch.sigmoid(d(x_fake))
            d_loss = -torch.log(p_real).mean() - torch.log(1 - p_fake).mean()
            g_loss = -torch.log(p_fake).mean()
            return d_loss, g_loss""",
        "binary_cross_entropy on probabilities": """
            x_fake = g(z)
            p_real, p_fake = torch.sigmoid(d(x_real)), torch.sigmoid(d(x_fake))
            d_loss = (F.binary_cross_entropy(p_real, torch.ones_like(p_real))
                      + F.binary_cross_entropy(p_fake, torch.zeros_like(p_fake)))
            g_loss = F.binary_cross_entropy(p_fake, torch.ones_like(p_fake))
            return d_loss, g_loss""",
        "log of clamped probabilities": """
            x_fake = g(z)
            p_real, p_fake = torch.sigmoid(d(x_real)), torch.sigmoid(d(x_fake))
            d_loss = -p_real.clamp(1e-7, 1 - 1e-7).log().mean() - (1 - p_fake.detach()).clamp(1e-7, 1 - 1e-7).log().mean()
            g_loss = -p_fake.clamp(1e-7, 1 - 1e-7).log().mean()
            return d_loss, g_loss""",
        "softplus as log(1 + exp(h))": """
            softplus = lambda h: torch.log(1 + torch.exp(h))
            x_fake = g(z)
            d_loss = softplus(-d(x_real)).mean() + softplus(d(x_fake.detach())).mean()
            g_loss = softplus(-d(x_fake)).mean()
            return d_loss, g_loss""",
    },
    "test_loss_nonsaturating_gradients": {
        "the fakes detached for g_loss too": """
            x_fake = g(z).detach()
            d_loss = F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake)).mean()
            g_loss = F.softplus(-d(x_fake)).mean()
            return d_loss, g_loss""",
        "the discriminator's output detached for g_loss": with_g_loss("F.softplus(-d(x_fake).detach()).mean()"),
        "g_loss under torch.no_grad()": f"""
            x_fake = g(z)
            {D_LOSS}
            with torch.no_grad():
                g_loss = F.softplus(-d(x_fake)).mean()
            return d_loss, g_loss""",
        "d_loss detached": """
            x_fake = g(z)
            d_loss = (F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake.detach())).mean()).detach()
            g_loss = F.softplus(-d(x_fake)).mean()
            return d_loss, g_loss""",
        "fake logits detached in d_loss (d learns from the real images only)": """
            x_fake = g(z)
            d_loss = F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake).detach()).mean()
            g_loss = F.softplus(-d(x_fake)).mean()
            return d_loss, g_loss""",
    },
}

MM_RIGHT = {  # loss_minimax, correct
    "d_loss of loss_nonsaturating, logsigmoid": """
        d_loss, _ = loss_nonsaturating(g, d, x_real, device=device)
        g_loss = F.logsigmoid(-d(g(z))).mean()
        return d_loss, g_loss""",
    "minus BCE with logits against label 0": """
        x_fake = g(z)
        h_real, h_fake = d(x_real), d(x_fake)
        d_loss = (F.binary_cross_entropy_with_logits(h_real, torch.ones_like(h_real))
                  + F.binary_cross_entropy_with_logits(d(x_fake.detach()), torch.zeros_like(h_fake)))
        g_loss = -F.binary_cross_entropy_with_logits(h_fake, torch.zeros_like(h_fake))
        return d_loss, g_loss""",
}
MM_WRONG = {
    "g_loss sign flipped": with_g_loss("F.softplus(d(x_fake)).mean()"),
    "the non-saturating g_loss instead": with_g_loss("F.softplus(-d(x_fake)).mean()"),
    "minus the non-saturating g_loss": with_g_loss("-F.softplus(-d(x_fake)).mean()"),
    "log of 1 - probability": with_g_loss("torch.log(1 - torch.sigmoid(d(x_fake))).mean()"),
    "log1p(-sigmoid(h))": with_g_loss("torch.log1p(-torch.sigmoid(d(x_fake))).mean()"),
    "the fakes detached for g_loss": with_g_loss("-F.softplus(d(x_fake.detach())).mean()"),
    "g_loss summed over the batch": with_g_loss("-F.softplus(d(x_fake)).sum()"),
    "real and fake swapped in d_loss": """
        x_fake = g(z)
        d_loss = F.softplus(-d(x_fake.detach())).mean() + F.softplus(d(x_real)).mean()
        g_loss = -F.softplus(d(x_fake)).mean()
        return d_loss, g_loss""",
    "d_loss detached": """
        x_fake = g(z)
        d_loss = (F.softplus(-d(x_real)).mean() + F.softplus(d(x_fake.detach())).mean()).detach()
        g_loss = -F.softplus(d(x_fake)).mean()
        return d_loss, g_loss""",
    "uniform noise (torch.rand)": f"""
        z = torch.rand(x_real.shape[0], g.dim_z, device=device)
        x_fake = g(z)
        {D_LOSS}
        g_loss = -F.softplus(d(x_fake)).mean()
        return d_loss, g_loss""",
    "the same noise at every call (generator reseeded)": f"""
        torch.manual_seed(0)
        z = torch.randn(x_real.shape[0], g.dim_z, device=device)
        x_fake = g(z)
        {D_LOSS}
        g_loss = -F.softplus(d(x_fake)).mean()
        return d_loss, g_loss""",
}

NS_TESTS = ["test_loss_nonsaturating", "test_loss_nonsaturating_gradients", "test_loss_nonsaturating_stable"]
PLANTED = {
    "test_identities": {**own_solution(AID, "identities"), **IDENTITIES},
    "test_loss_derivatives": {**own_solution(AID, "loss_derivatives"), **DERIVATIVES},
    **{test: {**own_solution(AID, "loss_nonsaturating"),
              **{name: (True, loss_cell("loss_nonsaturating", body)) for name, body in NS_RIGHT.items()},
              **{name: (False, loss_cell("loss_nonsaturating", body)) for name, body in NS_WRONG[test].items()}}
       for test in NS_TESTS},
    "test_loss_minimax": {**own_solution(AID, "loss_minimax"),
                          **{name: (True, loss_cell("loss_minimax", body)) for name, body in MM_RIGHT.items()},
                          **{name: (False, loss_cell("loss_minimax", body)) for name, body in MM_WRONG.items()}},
}


@pytest.mark.parametrize("test, right, answer", params(PLANTED))
def test_planted(solution, test, right, answer):
    assert_graded(AID, solution, test, answer, right)


def test_planted_submission_through_nbgrader(grade_planted):
    """One real release + autograde: mistakes in independent cells lose exactly their cells."""
    overrides = {
        "identities": PLANTED["test_identities"]["a wrong step"][1],
        "loss_nonsaturating": PLANTED["test_loss_nonsaturating_gradients"]["the fakes detached for g_loss too"][1],
        "loss_minimax": PLANTED["test_loss_minimax"]["d_loss of loss_nonsaturating, logsigmoid"][1],
    }
    score, cells = grade_planted(AID, "planted05", overrides)
    points = {grade_id(c): points_of(c) for c in nbformat.read(REPO / "notebooks" / AID / f"{AID}.ipynb", as_version=4).cells
              if is_test_cell(c)}
    lost = {gid for gid, pts in points.items() if cells[gid] != pts}
    assert lost == {"test_identities", "test_loss_nonsaturating_gradients"}, cells
    assert score.auto == score.auto_max - points["test_identities"] - points["test_loss_nonsaturating_gradients"]


def test_given_code_and_text_do_not_hold_the_generator_losses():
    """#26: the loss plot once drew -softplus(xi) and softplus(-xi) (the two generator losses) and the
    text gave both softplus forms: the plot now calls the student's functions, the text neither form."""
    nb = nbformat.read(REPO / "notebooks" / AID / f"{AID}.ipynb", as_version=4)
    given = [c.source for c in nb.cells if c.cell_type == "code" and not is_test_cell(c)
             and not c.metadata.get("nbgrader", {}).get("solution")]
    assert not [s for s in given if "softplus" in s or "logsigmoid" in s], "given code computes a loss from the logit"
    plot = next(c.source for c in nb.cells if grade_id(c) == "plot-losses")
    assert "loss_minimax" in plot and "loss_nonsaturating" in plot
    text = "".join(c.source for c in nb.cells if c.cell_type == "markdown"
                   and not c.metadata.get("nbgrader", {}).get("solution")).replace(" ", "")
    assert "=-\\operatorname{softplus}" not in text, "the text states a softplus form of a loss"
    assert "slope$-1$" not in text and "slope-1" not in text, "the text states dloss_ns's limit"


def test_the_loss_plot_draws_the_students_losses(solution):
    """The per-sample curves come from the notebook's loss_minimax and loss_nonsaturating."""
    ns = dict(solution)
    exec(compile(next(c.source for c in nbformat.read(REPO / "notebooks" / AID / f"{AID}.ipynb", as_version=4).cells
                      if grade_id(c) == "plot-losses"), "plot-losses", "exec"), ns)
    xi = ns["logits"]
    assert ns["curves"]["your loss_minimax"] == pytest.approx((-F.softplus(xi)).tolist(), abs=1e-5)
    assert ns["curves"]["your loss_nonsaturating"] == pytest.approx(F.softplus(-xi).tolist(), abs=1e-5)
