"""The two ways to install (pip, conda) name the same packages; the nbgrader config is one."""
from __future__ import annotations

import re
import tomllib

import yaml
from traitlets.config import Config

from autograder.course.config import REPO, course_config
from autograder.course.torch_env import torch_env

CONDA_NAMES = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}


def split(req: str) -> tuple[str, str]:
    """``(name, version spec)``; pip's extras (``psycopg[binary]``) have no conda counterpart."""
    name, spec = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(?:\[[^]]*\])?\s*(.*)", req).groups()
    return CONDA_NAMES.get(name.lower(), name.lower()), spec.replace(" ", "")


def test_environment_yml_and_pyproject_agree():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pip = dict(split(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda = dict(split(d) for d in env["dependencies"] if isinstance(d, str))
    assert {k: v for k, v in conda.items() if k not in NOT_PACKAGES} == pip
    assert "-e ." in next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]


def test_nbgrader_config_file_applies_the_course_config():
    c = Config()
    exec((REPO / "nbgrader_config.py").read_text(), {"get_config": lambda: c,
                                                      "__file__": str(REPO / "nbgrader_config.py")})
    assert c == course_config(REPO)
    assert c.Execute.timeout > 30 and c.Execute.kernel_name == "python3"
    assert c.OverwriteCells.add_missing_cells is True


def test_torch_env_picks_avx2_kernels_only_where_avx512_would_be_used(tmp_path):
    def cpu(flags: str):
        path = tmp_path / "cpuinfo"
        path.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
        return path
    assert torch_env({}, cpu("avx2 avx512f avx512bw")) == {"ATEN_CPU_CAPABILITY": "avx2"}
    assert torch_env({}, cpu("avx avx2")) == {}            # AVX2 is ATen's choice there anyway
    assert torch_env({}, cpu("neon asimd")) == {}          # not x86: the variable would only warn
    assert torch_env({"ATEN_CPU_CAPABILITY": "avx512"}, cpu("avx2 avx512f")) == {}  # the user's choice stays
    assert torch_env({}, tmp_path / "missing") == {}       # no /proc (macOS, Windows)
