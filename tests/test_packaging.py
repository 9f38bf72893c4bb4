"""The package as pip installs it: pyproject.toml lists packages explicitly (the baselines
folder is mapped into the package), so a new subpackage must be listed or a regular,
non-editable install silently lacks it."""
from __future__ import annotations

import tomllib

from helpers import REPO_ROOT


def test_every_subpackage_is_listed_in_pyproject():
    declared = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(REPO_ROOT).parts) for init in (REPO_ROOT / "nasbench").rglob("__init__.py")}
    assert found - declared == set()
    assert {"nasbench.spaces.nasrl_macro", "nasbench.spaces.nasnet"} <= found
