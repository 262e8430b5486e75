"""helpers.train.checkpointed: train and save; reuse saved weights only when asked and never
under grading; a checkpoint of another architecture is reported and the model retrained."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from helpers import train


class Fit:
    """A stand-in for a training run: sets every weight to ``value`` and counts its calls."""

    def __init__(self, value: float):
        self.value, self.calls = value, 0

    def __call__(self, model: nn.Module) -> None:
        self.calls += 1
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(self.value)


def weights(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.fixture(autouse=True)
def student_run(monkeypatch):
    """A student's run: neither nbgrader's nor the reuse variable is set unless a test sets it."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv(train.REUSE_ENV, raising=False)


def test_trains_and_saves_the_trained_weights(tmp_path):
    path = tmp_path / "results" / "net.pt"
    fit, model = Fit(0.5), nn.Linear(3, 2)
    model.train()
    assert train.checkpointed(model, path, fit) is model
    assert fit.calls == 1 and not model.training
    saved = torch.load(path, weights_only=True)
    assert torch.equal(saved["weight"], torch.full((2, 3), 0.5))
    assert torch.equal(saved["bias"], torch.full((2,), 0.5))


def test_without_reuse_a_saved_checkpoint_is_retrained_and_replaced(tmp_path):
    path = tmp_path / "net.pt"
    train.checkpointed(nn.Linear(3, 2), path, Fit(0.5))
    fit, model = Fit(2.0), nn.Linear(3, 2)
    train.checkpointed(model, path, fit)
    assert fit.calls == 1 and torch.all(weights(model) == 2.0)
    assert torch.all(torch.load(path, weights_only=True)["weight"] == 2.0)


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_reuse_loads_the_saved_weights_instead_of_fitting(tmp_path, monkeypatch, capsys, how):
    path = tmp_path / "net.pt"
    train.checkpointed(nn.Linear(3, 2), path, Fit(0.5))
    if how == "environment":
        monkeypatch.setenv(train.REUSE_ENV, "1")
    fit, model = Fit(2.0), nn.Linear(3, 2)
    model.train()
    train.checkpointed(model, path, fit, reuse=True if how == "argument" else None)
    assert fit.calls == 0, "reuse must not train"
    assert torch.all(weights(model) == 0.5) and not model.training
    assert "loaded saved weights" in capsys.readouterr().out


def test_reuse_is_off_when_the_variable_is_zero_or_the_argument_false(tmp_path, monkeypatch):
    path = tmp_path / "net.pt"
    train.checkpointed(nn.Linear(3, 2), path, Fit(0.5))
    monkeypatch.setenv(train.REUSE_ENV, "0")
    fit = Fit(2.0)
    train.checkpointed(nn.Linear(3, 2), path, fit)
    monkeypatch.setenv(train.REUSE_ENV, "1")
    train.checkpointed(nn.Linear(3, 2), path, fit, reuse=False)
    assert fit.calls == 2


def test_reuse_without_a_checkpoint_trains_and_saves(tmp_path, monkeypatch):
    monkeypatch.setenv(train.REUSE_ENV, "1")
    path, fit = tmp_path / "new" / "net.pt", Fit(0.5)
    train.checkpointed(nn.Linear(3, 2), path, fit)
    assert fit.calls == 1 and path.is_file()


@pytest.mark.parametrize("mode", ["autograde", "validate"])
def test_grading_never_loads_a_checkpoint(tmp_path, monkeypatch, mode):
    """A grade is earned by training: a weights file left in a submission is ignored, and the
    run still saves its own weights (what a later student run with reuse picks up)."""
    path = tmp_path / "net.pt"
    train.checkpointed(nn.Linear(3, 2), path, Fit(0.5))
    monkeypatch.setenv("NBGRADER_EXECUTION", mode)
    monkeypatch.setenv(train.REUSE_ENV, "1")
    fit, model = Fit(2.0), nn.Linear(3, 2)
    train.checkpointed(model, path, fit, reuse=True)
    assert fit.calls == 1 and torch.all(weights(model) == 2.0)
    assert torch.all(torch.load(path, weights_only=True)["weight"] == 2.0)


@pytest.mark.parametrize("other", [nn.Linear(3, 4), nn.Sequential(nn.Linear(3, 2))], ids=["shape", "names"])
def test_a_checkpoint_of_another_architecture_is_reported_and_retrained(tmp_path, capsys, other):
    path = tmp_path / "net.pt"
    train.checkpointed(other, path, Fit(0.5))
    fit, model = Fit(2.0), nn.Linear(3, 2)
    train.checkpointed(model, path, fit, reuse=True)
    out = capsys.readouterr().out
    assert "cannot be loaded into this model" in out and str(path) in out
    assert fit.calls == 1 and torch.all(weights(model) == 2.0)
    assert torch.load(path, weights_only=True)["weight"].shape == (2, 3), "the new weights replace the old"


@pytest.mark.parametrize("cut", [0, 0.5], ids=["empty", "truncated"])
def test_a_damaged_checkpoint_is_reported_and_retrained(tmp_path, capsys, cut):
    """A run killed while saving leaves an empty or truncated file: reuse must train anew."""
    path = tmp_path / "net.pt"
    train.checkpointed(nn.Linear(3, 2), path, Fit(0.5))
    path.write_bytes(path.read_bytes()[:int(cut * path.stat().st_size)])
    fit = Fit(2.0)
    train.checkpointed(nn.Linear(3, 2), path, fit, reuse=True)
    assert fit.calls == 1 and "cannot be loaded into this model" in capsys.readouterr().out
    assert torch.all(torch.load(path, weights_only=True)["weight"] == 2.0)
