"""The runner: what `nasbench run` stores (the final training, provenance, variants), caching,
superseding, failing, and resuming an interrupted run. The session's ``smoke_store`` is one real
``nasbench run --all --protocol smoke --seeds 0,1``; tests that write to a store work on a copy
of it."""
from __future__ import annotations

import json
import platform
import random
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import (
    by_key,
    counts_table_file,
    run_cli,
    sha256,
    smoke_args,
    store_rows,
    store_trials,
)

from nasbench.hardware.counting import count_flops, count_params
from nasbench.images import make_splits
from nasbench.spaces import get_space
from nasbench.spaces.cell.genotype import Genotype
from nasbench.strategies.context import SearchContext

# -- what a run stores ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def n_search_val(dataset, smoke):
    return len(make_splits(dataset, smoke.data).search_val)


def test_random_arch_is_the_seeds_first_draw(smoke_records, cell_space):
    for record in smoke_records:
        if record["method"] == "random-arch":
            assert record["val_acc"] is None
            expected = cell_space.sample(random.Random(record["seed"]))
            assert Genotype.from_dict(record["genotype"]) == expected


def test_random_search_picks_its_best_trial(smoke_records, smoke_store, cell_space, smoke, n_search_val):
    for record in (r for r in smoke_records if r["method"] == "random"):
        trials = store_trials(smoke_store.path, record["run_id"])
        assert [t["idx"] for t in trials] == list(range(smoke.search.candidates))
        rng = random.Random(record["seed"])
        assert [json.loads(t["arch_json"]) for t in trials] == \
            [cell_space.sample(rng).to_dict() for _ in range(smoke.search.candidates)]
        best = max(trials, key=lambda t: (t["val_acc"], -t["idx"]))
        assert record["val_acc"] == best["val_acc"]
        assert record["genotype"] == json.loads(best["arch_json"])
        assert record["val_acc"] * n_search_val == pytest.approx(round(record["val_acc"] * n_search_val))


def test_stored_params_and_flops_are_the_final_networks(smoke_records, smoke):
    for record in smoke_records:
        space = get_space(record["space"], smoke)
        model = space.build(space.from_dict(record["genotype"]), smoke.final.network)
        assert record["params"] == count_params(model)
        assert record["flops"] == count_flops(model)


def test_test_acc_is_the_shared_final_recipe(smoke_rows, dataset, smoke, cell_space):
    """Final training: the protocol's final stage on all its training images (search-train and
    search-val), weights and order from the seed derived for "final", scored on the test split."""
    from nasbench.data import SplitData
    from nasbench.training import build_model, train_network
    from nasbench.types import derive_seed

    row = by_key(smoke_rows)[("random-arch", 1)]
    data = SplitData.for_config(dataset, smoke.data, torch.device("cpu"))
    assert len(data.train) == smoke.data.train_images and len(data.test) == smoke.data.test_images
    seed = derive_seed(1, "final")
    model = build_model(cell_space, Genotype.from_dict(json.loads(row["genotype_json"])), smoke.final,
                        torch.device("cpu"), seed)
    result = train_network(model, smoke.final, data.train, data.test, seed, show_progress=False)
    assert result.accuracy == row["test_acc"]


def test_runs_store_provenance(smoke_rows, smoke):
    for row in smoke_rows:
        assert json.loads(row["protocol_json"]) == json.loads(smoke.to_json())
        software = json.loads(row["software_json"])
        assert software["torch"] == metadata.version("torch") and software["numpy"] == np.__version__
        assert software["python"] == platform.python_version()
        assert row["device_fingerprint"].startswith("cpu-")
        assert row["started_at"] <= row["finished_at"]


# -- caching, superseding, failing -----------------------------------------------------------

def test_second_identical_run_is_cached(smoke_store, tmp_path, data_path, smoke_records):
    store = smoke_store.copy_to(tmp_path)
    before = store_rows(store)
    result = run_cli(*smoke_args(store, data_path, "--all", "--seeds", "0,1"))
    assert result.code == 0 and result.err == ""
    again = result.json_lines()
    assert [r["cached"] for r in again] == [True] * len(smoke_records)
    assert [{**r, "cached": False} for r in again] == smoke_records
    assert store_rows(store) == before  # no row added, none changed


def test_force_runs_again_and_supersedes(smoke_store, tmp_path, data_path):
    store = smoke_store.copy_to(tmp_path)
    before = by_key(store_rows(store))
    old = before[("random-arch", 0)]
    result = run_cli(*smoke_args(store, data_path, "--method", "random-arch", "--seeds", "0", "--force"))
    assert result.code == 0
    (record,) = result.json_lines()
    assert record["cached"] is False and record["run_id"] > max(r["id"] for r in before.values())
    after = {r["id"]: r for r in store_rows(store)}
    assert len(after) == len(before) + 1
    assert after[old["id"]]["status"] == "superseded"
    assert after[record["run_id"]]["status"] == "finished"
    for key, row in before.items():
        if key != ("random-arch", 0):
            assert after[row["id"]] == row
    # the same seed on the same device gives the same result
    new = after[record["run_id"]]
    assert (new["genotype_json"], new["test_acc"], new["params"]) == (old["genotype_json"], old["test_acc"], old["params"])

    # reports read finished runs only: the new run replaces the old one
    out = tmp_path / "report"
    assert run_cli("report", "--store", store, "--out", out).code == 0
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["id"]) == sorted([r["id"] for k, r in before.items() if k != ("random-arch", 0)] +
                                        [record["run_id"]])


def test_a_failed_forced_run_keeps_the_finished_result(smoke_store, tmp_path, data_path, monkeypatch):
    import nasbench.runner.task

    store = smoke_store.copy_to(tmp_path)
    before = by_key(store_rows(store))

    def broken_final_training(*args, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access")  # injected failure

    monkeypatch.setattr(nasbench.runner.task, "train_network", broken_final_training)
    result = run_cli(*smoke_args(store, data_path, "--method", "random-arch", "--seeds", "0", "--force"))
    assert result.code == 1
    (record,) = result.json_lines()
    assert record == {"method": "random-arch", "seed": 0, "status": "failed",
                      "error": "RuntimeError: CUDA error: an illegal memory access"}
    after = store_rows(store)
    assert len(after) == len(before) + 1
    failed = after[-1]
    assert failed["status"] == "failed" and failed["error"] == "RuntimeError: CUDA error: an illegal memory access"
    assert {r["id"]: r for r in after}[before[("random-arch", 0)]["id"]] == before[("random-arch", 0)]

    monkeypatch.undo()
    cached = run_cli(*smoke_args(store, data_path, "--method", "random-arch", "--seeds", "0"))
    (record,) = cached.json_lines()
    assert record["cached"] is True and record["run_id"] == before[("random-arch", 0)]["id"]


# -- resume ----------------------------------------------------------------------------

def test_interrupted_run_resumes_where_it_stopped(tmp_path, monkeypatch, smoke_store, data_path, smoke_rows):
    store = tmp_path / "resume.sqlite"
    args = smoke_args(store, data_path, "--method", "random", "--seeds", "0")
    real = SearchContext.train_candidate
    calls = []

    def interrupt_second(self, arch, index):
        calls.append(index)
        if index == 1:
            raise KeyboardInterrupt  # Ctrl-C while the second candidate trains
        return real(self, arch, index)

    monkeypatch.setattr(SearchContext, "train_candidate", interrupt_second)
    stopped = run_cli(*args)
    assert stopped.code == 130 and stopped.out == ""
    assert "interrupted" in stopped.err and calls == [0, 1]
    (row,) = store_rows(store)
    assert row["status"] == "interrupted" and row["error"] == "interrupted by the user"
    state = json.loads(row["state_json"])
    assert len(state["trials"]) == 1 and state["trials"][0]["index"] == 0
    first_trial = store_trials(store, row["id"])
    assert len(first_trial) == 1

    calls.clear()
    monkeypatch.setattr(SearchContext, "train_candidate",
                        lambda self, arch, index: calls.append(index) or real(self, arch, index))
    resumed = run_cli(*args)
    assert resumed.code == 0
    assert calls == [1]  # the first candidate is not trained again
    (final,) = store_rows(store)
    assert final["id"] == row["id"] and final["status"] == "finished" and final["state_json"] is None
    trials = store_trials(store, final["id"])
    assert trials[0] == first_trial[0]  # kept as it was

    uninterrupted = by_key(smoke_rows)[("random", 0)]
    for field in ("genotype_json", "val_acc", "test_acc", "params", "flops"):
        assert final[field] == uninterrupted[field], field
    expected_trials = store_trials(smoke_store.path, uninterrupted["id"])
    assert [(t["idx"], t["arch_json"], t["val_acc"], t["error"]) for t in trials] == \
        [(t["idx"], t["arch_json"], t["val_acc"], t["error"]) for t in expected_trials]
    (record,) = resumed.json_lines()
    assert record["run_id"] == row["id"] and record["cached"] is False
    assert resumed.err.splitlines()[0] == (f"nasbench: resuming random seed 0 (protocol {row['protocol_hash']}, data "
                                           f"{row['data']}) (run {row['id']}) from step 1 of 2 (search)")


# -- variants: constraints and other spaces are runs of their own --------------------------

@pytest.mark.slow
def test_constrained_and_unconstrained_runs_are_stored_apart_with_measured_latency(tmp_path, data_path,
                                                                                  fbnet_smoke_table):
    # proxylessnas' log form takes ms, as the official code does, so its expected latency must stay
    # above 1 ms: on a fast machine the smoke supernet's is below it, so that form reads the table as
    # a machine SLOWER times slower would have measured it (its target scaled alike)
    slow = slowed(fbnet_smoke_table, tmp_path / "slow.json")
    store = tmp_path / "runs.sqlite"
    common = ("--protocol", "smoke", "--store", store, "--data", data_path, "--no-progress", "--json")
    assert run_cli("run", "--method", "proxylessnas", *common).code == 0
    for form, table, target in (("mul-log", slow, 2 * SLOWER), ("add-linear", fbnet_smoke_table, 2)):
        done = run_cli("run", "--method", "proxylessnas", *common, "--constraint", "latency", "--table", table,
                       "--target", str(target), "--constraint-form", form)
        assert done.code == 0, done.out
    rows = store_rows(store)
    assert rows[0]["variant"] == ""
    assert "form=mul-log,beta=0.3" in rows[1]["variant"] and "form=add-linear" in rows[2]["variant"]
    for row, target in zip(rows[1:], (2 * SLOWER, 2)):
        constraint = json.loads(row["details_json"])["constraint"]
        assert constraint["target"] == target and constraint["achieved"] > 0 and constraint["measured_ms_p50"] > 0
        assert constraint["device"] == json.loads(fbnet_smoke_table.read_text())["conditions"]["device_fingerprint"]


SLOWER = 4


def slowed(table: Path, out: Path) -> Path:
    """``table`` with every time in it (each field named ``*_ms*``) :data:`SLOWER` times longer."""
    def scale(value, key: str = ""):
        if isinstance(value, dict):
            return {k: scale(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [scale(v, key) for v in value]
        timed = "_ms" in key and isinstance(value, (int, float)) and not isinstance(value, bool)
        return value * SLOWER if timed else value

    out.write_text(json.dumps(scale(json.loads(table.read_text()))))
    return out


@pytest.mark.slow
def test_a_run_on_another_space_is_its_own_variant(tmp_path, data_path):
    store = tmp_path / "runs.sqlite"
    common = ("--method", "proxylessnas", "--protocol", "smoke", "--store", store, "--data", data_path, "--no-progress")
    assert run_cli("run", *common).code == 0
    assert run_cli("run", *common, "--space", "cell").code == 0
    rows = store_rows(store)
    assert [(r["space"], r["variant"]) for r in rows] == [("fbnet", ""), ("cell", "space=cell")]
    assert set(json.loads(rows[1]["genotype_json"])) == {"normal", "normal_concat", "reduce", "reduce_concat"}


def run_snas(store, protocol, data_path, *options):
    return run_cli("run", "--method", "snas", "--protocol", protocol, "--store", store, "--json", "--seeds", "0",
                   "--data", data_path, "--no-progress", *options)


@pytest.mark.slow
def test_a_constrained_run_is_its_own_row_with_its_achieved_cost(tmp_path, data_path, two_epoch_protocol):
    store = tmp_path / "runs.sqlite"
    assert run_snas(store, two_epoch_protocol, data_path).code == 0
    constrained = run_snas(store, two_epoch_protocol, data_path, "--constraint", "params", "--snas-setting", "mild")
    assert constrained.code == 0, constrained.err
    (record,) = constrained.json_lines()
    assert record["cached"] is False and record["variant"] == "params,weight=0.01,form=per-edge-log"
    details = record["details"]["constraint"]
    assert {k: details[k] for k in ("metric", "target", "weight", "form", "table")} == {
        "metric": "params", "target": None, "weight": 0.01, "form": "per-edge-log", "table": None}
    assert details["achieved"] > 0 and details["costs"] == {"params": details["achieved"]}
    plain, again = run_snas(store, two_epoch_protocol, data_path), run_snas(
        store, two_epoch_protocol, data_path, "--constraint", "params", "--constraint-weight", "0.01")
    assert plain.json_lines()[0]["cached"] and plain.json_lines()[0]["variant"] == ""
    assert again.json_lines()[0]["cached"] and again.json_lines()[0]["run_id"] == record["run_id"]
    assert [(r["variant"], r["status"]) for r in store_rows(store)] == [
        ("", "finished"), ("params,weight=0.01,form=per-edge-log", "finished")]
    report = tmp_path / "report"
    assert run_cli("report", "--store", store, "--out", report, "--tables", tmp_path / "no-tables").code == 0
    markdown = (report / "results.md").read_text()
    assert "| ↳ params, λ 0.01, per-edge-log " in markdown and "`params,weight=0.01,form=per-edge-log`" in markdown
    assert f"| {details['achieved'] / 1e6:.3g}M " in markdown and "(target" not in markdown and "| params, λ 0.01, per-edge-log |" in markdown


@pytest.mark.slow
def test_a_run_is_keyed_by_the_contents_of_its_table_not_its_name(tmp_path, data_path, cell_space, smoke):
    store, table = tmp_path / "runs.sqlite", counts_table_file(cell_space, smoke, tmp_path / "tables")
    options = ("--constraint", "flops", "--constraint-form", "hinge", "--target", "1e6", "--constraint-weight", "1",
               "--table", table)
    first = run_snas(store, "smoke", data_path, *options)
    assert first.code == 0, first.err
    (record,) = first.json_lines()
    assert record["variant"] == f"flops<=1e+06#{sha256(table)[:12]},weight=1"
    assert run_snas(store, "smoke", data_path, *options).json_lines()[0]["cached"] is True
    content = json.loads(table.read_text())
    content["entries"][0]["flops"] += 1  # the same file name, re-measured
    table.write_text(json.dumps(content))
    again = run_snas(store, "smoke", data_path, *options)
    (remeasured,) = again.json_lines()
    assert remeasured["cached"] is False and remeasured["variant"] == f"flops<=1e+06#{sha256(table)[:12]},weight=1"
    assert [r["status"] for r in store_rows(store)] == ["finished", "finished"]
