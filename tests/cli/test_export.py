"""`nasbench export` on the command line: a smoke run keeps its final weights and its export
computes with them; a run kept without them, and a genotype, are exported untrained and say so."""
from __future__ import annotations

import json
import random
import sqlite3
from contextlib import closing

import onnx
import onnxruntime
import pytest
import torch
from helpers import run_cli, smoke_args, store_rows

from nasbench.export import ExportSource, final_network
from nasbench.hardware.counting import AUXILIARY_PREFIX
from nasbench.protocol import load_protocol
from nasbench.spaces import get_space
from nasbench.store import Store
from nasbench.training import build_model
from nasbench.types import derive_seed

UNTRAINED = "exporting freshly initialised weights"


@pytest.fixture(scope="module")
def store(tmp_path_factory, data_path):
    """Two smoke runs of random-arch: seed 0 keeping its final weights, seed 1 without."""
    path = tmp_path_factory.mktemp("export") / "results.sqlite"
    kept = run_cli(*smoke_args(path, data_path, "--method", "random-arch", "--seeds", "0"))
    assert kept.code == 0, kept.err
    without = run_cli(*smoke_args(path, data_path, "--method", "random-arch", "--seeds", "1", "--no-keep-weights"))
    assert without.code == 0, without.err
    return path


def rows(store) -> dict[int, dict]:
    return {row["seed"]: row for row in store_rows(store)}


def props(path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(path).metadata_props}


def logits(path, images: torch.Tensor) -> torch.Tensor:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {"images": images.numpy()})[0])


def stored_network(row: dict, weights) -> torch.nn.Module:
    protocol = load_protocol("smoke")
    space = get_space(row["space"], protocol)
    return final_network(ExportSource("", space, space.from_dict(json.loads(row["genotype_json"])), protocol,
                                      weights=weights))


def test_a_run_keeps_its_final_weights_unless_told_not_to(store):
    kept, without = rows(store)[0], rows(store)[1]
    with Store(store, readonly=True) as opened:
        weights = opened.final_weights(kept["id"])
        assert opened.final_weights(without["id"]) is None
    smoke = load_protocol("smoke")
    space = get_space(kept["space"], smoke)
    initial = build_model(space, space.from_dict(json.loads(kept["genotype_json"])), smoke.final, torch.device("cpu"),
                          derive_seed(0, "final")).state_dict()  # the run's network before its final training
    assert set(weights) == {k for k in initial if not k.startswith(AUXILIARY_PREFIX)} and len(weights) < len(initial)
    assert any(not torch.equal(weights[k], initial[k]) for k in weights)  # trained


def test_the_export_of_a_run_computes_with_its_trained_weights(store, tmp_path):
    row = rows(store)[0]
    out = tmp_path / "sub" / "run.onnx"
    result = run_cli("export", row["id"], "--store", store, "--format", "onnx", "--out", out)
    assert result.code == 0 and result.err == "", result.err
    assert result.out.startswith(f"wrote {out}: run {row['id']} (random-arch seed 0)") and "trained weights" in result.out
    meta = props(out)
    assert (meta["nasbench.run_id"], meta["nasbench.weights"], meta["nasbench.space"]) == (str(row["id"]), "trained",
                                                                                           "cell")
    assert meta["nasbench.protocol_hash"] == row["protocol_hash"]
    assert json.loads(meta["nasbench.genotype"]) == json.loads(row["genotype_json"])
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with Store(store, readonly=True) as opened, torch.no_grad():
        trained = stored_network(row, opened.final_weights(row["id"]))(images)
        untrained = stored_network(row, None)(images)
    exported = logits(out, images)
    assert (exported - trained).abs().max().item() <= 1e-4
    assert (exported - untrained).abs().max().item() > 1e-2


def test_a_run_without_weights_is_exported_untrained_and_says_so(store, tmp_path):
    row = rows(store)[1]
    out = tmp_path / "run.onnx"
    result = run_cli("export", row["id"], "--store", store, "--protocol", "smoke", "--out", out, "--json")
    assert result.code == 0
    assert result.err.splitlines() == [f"nasbench: run {row['id']} (random-arch seed 1) has no stored final weights "
                                       f"(stored before they were kept, or run with --no-keep-weights): {UNTRAINED}"]
    assert result.json_lines()[0]["weights"] == "untrained" == props(out)["nasbench.weights"]


def test_a_genotype_of_any_space_is_exported_untrained(tmp_path, smoke):
    space = get_space("nasrl-macro", smoke)
    arch = space.to_dict(space.sample(random.Random(0)))
    (tmp_path / "arch.json").write_text(json.dumps(arch))
    out = tmp_path / "arch.onnx"
    result = run_cli("export", tmp_path / "arch.json", "--space", "nasrl-macro", "--protocol", "smoke", "--out", out,
                     "--json")
    assert result.code == 0 and result.err.count("\n") == 1 and UNTRAINED in result.err
    record = result.json_lines()[0]
    assert (record["space"], record["run_id"], record["weights"]) == ("nasrl-macro", None, "untrained")
    assert 0 <= record["parity_max_abs_diff"] <= 1e-4 and record["parity_batch"] == 4
    meta = props(out)
    assert (meta["nasbench.space"], meta["nasbench.run_id"]) == ("nasrl-macro", "none")
    assert json.loads(meta["nasbench.genotype"]) == arch


def test_a_store_from_before_the_weights_exports_untrained(store, tmp_path):
    old = tmp_path / "old.sqlite"
    with closing(sqlite3.connect(store)) as source, closing(sqlite3.connect(old)) as target:
        source.backup(target)
        target.execute("DROP TABLE final_weights")
        target.commit()
    result = run_cli("export", rows(store)[0]["id"], "--store", old, "--out", tmp_path / "old.onnx")
    assert result.code == 0 and UNTRAINED in result.err
    assert props(tmp_path / "old.onnx")["nasbench.weights"] == "untrained"
