"""Notebook 03 (latent manifolds): its tests tell right from wrong; its sliders decode live.

In-process, as in tests/test_vae.py: a test cell of the source notebook (hidden tests
included) runs in the reference namespace with one solution cell replaced by a planted
mistake (the cell must raise) or by another correct implementation (it must pass). The
widget callbacks of ``helpers.widgets`` are called without a browser, and the notebook's
slider cells are run under and outside grading.
"""
from __future__ import annotations

import io
import shutil

import ipywidgets
import numpy as np
import pytest
import torch
from PIL import Image

from autograder.course.solutions import cell_source, load_solution
from planted import Table, answers, assert_graded, own_solution, params, stderr_of
from helpers import widgets

AID = "03_latent_manifolds"
UNTIL = "models"  # the `solution` fixture (conftest): the notebook up to this cell


SWEEP = "import numpy as np\ndef latent_sweep(lo, hi, step):\n    {}\n"
COUNT = "n = round((hi - lo) / step) + 1\n    "
SWEEPS = answers(SWEEP, {
    "lo + i * step": (True, COUNT + "return (lo + step * torch.arange(n)).reshape(n, 1).float()"),
    "indices in float64, then float32": (True, COUNT + "return (torch.arange(n, dtype=torch.float64) * step + lo).float().unsqueeze(1)"),
    "arange to hi + step / 2": (True, "return torch.arange(lo, hi + step / 2, step).reshape(-1, 1)"),
    "numpy linspace": (True, COUNT + "return torch.from_numpy(np.linspace(lo, hi, n)).float().reshape(n, 1)"),
    "python list": (True, COUNT + "return torch.tensor([[lo + i * step] for i in range(n)])"),
    "arange excludes hi": (False, "return torch.arange(lo, hi, step).reshape(-1, 1)"),
    "arange to hi + step (float drift in the count)": (False, "return torch.arange(lo, hi + step, step).reshape(-1, 1)"),
    "count truncated with int()": (False, "n = int((hi - lo) / step) + 1\n    return torch.linspace(lo, hi, n).reshape(n, 1)"),
    "one point short": (False, "n = round((hi - lo) / step)\n    return torch.linspace(lo, hi, n).reshape(n, 1)"),
    "reversed (hi down to lo)": (False, COUNT + "return torch.linspace(hi, lo, n).reshape(n, 1)"),
    "flat (n,) instead of (n, 1)": (False, COUNT + "return torch.linspace(lo, hi, n)"),
    "(1, n) instead of (n, 1)": (False, COUNT + "return torch.linspace(lo, hi, n).reshape(1, n)"),
    "float64": (False, COUNT + "return torch.linspace(lo, hi, n, dtype=torch.float64).reshape(n, 1)"),
    "a numpy array": (False, COUNT + "return np.linspace(lo, hi, n, dtype=np.float32).reshape(n, 1)"),
    "a list of lists": (False, COUNT + "return [[lo + i * step] for i in range(n)]"),
})


GRID = "def latent_grid(xs, ys):\n    {}\n"
GRIDS = answers(GRID, {
    "loops": (True, "return torch.stack([torch.stack([x, y]) for y in ys.flip(0) for x in xs])"),
    "repeat": (True, "return torch.stack([xs.repeat(len(ys)), ys.flip(0).repeat_interleave(len(xs))], dim=1)"),
    "cartesian_prod": (True, "return torch.cartesian_prod(ys.flip(0), xs).reshape(-1, 2)[:, [1, 0]]"),
    "meshgrid xy": (True, "z1, z2 = torch.meshgrid(xs, ys.flip(0), indexing='xy')\n"
                          "    return torch.stack([z1, z2], -1).reshape(-1, 2)"),
    "broadcast with expand, ys sorted descending": (True, (
        "top_down = ys.sort(descending=True).values\n"
        "    z1, z2 = xs.expand(len(ys), len(xs)), top_down.unsqueeze(1).expand(len(ys), len(xs))\n"
        "    return torch.stack([z1, z2], -1).reshape(-1, 2)")),
    "z2 grows downward": (False, "z2, z1 = torch.meshgrid(ys, xs, indexing='ij')\n"
                                 "    return torch.stack([z1, z2], -1).reshape(-1, 2)"),
    "rows and columns swapped (column-major)": (False, "z1, z2 = torch.meshgrid(xs, ys.flip(0), indexing='ij')\n"
                                                       "    return torch.stack([z1, z2], -1).reshape(-1, 2)"),
    "coordinates swapped": (False, "z2, z1 = torch.meshgrid(ys.flip(0), xs, indexing='ij')\n"
                                   "    return torch.stack([z2, z1], -1).reshape(-1, 2)"),
    "z1 grows to the left": (False, "z2, z1 = torch.meshgrid(ys.flip(0), xs.flip(0), indexing='ij')\n"
                                    "    return torch.stack([z1, z2], -1).reshape(-1, 2)"),
    "the whole list reversed (z1 decreasing too)": (False, "z2, z1 = torch.meshgrid(ys, xs, indexing='ij')\n"
                                                           "    return torch.stack([z1, z2], -1).reshape(-1, 2).flip(0)"),
    "itertools.product(xs, ys)": (False, "import itertools\n"
                                         "    return torch.tensor([[x, y] for x, y in itertools.product(xs.tolist(), ys.flip(0).tolist())])"),
    "(rows, cols, 2), not flattened": (False, "z2, z1 = torch.meshgrid(ys.flip(0), xs, indexing='ij')\n"
                                              "    return torch.stack([z1, z2], -1)"),
    "float32 whatever xs": (False, "z2, z1 = torch.meshgrid(ys.flip(0), xs, indexing='ij')\n"
                                   "    return torch.stack([z1, z2], -1).reshape(-1, 2).float()"),
})


PERCENTILE = "def percentile_grid(n):\n    {}\n"
MIDPOINTS = "p = (torch.arange(n) + 0.5) / n\n    "
PERCENTILES = answers(PERCENTILE, {
    "torch.special.ndtri": (True, MIDPOINTS + "return torch.special.ndtri(p)"),
    "erfinv in float64": (True, "p = (torch.arange(n, dtype=torch.float64) + 0.5) / n\n"
                                "    return (2 ** 0.5 * torch.erfinv(2 * p - 1)).float()"),
    "statistics.NormalDist": (True, "from statistics import NormalDist\n"
                                    "    return torch.tensor([NormalDist().inv_cdf((i + 0.5) / n) for i in range(n)])"),
    "linspace of midpoints": (True, "return Normal(0.0, 1.0).icdf(torch.linspace(0.5 / n, 1 - 0.5 / n, n))"),
    "probabilities 0 and 1 included (icdf = -inf, inf)": (False, "return Normal(0.0, 1.0).icdf(torch.linspace(0, 1, n))"),
    "i / n (icdf(0) = -inf)": (False, "return Normal(0.0, 1.0).icdf(torch.arange(n) / n)"),
    "clamped away from 0 and 1": (False, "return Normal(0.0, 1.0).icdf(torch.linspace(0, 1, n).clamp(1e-3, 1 - 1e-3))"),
    "(i + 1) / (n + 1)": (False, "return Normal(0.0, 1.0).icdf((torch.arange(n) + 1) / (n + 1))"),
    "erfinv without its scaling": (False, MIDPOINTS + "return torch.erfinv(p)"),
    "erfinv without sqrt 2": (False, MIDPOINTS + "return torch.erfinv(2 * p - 1)"),
    "the probabilities, not the quantiles": (False, MIDPOINTS + "return p"),
    "cdf instead of icdf": (False, MIDPOINTS + "return Normal(0.0, 1.0).cdf(p)"),
    "descending (1 - p)": (False, MIDPOINTS + "return Normal(0.0, 1.0).icdf(1 - p)"),
    "(n, 1) instead of (n,)": (False, MIDPOINTS + "return Normal(0.0, 1.0).icdf(p).reshape(n, 1)"),
    "float64": (False, "return Normal(0.0, 1.0).icdf((torch.arange(n, dtype=torch.float64) + 0.5) / n)"),
})


INTERPOLATE = "def interpolate(z0, z1, n):\n    {}\n"
SLERP = """t = torch.linspace(0, 1, n).unsqueeze(1)
    omega = torch.arccos(((z0 / z0.norm()) @ (z1 / z1.norm())).clamp(-1, 1))
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)"""
INTERPOLATES = answers(INTERPOLATE, {
    "torch.lerp": (True, "return torch.lerp(z0, z1, torch.linspace(0, 1, n).unsqueeze(1))"),
    "z0 + t (z1 - z0)": (True, "return z0 + (torch.arange(n) / (n - 1)).unsqueeze(1) * (z1 - z0)"),
    "list of rows": (True, "return torch.stack([z0 + k / (n - 1) * (z1 - z0) for k in range(n)])"),
    "torch.outer": (True, "return z0 + torch.outer(torch.linspace(0, 1, n), z1 - z0)"),
    "float64 inside, z0's dtype out": (True, "t = torch.linspace(0, 1, n, dtype=torch.float64).unsqueeze(1)\n"
                                             "    return ((1 - t) * z0.double() + t * z1.double()).to(z0.dtype)"),
    "misses z1 (t = k / n)": (False, "return z0 + (torch.arange(n) / n).unsqueeze(1) * (z1 - z0)"),
    "integer division in t": (False, "return z0 + (torch.arange(n) // (n - 1)).unsqueeze(1) * (z1 - z0)"),
    "n - 1 points": (False, "t = torch.linspace(0, 1, n - 1).unsqueeze(1)\n    return (1 - t) * z0 + t * z1"),
    "n + 1 points": (False, "t = torch.linspace(0, 1, n + 1).unsqueeze(1)\n    return (1 - t) * z0 + t * z1"),
    "from z1 to z0": (False, "t = torch.linspace(0, 1, n).unsqueeze(1)\n    return t * z0 + (1 - t) * z1"),
    "direction reversed (z0 + t (z0 - z1))": (False, "return z0 + torch.linspace(0, 1, n).unsqueeze(1) * (z0 - z1)"),
    "spherical (slerp)": (False, SLERP),
    "transposed (dim, n)": (False, "t = torch.linspace(0, 1, n).unsqueeze(1)\n    return ((1 - t) * z0 + t * z1).T"),
    "(n, 1, dim)": (False, "t = torch.linspace(0, 1, n)[:, None, None]\n    return (1 - t) * z0 + t * z1"),
    "float64 out": (False, "t = torch.linspace(0, 1, n, dtype=torch.float64).unsqueeze(1)\n    return (1 - t) * z0 + t * z1"),
    "z1 - z0 computed in place in z1": (False, "z1 -= z0\n    return z0 + torch.linspace(0, 1, n).unsqueeze(1) * z1"),
})


REC = "def reconstruction_term(model, x, m, v):\n    {}\n"
SAMPLE = "z = m + v.sqrt() * torch.randn_like(m)\n    "
NLL = "return -Bernoulli(logits=model.dec.decode(z)).log_prob(x).sum(-1).mean()"
RECS = answers(REC, {
    "binary_cross_entropy_with_logits": (True, SAMPLE + "return torch.nn.functional.binary_cross_entropy_with_logits("
                                                        "model.dec.decode(z), x, reduction='sum') / len(x)"),
    "Normal.rsample": (True, "z = Normal(m, v.sqrt()).rsample()\n    " + NLL),
    "standard deviation through exp(log v / 2)": (True, "z = m + torch.exp(0.5 * v.log()) * torch.randn_like(m)\n    " + NLL),
    "logsigmoid by hand": (True, SAMPLE + "logits = model.dec.decode(z)\n"
                                          "    F = torch.nn.functional\n"
                                          "    return -(x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).sum(-1).mean()"),
    # shortcuts through the notebook's given code (the models cell): they must not earn the points
    "the given bound's rec term": (False, "return VAE.negative_elbo_bound(model, x)[2]"),
    "the given autoencoder's loss": (False, "return AE.loss(model, x)"),
    "the given bound's NELBO": (False, "return VAE.negative_elbo_bound(model, x)[0]"),
    # mistakes
    "KL still in": (False, SAMPLE + "kl = kl_divergence(Normal(m, v.sqrt()), Normal(0.0, 1.0)).sum(-1).mean()\n"
                                    "    return kl - Bernoulli(logits=model.dec.decode(z)).log_prob(x).sum(-1).mean()"),
    "encodes x again instead of using m and v": (False, "m, v = model.enc.encode(x)\n    " + SAMPLE + NLL),
    "decodes the mean (an autoencoder)": (False, "z = m\n    " + NLL),
    "decodes a sample of the prior, not of q": (False, "z = torch.randn_like(m)\n    " + NLL),
    "detached sample": (False, SAMPLE + "return -Bernoulli(logits=model.dec.decode(z.detach())).log_prob(x).sum(-1).mean()"),
    "same noise every call (reseeded)": (False, "z = m + v.sqrt() * torch.randn(m.shape, generator=torch.Generator().manual_seed(0))\n"
                                                "    " + NLL),
    "v as standard deviation": (False, "z = m + v * torch.randn_like(m)\n    " + NLL),
    "v as log-variance": (False, "z = m + torch.exp(0.5 * v) * torch.randn_like(m)\n    " + NLL),
    "uniform noise": (False, "z = m + v.sqrt() * torch.rand_like(m)\n    " + NLL),
    "probabilities passed as logits": (False, SAMPLE + "return -Bernoulli(logits=torch.sigmoid(model.dec.decode(z))).log_prob(x).sum(-1).mean()"),
    "sum over the batch": (False, SAMPLE + "return -Bernoulli(logits=model.dec.decode(z)).log_prob(x).sum()"),
    "mean over pixels": (False, SAMPLE + "return -Bernoulli(logits=model.dec.decode(z)).log_prob(x).mean()"),
    "per image (batch,), not averaged": (False, SAMPLE + "return -Bernoulli(logits=model.dec.decode(z)).log_prob(x).sum(-1)"),
    "log-likelihood instead of its negative": (False, SAMPLE + "return Bernoulli(logits=model.dec.decode(z)).log_prob(x).sum(-1).mean()"),
    "under torch.no_grad()": (False, "with torch.no_grad():\n        " + SAMPLE.replace("\n    ", "\n        ") + NLL),
    "the whole tuple": (False, SAMPLE + "rec = -Bernoulli(logits=model.dec.decode(z)).log_prob(x).sum(-1).mean()\n"
                                        "    return rec, {'rec': rec}"),
})


PLANTED: Table = {
    "test_latent_sweep": {**own_solution(AID, "latent_sweep"), **SWEEPS},
    "test_latent_grid": {**own_solution(AID, "latent_grid"), **GRIDS},
    "test_percentile_grid": {**own_solution(AID, "percentile_grid"), **PERCENTILES},
    "test_interpolate": {**own_solution(AID, "interpolate"), **INTERPOLATES},
    "test_reconstruction_only": {**own_solution(AID, "reconstruction_only"), **RECS},
}


@pytest.mark.parametrize("test, right, answer", params(PLANTED))
def test_planted(solution, test, right, answer):
    """Each test cell keeps the points of correct answers and takes those of mistakes."""
    assert_graded(AID, solution, test, answer, right)


def test_reference_test_cells_write_nothing_to_stderr(solution):
    """nbgrader gives 0 to a test cell with stderr output: no warnings, no progress bars."""
    ns = dict(solution)
    for cases in PLANTED.values():
        exec(compile(cases["the notebook's solution"][1], "<reference>", "exec"), ns)
    for gid in PLANTED:
        assert stderr_of(AID, ns, gid) == "", gid


# --- widgets: the pure callback, the views, and the notebook's slider cells -----------------

class Recorder:
    """A decoder that records its inputs and returns an image that depends on z (and y)."""

    def __init__(self):
        self.calls: list[tuple[torch.Tensor, torch.Tensor | None]] = []

    def __call__(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        self.calls.append((z.clone(), None if y is None else y.clone()))
        level = torch.sigmoid(z.sum(-1, keepdim=True) + (0 if y is None else y.float().unsqueeze(-1)))
        ramp = torch.linspace(0, 1, 784)  # pixel (r, c) = (r * 28 + c) / 783: shows orientation
        return (level * ramp).reshape(len(z), 784)


def pixels(png: bytes) -> torch.Tensor:
    img = Image.open(io.BytesIO(png))
    assert img.format == "PNG" and img.mode == "L"
    return torch.from_numpy(np.asarray(img, dtype=np.float32))


def test_render_decodes_one_code_into_a_png():
    decode = Recorder()
    png = widgets.render(decode, [0.5, -1.0], scale=3)
    (z, y), = decode.calls
    assert z.shape == (1, 2) and z.dtype == torch.float32 and torch.equal(z, torch.tensor([[0.5, -1.0]])) and y is None
    img = pixels(png)
    assert img.shape == (84, 84), "28 x 28 pixels, each a 3 x 3 block"
    want = (decode(torch.tensor([[0.5, -1.0]])).reshape(28, 28) * 255).round()
    assert torch.equal(img[::3, ::3], want) and torch.equal(img[2::3, 2::3], want), "pixel (r, c) of the decoded image"
    assert widgets.render(decode, torch.tensor([0.7, -1.0])) != widgets.render(decode, [0.5, -1.0])


def test_render_passes_the_label_to_a_conditional_decoder():
    decode = Recorder()
    a, b = widgets.render(decode, [0.0], label=3), widgets.render(decode, [0.0], label=7)
    assert [int(y) for _, y in decode.calls] == [3, 7] and all(y.shape == (1,) and y.dtype == torch.int64
                                                               for _, y in decode.calls)
    assert a != b


def test_1d_slider_redecodes_when_moved():
    decode = Recorder()
    view = widgets.latent_slider(decode, lo=-1.5, hi=1.5, step=0.03)
    (slider,), dropdown, image = widgets.controls(view)
    assert dropdown is None and list(view.children) == [slider, image]
    assert "dgm-slider-z" in slider._dom_classes and "dgm-decoded" in image._dom_classes
    assert isinstance(slider, ipywidgets.FloatSlider) and isinstance(image, ipywidgets.Image)
    assert (slider.min, slider.max, slider.step, slider.value) == (-1.5, 1.5, 0.03, 0.0)
    assert image.format == "png" and image.value == widgets.render(Recorder(), [0.0]), "an image before any move"
    before = image.value
    slider.value = 0.6
    assert torch.allclose(decode.calls[-1][0], torch.tensor([[0.6]])), "decodes the slider's value"
    assert image.value != before and image.value == widgets.render(Recorder(), [0.6])


def test_2d_sliders_decode_z1_and_z2_in_order():
    decode = Recorder()
    view = widgets.latent_xy(decode, lo=-3, hi=3, step=0.05)
    (s1, s2), dropdown, image = widgets.controls(view)
    assert dropdown is None
    assert "dgm-slider-z1" in s1._dom_classes and "dgm-slider-z2" in s2._dom_classes and "dgm-decoded" in image._dom_classes
    seen = [image.value]
    s1.value = 1.0
    seen.append(image.value)
    s2.value = -2.5
    seen.append(image.value)
    assert torch.allclose(decode.calls[-2][0], torch.tensor([[1.0, 0.0]]))
    assert torch.allclose(decode.calls[-1][0], torch.tensor([[1.0, -2.5]])), "z = (z1, z2), in that order"
    assert len(set(seen)) == 3, "every move replaces the image bytes"


@pytest.mark.parametrize("labels", [range(10), {"zero": 0, "one": 1, "nine": 9}])
def test_label_dropdown_conditions_the_decoder(labels):
    decode = Recorder()
    view = widgets.latent_xy(decode, labels=labels)
    sliders, dropdown, image = widgets.controls(view)
    assert "dgm-label" in dropdown._dom_classes and len(sliders) == 2
    assert int(decode.calls[-1][1]) == 0, "starts at the first label"
    before = image.value
    dropdown.value = 9
    assert int(decode.calls[-1][1]) == 9 and image.value != before
    sliders[0].value = 0.5
    z, y = decode.calls[-1]
    assert torch.allclose(z, torch.tensor([[0.5, 0.0]])) and int(y) == 9, "the label stays when a slider moves"


class Model:
    """Stands in for a trained VAE in the slider cells."""

    compute_sigmoid_given = staticmethod(Recorder())


@pytest.mark.parametrize("gid, classes", [("slider-1d", {"dgm-slider-z"}), ("slider-2d", {"dgm-slider-z1", "dgm-slider-z2"})])
@pytest.mark.parametrize("grading", [False, True])
def test_slider_cells_show_the_widget_or_a_static_figure(monkeypatch, gid, classes, grading):
    import matplotlib.pyplot as plt

    from helpers import plots, runtime

    if grading:
        monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    else:
        monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    shown = []
    ns = {"torch": torch, "plt": plt, "plots": plots, "runtime": runtime, "widgets": widgets,
          "display": shown.append, "vae1": Model(), "vae2": Model()}
    plt.close("all")
    exec(compile(cell_source(AID, gid), gid, "exec"), ns)
    if grading:
        assert not shown, "under grading no widget is displayed"
    else:
        (view,) = shown
        sliders, _, image = widgets.controls(view)
        assert {c for s in sliders for c in s._dom_classes} == classes and "dgm-decoded" in image._dom_classes
    plt.close("all")


def notebook_01_run(root, kind: str, epochs: int, state: dict) -> None:
    """Weights where notebook 01's run of ``kind`` saves them, in the course folder ``root``."""
    folder = root / "01_autoencoder" / "results" / f"AE-arch={kind}(512)-lr=0.001-ep={epochs}"
    folder.mkdir(parents=True)
    torch.save(state, folder / "model.pt")


def filled(model: torch.nn.Module, value: float) -> dict:
    return {k: torch.full_like(w, value) for k, w in model.state_dict().items()}


@pytest.fixture(scope="module")
def graded_run(tmp_path_factory, one_thread):
    """The source notebook run in grading mode (short budgets) in a fresh folder beside a run of
    notebook 01 that saved its weights (graded, they must not be used): ``(folder, namespace)``."""
    root = tmp_path_factory.mktemp("graded_run")
    folder = root / AID
    folder.mkdir()
    classes = {"torch": torch}
    exec(compile(cell_source(AID, "models-01"), "models-01", "exec"), classes)  # notebook 01's classes
    notebook_01_run(root, "ae", 100, filled(classes["Autoencoder"](), 0.01))
    notebook_01_run(root, "vae", 100, filled(classes["VariationalAutoencoder"](), 0.01))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        ns = load_solution(AID)
    return folder, ns


MODELS = ("ae_z2", "vae_z2", "01_ae", "01_vae")  # results/<model>/; the checkpoints results/<model>.pt
FIGURES = ("manifold_digits.png", "manifold.png")  # both, for each AE and each VAE


def test_manifold_figures_are_written_for_both_models(graded_run):
    """Each 2-D model's decoded grid and the scatter of its test codes (one panel) under results/<model>/."""
    folder, ns = graded_run
    images = {}
    for model in MODELS:
        for name in FIGURES:
            with Image.open(folder / "results" / model / name) as img:
                assert img.format == "PNG"
                images[model, name] = np.asarray(img.convert("L"))
        height, width = images[model, "manifold.png"].shape
        assert width < 1.5 * height, f"{model}/manifold.png: this model's panel, not both side by side"
    for name in FIGURES:
        for ae, vae in (("ae_z2", "vae_z2"), ("01_ae", "01_vae")):
            a, b = images[ae, name], images[vae, name]
            assert a.shape != b.shape or not np.array_equal(a, b), f"{name}: the AE's figure and the VAE's are the same"
    assert not list((folder / "results").glob("manifold*.png")), "every figure says which model it shows"
    with torch.no_grad():
        assert torch.equal(ns["tiles_ae_uniform"], ns["ae2"].compute_sigmoid_given(ns["z_uniform"])), "the AE decodes its grid"
        assert torch.equal(ns["tiles_uniform"], ns["vae2"].compute_sigmoid_given(ns["z_uniform"])), "the VAE decodes its grid"
        for name, model in (("01_ae", ns["ae01"]), ("01_vae", ns["vae01"])):
            assert torch.equal(ns["tiles_01"][name], model.decode(ns["grids_01"][name])), f"{name} decodes its grid"


def test_notebook_01s_models_are_trained_when_graded_and_gridded_where_their_codes_are(graded_run):
    """Graded, notebook 01's AE and VAE (784-512-2) are trained here, not loaded from its run;
    set_latent_vectors puts the VAE's grid on the prior's percentiles and the AE's on its codes."""
    folder, ns = graded_run
    ae, vae = ns["ae01"], ns["vae01"]
    assert type(ae).__name__ == "Autoencoder" and type(vae).__name__ == "VariationalAutoencoder"
    assert sum(p.numel() for p in ae.parameters()) == 806_674, "notebook 01's autoencoder"
    assert vae.mean_head.out_features == vae.logvar_head.out_features == 2
    for model in (ae, vae):
        assert not any(torch.equal(w, torch.full_like(w, 0.01)) for w in model.state_dict().values()), \
            "graded: notebook 01's saved weights must not be used"
    assert sorted(p.name for p in (folder / "results").glob("01_*.pt")) == ["01_ae.pt", "01_vae.pt"]
    with torch.no_grad():
        untrained = ns["Autoencoder"]().loss(ns["x_test"][:1000]).item()
        assert ae.loss(ns["x_test"][:1000]).item() < 0.8 * untrained, "the AE was trained"
        assert vae.loss(ns["x_test"][:1000]).item() < 0.8 * untrained, "the VAE was trained"
        q = ns["percentile_grid"](20)
        assert torch.equal(ns["grids_01"]["01_vae"], ns["latent_grid"](q, q)), "the VAE: the prior's percentiles"
        z = ae.encode(ns["x_test"])
    grid = ns["grids_01"]["01_ae"]
    assert grid.shape == (400, 2)
    lo, hi = z.quantile(0.005, dim=0), z.quantile(0.995, dim=0)
    assert torch.allclose(grid.min(0).values, lo, atol=1e-5) and torch.allclose(grid.max(0).values, hi, atol=1e-5), \
        "the AE: a grid over the box of its own codes"
    assert torch.equal(grid[:20, 1], grid[:1, 1].expand(20)) and (grid[:20, 0].diff() > 0).all(), "latent_grid's order"


def test_every_training_is_checkpointed_and_reused(graded_run, tmp_path, monkeypatch, capsys):
    """A grading-mode run saves every model; a later full run with DGM_REUSE_CHECKPOINTS=1 runs
    every cell without training (the contract with the browser test) and writes every figure.
    Outside grading, notebook 01's models come from the weights its run saved beside this
    notebook's folder (its longest run), or, where those do not fit, from this notebook's checkpoint."""
    here = tmp_path / AID
    shutil.copytree(graded_run[0] / "results", here / "results")
    monkeypatch.chdir(here)
    saved = sorted(p.name for p in (here / "results").glob("*.pt"))
    assert saved == ["01_ae.pt", "01_vae.pt", "ae_z2.pt", "rec_only_z1.pt", "vae_z1.pt", "vae_z2.pt"]
    for model in MODELS:
        for name in FIGURES:
            (here / "results" / model / name).unlink()
    ae = graded_run[1]["Autoencoder"]()
    notebook_01_run(tmp_path, "ae", 100, filled(ae, 0.01))
    notebook_01_run(tmp_path, "ae", 5, filled(ae, 0.02))  # a shorter run: not the one to use
    wrong_shape = graded_run[1]["VariationalAutoencoder"](latent=3)
    notebook_01_run(tmp_path, "vae", 100, wrong_shape.state_dict())

    import helpers.train

    def no_training(*args, **kwargs):
        raise AssertionError("trained although a checkpoint was there")
    monkeypatch.setattr(helpers.train, "train_vae", no_training)
    monkeypatch.setattr(helpers.train.Trainer, "fit", no_training)
    monkeypatch.setenv("DGM_REUSE_CHECKPOINTS", "1")
    ns = load_solution(AID, grading=False)
    assert ns["ITERATIONS"] > 1_000 and ns["EPOCHS_01"] > 1, "the full budget, yet nothing trained"
    assert all((here / "results" / model / name).is_file() for model in MODELS for name in FIGURES)
    assert all(torch.equal(w, torch.full_like(w, 0.01)) for w in ns["ae01"].state_dict().values()), \
        "the AE: the weights of notebook 01's 100-epoch run"
    graded_vae = graded_run[1]["vae01"].state_dict()
    assert all(torch.equal(w, graded_vae[k]) for k, w in ns["vae01"].state_dict().items()), \
        "the VAE: notebook 01's file does not fit, so this notebook's checkpoint"
    out = capsys.readouterr().out
    assert "AE-arch=ae(512)-lr=0.001-ep=100" in out and "does not fit notebook 01's model" in out
