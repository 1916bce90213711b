"""``environment.yml`` (conda) asks for what ``pyproject.toml`` asks for, with the same bounds.

conda-forge cannot be reached from the machines this project is built on, so ``conda env
create`` itself is not run here; this keeps the two files from drifting apart.
"""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}  # PyPI name -> conda-forge name where they differ
NOT_ON_CONDA = {"gplearn", "playwright", "pyoperon"}  # installed by the pip section
SPEC = re.compile(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*$")


def split(spec: str) -> tuple[str, str]:
    name, bounds = SPEC.match(spec.split("#")[0]).groups()
    return name.lower(), bounds.replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(split(s) for s in project["dependencies"] + project["optional-dependencies"]
                  ["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = dict(split(s) for s in env["dependencies"] if isinstance(s, str))
    pip = [s for item in env["dependencies"] if isinstance(item, dict) for s in item["pip"]]
    pip_specs = dict(split(s) for s in pip if not s.startswith("-"))
    assert "-e ." in pip, "the pip section must install chatsr itself"
    for name, bounds in wanted.items():
        if name in NOT_ON_CONDA:
            assert pip_specs.get(name) == bounds, name
        else:
            assert conda.get(CONDA_NAMES.get(name, name)) == bounds, name
    python = split(next(s for s in env["dependencies"] if str(s).startswith("python")))[1]
    assert python.startswith(project["requires-python"]), python
