"""Provenance: device resolution and naming, software versions, the git commit."""
from __future__ import annotations

import re
import subprocess
from importlib import metadata

import pytest
import torch
from helpers import REPO_ROOT

from nasbench.errors import NasbenchError
from nasbench.provenance import (
    device_fingerprint,
    device_name,
    git_commit,
    resolve_device,
    software_versions,
)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(NasbenchError, match="--device must be auto, cpu or cuda, got 'gpu'"):
        resolve_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda():
    with pytest.raises(NasbenchError, match="torch sees no CUDA device; use --device cpu"):
        resolve_device("cuda")


def test_cpu_names():
    name = device_name(torch.device("cpu"))
    assert re.fullmatch(r".+ \(\d+ cores\)", name)
    fingerprint = device_fingerprint(torch.device("cpu"))
    assert re.fullmatch(r"cpu-[a-z0-9-]+-f\w+m\w+s\w+-\d+c", fingerprint), fingerprint


def test_software_versions():
    versions = software_versions()
    assert versions["torch"] == metadata.version("torch")
    assert versions["nasbench"] == metadata.version("nasbench")
    assert {"python", "numpy", "fvcore", "pandas"} <= set(versions)


def test_git_commit():
    git_commit.cache_clear()  # the tree may have changed since another test asked
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        assert git_commit() is None
        return
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                           capture_output=True, text=True).stdout.strip()
    assert git_commit() == head.stdout.strip() + ("+dirty" if dirty else "")
