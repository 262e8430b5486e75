"""Latency of one slider update in notebook 03's latent views (``helpers.widgets``).

A decoder of the real size (CS236 ``v1``: z -> 300 -> 300 -> 784, untrained: the time does
not depend on the weights) behind the 2-D view ``latent_xy`` and the 1-D view
``latent_slider``. Each update sets a slider's value, which runs the view's own callback:
decode one code, encode a PNG, replace the image's bytes (the browser's share, sending the
bytes over the kernel's websocket and painting them, is not counted). One thread.

    python bench/widget_latency.py [--n 500]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autograder.course.torch_env import run_with_torch_env  # noqa: E402
from helpers import widgets  # noqa: E402
from helpers.models import Decoder  # noqa: E402


def time_updates(view, n: int) -> list[float]:
    """Milliseconds of ``n`` slider moves (sliders in turn, values sweeping their range)."""
    sliders, _, _ = widgets.controls(view)
    times = []
    for i in range(n):
        s = sliders[i % len(sliders)]
        value = s.min + (s.max - s.min) * ((i * 7919) % 1000) / 999  # a new value every time
        start = time.perf_counter()
        s.value = value
        times.append((time.perf_counter() - start) * 1000)
    return times


def report(name: str, times: list[float]) -> tuple[float, float]:
    median = statistics.median(times)
    p95 = statistics.quantiles(times, n=20)[-1]
    print(f"{name:>12}: {len(times)} updates, median {median:.2f} ms, p95 {p95:.2f} ms, max {max(times):.2f} ms")
    return median, p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500, help="updates per view")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    views = {}
    for z_dim, build in ((1, widgets.latent_slider), (2, widgets.latent_xy)):
        dec = Decoder(z_dim).eval()
        views[f"{z_dim}-D view"] = build(lambda z, dec=dec: torch.sigmoid(dec.decode(z)))
    for view in views.values():
        time_updates(view, 20)  # warm-up
    all_times = []
    for name, view in views.items():
        times = time_updates(view, args.n)
        report(name, times)
        all_times += times
    median, p95 = report("both", all_times)
    print(f"widget update: median {median:.2f} ms, p95 {p95:.2f} ms")


if __name__ == "__main__":
    run_with_torch_env()
    main()
