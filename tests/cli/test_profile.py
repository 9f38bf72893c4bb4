"""``nasbench profile --device cuda`` on a machine without CUDA: one line, exit status 2, and
no table folder created, whatever the batch sizes asked for."""
from __future__ import annotations

import pytest
import torch
from helpers import run_cli


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_profile_on_cuda_without_it_is_one_line_and_writes_nothing(backend, tmp_path):
    out = tmp_path / "tables"
    result = run_cli("profile", "--protocol", "smoke", "--device", "cuda", "--backend", backend, "--batch-size",
                     "1,32,256", "--out", out, "--no-progress")
    assert result.code == 2 and result.out == "" and result.err.count("\n") == 1
    assert result.err.startswith("nasbench: error: --device cuda was asked for but torch sees no CUDA device")
    assert not out.exists() and list(tmp_path.iterdir()) == []
