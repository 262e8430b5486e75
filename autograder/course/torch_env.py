"""The environment of every process that runs the course's PyTorch code: JupyterLab and its
kernels (``make lab``, the hub's single-user servers), grading kernels, the benchmarks."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def torch_env(environ: dict[str, str] | None = None, cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, str]:
    """Environment variables for the processes that run the course's PyTorch code: JupyterLab
    and its kernels (``make lab``), grading kernels, the benchmarks.

    On an x86 CPU with AVX-512, ATen's AVX2 kernels (``ATEN_CPU_CAPABILITY=avx2``): with
    AVX-512 ones, ``expm1`` and ``log1p`` (ELU, log-sigmoid, softplus) ran 4-5x slower on the
    course's machine, a quarter of a VAE training step; matrix products (MKL, oneDNN) are not
    affected. Read once when ``torch`` is imported, so it must be in a process's environment
    from its start. An ``ATEN_CPU_CAPABILITY`` already in ``environ`` is kept.
    """
    environ = os.environ if environ is None else environ
    if "ATEN_CPU_CAPABILITY" in environ:
        return {}
    try:
        flags = next((line.split() for line in cpuinfo.read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return {}
    return {"ATEN_CPU_CAPABILITY": "avx2"} if {"avx2", "avx512f"} <= set(flags) else {}


def run_with_torch_env() -> None:
    """Start this program again with ``torch_env()`` set, if that adds anything (the
    benchmarks call it first, so both sides of a comparison run in the course's setting)."""
    extra = torch_env()
    if extra:
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], {**os.environ, **extra})
