"""The two ways to install (pip, conda) name the same packages; the nbgrader config is one."""
from __future__ import annotations

import re
import tomllib

import yaml
from traitlets.config import Config

from autograder.config import REPO, course_config

CONDA_NAMES = {"pytorch": "torch"}
NOT_PACKAGES = {"python", "pip"}


def split(req: str) -> tuple[str, str]:
    name, spec = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*(.*)", req).groups()
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
