"""Sliders that move through a latent space and decode live, as ``ipywidgets``.

A view is a column of controls and one ``ipywidgets.Image`` holding PNG bytes. Moving a
control calls ``render`` (decode one latent vector, encode it as a PNG) and replaces the
image's bytes: no matplotlib figure is redrawn, so an update takes about a millisecond on a
CPU (``bench/widget_latency.py``). ``render`` is a plain function, so tests call it without
a browser.

``decode(z) -> pixels`` maps latent vectors ``(batch, dim)`` to pixel intensities in [0, 1],
``(batch, 784)`` (e.g. ``model.compute_sigmoid_given``). A conditional decoder is
``decode(z, y)`` with labels ``y`` of shape ``(batch,)`` (int64); pass ``labels=`` to get a
label dropdown. CSS classes (for browser tests): sliders ``dgm-slider-z`` (1-D),
``dgm-slider-z1`` and ``dgm-slider-z2`` (2-D), the dropdown ``dgm-label``, the image
``dgm-decoded``.
"""
from __future__ import annotations

import io
from typing import Callable, Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image

Decode = Callable[..., torch.Tensor]
Labels = Sequence[int] | Mapping[str, int]


def png(pixels: torch.Tensor, scale: int = 5) -> bytes:
    """PNG bytes of one 28 x 28 grey-scale image given as ``(784,)``, ``(1, 784)`` or
    ``(28, 28)`` values in [0, 1], each pixel drawn as a ``scale`` x ``scale`` block."""
    img = pixels.detach().float().cpu().reshape(28, 28).clamp(0, 1).numpy()
    img = np.kron((img * 255).round().astype(np.uint8), np.ones((scale, scale), dtype=np.uint8))
    buf = io.BytesIO()
    Image.fromarray(img, mode="L").save(buf, format="png", compress_level=1)
    return buf.getvalue()


@torch.no_grad()
def render(decode: Decode, z: Sequence[float] | torch.Tensor, label: int | None = None,
           scale: int = 5) -> bytes:
    """Decode one latent vector ``z`` (``(dim,)``) and return the image as PNG bytes.

    Calls ``decode(z[None])``, or ``decode(z[None], torch.tensor([label]))`` when ``label``
    is given (a conditional decoder).
    """
    zt = torch.as_tensor(z, dtype=torch.float32).reshape(1, -1)
    pixels = decode(zt) if label is None else decode(zt, torch.tensor([int(label)]))
    return png(pixels, scale)


def label_dropdown(labels: Labels, value: int | None = None) -> widgets.Dropdown:
    """A dropdown over ``labels`` (a sequence of ints, or ``{name: int}``), class ``dgm-label``."""
    options = list(labels.items()) if isinstance(labels, Mapping) else [(str(y), int(y)) for y in labels]
    dropdown = widgets.Dropdown(options=options, value=options[0][1] if value is None else value,
                                description="label")
    dropdown.add_class("dgm-label")
    return dropdown


def _slider(name: str, css: str, lo: float, hi: float, step: float, value: float) -> widgets.FloatSlider:
    slider = widgets.FloatSlider(value=value, min=lo, max=hi, step=step, description=name,
                                 continuous_update=True, readout_format=".2f")
    slider.add_class(css)
    return slider


def _view(decode: Decode, sliders: list[widgets.FloatSlider], labels: Labels | None,
          scale: int) -> widgets.VBox:
    """Sliders (and a dropdown) above an image that is re-rendered whenever one of them moves."""
    dropdown = label_dropdown(labels) if labels is not None else None
    image = widgets.Image(format="png", width=28 * scale, height=28 * scale)
    image.add_class("dgm-decoded")

    def update(_change=None) -> None:
        label = dropdown.value if dropdown is not None else None
        image.value = render(decode, [s.value for s in sliders], label, scale)

    controls = sliders + ([dropdown] if dropdown is not None else [])
    for control in controls:
        control.observe(update, names="value")
    update()
    return widgets.VBox([*controls, image])


def latent_slider(decode: Decode, lo: float = -1.5, hi: float = 1.5, step: float = 0.03,
                  value: float = 0.0, labels: Labels | None = None, scale: int = 5) -> widgets.VBox:
    """A 1-D latent view: a slider ``z`` over ``[lo, hi]`` (class ``dgm-slider-z``) and the
    decoded image of ``[z]`` (class ``dgm-decoded``); with ``labels``, a label dropdown too.

    Returns a ``VBox``: ``children`` are the slider, the dropdown if any, the image.
    """
    return _view(decode, [_slider("z", "dgm-slider-z", lo, hi, step, value)], labels, scale)


def latent_xy(decode: Decode, lo: float = -3.0, hi: float = 3.0, step: float = 0.05,
              value: tuple[float, float] = (0.0, 0.0), labels: Labels | None = None,
              scale: int = 5) -> widgets.VBox:
    """A 2-D latent view: sliders ``z1`` and ``z2`` over ``[lo, hi]`` (classes ``dgm-slider-z1``,
    ``dgm-slider-z2``) and the decoded image of ``[z1, z2]`` (class ``dgm-decoded``); with
    ``labels``, a label dropdown too.

    Returns a ``VBox``: ``children`` are the two sliders, the dropdown if any, the image.
    """
    sliders = [_slider(f"z{i + 1}", f"dgm-slider-z{i + 1}", lo, hi, step, v) for i, v in enumerate(value)]
    return _view(decode, sliders, labels, scale)


def controls(view: widgets.VBox) -> tuple[list[widgets.FloatSlider], widgets.Dropdown | None, widgets.Image]:
    """The sliders, the label dropdown (or None) and the image of a view built here."""
    sliders = [w for w in view.children if isinstance(w, widgets.FloatSlider)]
    dropdown = next((w for w in view.children if isinstance(w, widgets.Dropdown)), None)
    image = next(w for w in view.children if isinstance(w, widgets.Image))
    return sliders, dropdown, image
