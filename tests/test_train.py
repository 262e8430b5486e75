"""helpers.train: schedules, the VAE loop's history, the Trainer's best checkpoint, results folders."""
from __future__ import annotations

import csv

import pytest
import torch
from torch import nn

from helpers import train


def test_warmup_stable_decay():
    f = train.warmup_stable_decay
    assert f(0, 1000, warmup=10) == pytest.approx(0.1)
    assert f(9, 1000, warmup=10) == 1.0
    assert f(699, 1000, warmup=10) == 1.0 and f(700, 1000, warmup=10) == 1.0, "flat until the last 30 %"
    assert f(850, 1000, warmup=10) == pytest.approx(0.5)
    assert 0 < f(999, 1000, warmup=10) < 0.01
    values = [f(s, 1000, 10) for s in range(10, 1000)]
    assert all(a >= b for a, b in zip(values, values[1:])), "never rising after the warm-up"
    assert f(50, 100, warmup=10, decay=1.0) == pytest.approx(0.5), "decay=1: linear from the warm-up on"


def test_run_name():
    assert train.run_name("AE", "ae(512)", 1e-3, 100) == "AE-arch=ae(512)-lr=0.001-ep=100"
    assert train.run_name("AE", "vae(512)", 3e-4, 5) == "AE-arch=vae(512)-lr=0.0003-ep=5"


class Quadratic(nn.Module):
    """loss(x) = mean squared distance of x's rows to a learnt centre; the optimum is x's mean."""

    def __init__(self, dim: int = 3):
        super().__init__()
        self.centre = nn.Parameter(torch.zeros(dim))

    def loss(self, x):
        return ((x - self.centre) ** 2).sum(-1).mean()


def test_train_vae_history_and_binarization():
    torch.manual_seed(0)
    x = torch.full((500, 3), 0.75)  # every batch is binarized: the centre goes to 0.75, not to 1 or 0
    model = Quadratic()
    hist = train.train_vae(model, x, iterations=300, batch_size=50, lr=0.05, warmup=10,
                           evaluate=lambda m: m.centre.mean().item(), eval_every=100, progress=False)
    assert [r["iteration"] for r in hist] == [100, 200, 300]
    assert all(r["seconds"] > 0 for r in hist) and hist[0]["seconds"] < hist[-1]["seconds"]
    assert hist[-1]["value"] == pytest.approx(0.75, abs=0.05)
    assert hist[-1]["loss"] < hist[0]["loss"] + 0.1
    assert not model.training


def test_train_vae_refuses_fewer_images_than_a_batch():
    # every step takes a full batch: with fewer images there would be none, and no end
    with pytest.raises(ValueError, match="at least batch_size=128 images, got 100"):
        train.train_vae(Quadratic(), torch.rand(100, 3), iterations=10, progress=False)


def test_adam_is_fused_on_cpu_and_steps_like_plain_adam():
    torch.manual_seed(0)
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    b.bias.requires_grad_(False)
    opt_a = train.adam(a, 1e-2)
    assert opt_a.defaults["fused"] is True
    assert len(train.adam(b, 1e-2).param_groups[0]["params"]) == 1  # frozen parameters are left out
    plain = torch.optim.Adam(b.parameters(), lr=1e-2, foreach=False)
    b.bias.requires_grad_(True)
    x = torch.randn(8, 4)
    for _ in range(3):
        for model, opt in ((a, opt_a), (b, plain)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    assert torch.allclose(a.weight, b.weight, atol=1e-6) and torch.allclose(a.bias, b.bias, atol=1e-6)


def test_trainer_keeps_the_best_epoch(tmp_path):
    torch.manual_seed(0)
    model = Quadratic()
    x_train = torch.randn(400, 3) + 2.0
    x_val = torch.full((50, 3), 0.3)  # training moves away from the validation optimum after epoch 1
    trainer = train.Trainer(model, lr=0.1, batch_size=100, checkpoint=tmp_path / "best.pt")
    hist = trainer.fit(x_train, x_val, epochs=4, progress=False)
    vals = [r["val_loss"] for r in hist]
    best = min(range(4), key=vals.__getitem__) + 1
    assert trainer.best_epoch == best
    assert trainer.evaluate(x_val) == pytest.approx(min(vals), rel=1e-6), "the model holds the best weights"
    assert torch.equal(torch.load(tmp_path / "best.pt")["centre"], model.centre.detach())
    last = train.Trainer(Quadratic(), lr=0.1, batch_size=100, keep_best=False)
    last.fit(x_train, x_val, epochs=4, progress=False)
    assert last.evaluate(x_val) == pytest.approx(last.history[-1]["val_loss"], rel=1e-6)


def test_trainer_batches_tensors_together():
    """(images, labels) as data.batches takes them: pairs stay together, loss_fn(model, x, y),
    the transform touches the first tensor only; without a validation set the last weights stay."""
    torch.manual_seed(0)
    y = torch.randint(0, 10, (400,))
    x = y[:, None].float().expand(400, 3) + 2.0  # x - y = 2 on every row: a loss of 0 if rows stay paired
    seen = []

    def loss_fn(model, xb, yb):
        seen.append(yb.dtype)
        return ((xb - yb[:, None] - model.centre) ** 2).sum(-1).mean()

    trainer = train.Trainer(Quadratic(), lr=0.1, batch_size=64, loss_fn=loss_fn, transform=lambda t: t + 1.0,
                            generator=torch.Generator().manual_seed(0))
    hist = trainer.fit((x, y), None, epochs=40, progress=False)
    assert set(seen) == {torch.int64} and "val_loss" not in hist[-1] and trainer.best_state is None
    assert torch.allclose(trainer.model.centre, torch.full((3,), 3.0), atol=0.02), "trained on x + 1, paired with y"
    assert hist[-1]["train_loss"] < 1e-3
    assert trainer.evaluate((x, y)) == pytest.approx(3.0, abs=0.1), "no transform when evaluating"
    best = train.Trainer(Quadratic(), lr=0.1, batch_size=64, loss_fn=loss_fn)
    best.fit((x, y), (x[:50], y[:50]), epochs=2, progress=False)
    assert best.best_epoch in (1, 2) and best.history[-1]["val_loss"] >= best.best_loss


def test_results_folder(tmp_path):
    model = nn.Sequential(nn.Linear(784, 784), nn.Sigmoid())
    folder = train.ResultsFolder(tmp_path / "run", reconstruct=model, sample=lambda n: torch.rand(n, 784),
                                 x_show=torch.rand(10, 784))
    for epoch in (1, 2):
        folder({"epoch": epoch, "train_loss": 3.0 / epoch, "val_loss": 4.0 / epoch})
    assert {p.name for p in (tmp_path / "run").iterdir()} == {  # epochs from 0, as in Project 3
        "perf_metrics.csv", "reconstruction_0.png", "reconstruction_1.png", "sample_0.png", "sample_1.png",
        "loss_curves.png"}
    with open(tmp_path / "run" / "perf_metrics.csv") as f:
        assert list(csv.reader(f))[0] == ["epoch", "train_loss", "test_loss"]
    assert folder.metrics()[1] == {"epoch": 1, "train_loss": 1.5, "test_loss": 2.0}


def test_evaluate_lower_bound_is_seeded():
    class Fake(nn.Module):
        def negative_elbo_bound(self, x):
            rec = x.sum(-1).mean() + torch.randn(())
            return rec + 1.0, torch.tensor(1.0), rec

    x = torch.rand(20, 784)
    a = train.evaluate_lower_bound(Fake(), x, repeat=10, seed=3)
    b = train.evaluate_lower_bound(Fake(), x, repeat=10, seed=3)
    assert a == b and a[0] == pytest.approx(a[1] + a[2])


def test_evaluate_lower_bound_leaves_the_global_random_state_alone():
    """Evaluating in the middle of training must not reset the noise the training draws."""
    class Fake(nn.Module):
        def negative_elbo_bound(self, x):
            return torch.randn(()), torch.randn(()), torch.randn(())

    x = torch.rand(4, 784)
    torch.manual_seed(7)
    expected = torch.rand(5)
    torch.manual_seed(7)
    train.evaluate_lower_bound(Fake(), x, repeat=3)
    assert torch.equal(torch.rand(5), expected)
