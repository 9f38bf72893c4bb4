"""A run under a low precision: its hash, the fp32 fallbacks stored with it, `--compile`
reaching the final and the candidates' training, and language-model spaces refusing it."""
from __future__ import annotations

import json

import pytest
from helpers import run_cli, smoke_args, store_rows

from nasbench.precision import FP32_OPERATIONS
from nasbench.protocol import load_protocol


@pytest.fixture(scope="module")
def bf16_protocol(tmp_path_factory):
    path = tmp_path_factory.mktemp("protocol") / "smoke_bf16.toml"
    path.write_text('base = "smoke"\nprecision = "bf16"\n')
    return path


def test_a_bf16_run_stores_what_stayed_fp32_and_compile_reaches_every_training(bf16_protocol, data_path, tmp_path,
                                                                                monkeypatch):
    import nasbench.runner.task
    import nasbench.strategies.context
    from nasbench.training import train_network

    seen = []

    def spy(*args, precision="fp32", compile=False, **kwargs):
        seen.append((kwargs["description"].split()[0], precision, compile))
        return train_network(*args, precision=precision, **kwargs)  # uncompiled: the flag is what is under test

    for module in (nasbench.runner.task, nasbench.strategies.context):
        monkeypatch.setattr(module, "train_network", spy)
    store = tmp_path / "s.sqlite"
    result = run_cli(*smoke_args(store, data_path, "--method", "random", "--protocol", bf16_protocol, "--compile"))
    assert result.code == 0, result.err
    assert seen == [("candidate", "bf16", True)] * 2 + [("final", "bf16", True)]
    (row,) = store_rows(store)
    assert row["protocol_hash"] == load_protocol(str(bf16_protocol)).hash != load_protocol("smoke").hash
    assert json.loads(row["details_json"])["precision"] == {"name": "bf16", "fp32_operations": list(FP32_OPERATIONS)}
    assert json.loads(row["protocol_json"])["precision"] == "bf16"


def test_a_language_model_space_refuses_a_low_precision(bf16_protocol, ptb_path, tmp_path):
    result = run_cli("run", "--method", "random", "--space", "enas-rnn", "--protocol", bf16_protocol, "--data",
                     ptb_path, "--ptb-stand-in", "--store", tmp_path / "s.sqlite", "--no-progress")
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1, result.err
    assert "precision bf16 is for image spaces; the enas-rnn space's language models train in fp32" in result.err
    assert not (tmp_path / "s.sqlite").exists()
