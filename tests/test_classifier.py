"""The course classifier (helpers.classifier): accurate enough, trained once and cached."""
from __future__ import annotations

import pytest
import torch

from helpers import classifier, data, metrics


@pytest.fixture(scope="module")
def fashion_classifier(one_thread) -> classifier.LeNet:
    """The cached Fashion-MNIST classifier (trained here, ~30 s, if the cache is empty)."""
    return classifier.load("fashion", verbose=False)


def test_accuracy_on_the_test_split(fashion_classifier):
    x, y = data.load("fashion", "test")
    assert classifier.accuracy(fashion_classifier, x, y) > 0.85


def test_features_shape_and_batching(fashion_classifier):
    x, _ = data.fixed_test_subset("fashion")
    f = classifier.features(fashion_classifier, x, batch_size=33)
    assert f.shape == (100, classifier.FEATURES) and not f.requires_grad
    assert torch.allclose(f, classifier.features(fashion_classifier, x.reshape(-1, 1, 28, 28)), atol=1e-5)
    assert (f >= 0).all() and f.std(0).gt(0).sum() > classifier.FEATURES // 2, "features are dead"


def test_features_tell_classes_apart(fashion_classifier):
    # two halves of the same class are closer than two different classes
    x, y = data.load("fashion", "test")
    shirts, boots = x[y == 0], x[y == 9]
    same = metrics.classifier_frechet(shirts[:400], shirts[400:800], fashion_classifier)
    other = metrics.classifier_frechet(shirts[:400], boots[:400], fashion_classifier)
    assert same * 5 < other


def test_trained_once_then_read_from_the_cache(tmp_path, monkeypatch):
    calls = []

    def fake_train(name, **kwargs):
        calls.append(name)
        torch.manual_seed(len(calls))
        return classifier.LeNet().eval()

    monkeypatch.setattr(classifier, "train", fake_train)
    first = classifier.load("mnist", cache_dir=tmp_path, verbose=False)
    assert calls == ["mnist"] and classifier.cache_path("mnist", tmp_path).is_file()
    second = classifier.load("mnist", cache_dir=tmp_path, verbose=False)
    assert calls == ["mnist"], "a cached classifier must not be trained again"
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    assert not list(tmp_path.glob("*.part")), "no temporary file is left behind"
    with pytest.raises(ValueError):
        classifier.load("cifar", cache_dir=tmp_path)


def test_trained_by_the_course_trainer(monkeypatch, one_thread):
    """classifier.train is train.Trainer on (images, labels) with a cross-entropy loss, no loop of its own."""
    from helpers import train

    x, y = data.load("mnist", "train")
    monkeypatch.setattr(data, "load", lambda name, split: (x[:3000], y[:3000]))
    fits, fit = [], train.Trainer.fit
    monkeypatch.setattr(train.Trainer, "fit", lambda self, *args, **kw: fits.append(args) or fit(self, *args, **kw))
    model = classifier.train("mnist", epochs=2)
    assert len(fits) == 1 and not model.training
    assert classifier.accuracy(model, x[3000:5000], y[3000:5000]) > 0.8


def test_default_cache_is_under_the_data_folder():
    assert classifier.cache_path("fashion") == data.data_root() / "classifiers" / "lenet_fashion.pt"
