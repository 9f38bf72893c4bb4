"""The runner and the ``nasbench`` command line, end to end, on the smoke protocol.

The session's ``smoke_store`` is one real ``nasbench run --all --protocol smoke --seeds 0,1``;
tests that write to a store work on a copy of it.
"""
from __future__ import annotations

import json
import os
import platform
import random
import statistics
import subprocess
import sys
from importlib import metadata

import numpy as np
import pandas as pd
import pytest
import torch

from nasbench.data import make_splits
from nasbench.hardware.counting import count_flops, count_params
from nasbench.protocol import builtin_protocols, load_protocol
from nasbench.provenance import device_name
from nasbench.spaces import get_space
from nasbench.spaces.cell.genotype import Genotype
from nasbench.strategies import STRATEGIES
from nasbench.strategies.base import SearchContext

from conftest import REPO_ROOT, SUBPROCESS_ENV, run_cli, sha256, store_rows, store_trials

REQUIRED = {"method", "strategy", "space", "protocol", "seed", "genotype", "val_acc", "test_acc", "params", "flops",
            "search_seconds", "eval_seconds", "device"}


def smoke_args(store, data_path, *extra):
    return ("run", "--protocol", "smoke", "--store", store, "--json", "--data", data_path, "--no-progress", *extra)


def by_key(rows):
    return {(r["method"], r["seed"]): r for r in rows}


def without_timing(rows):
    return [{k: v for k, v in r.items() if k not in ("search_seconds", "eval_seconds")} for r in rows]


@pytest.fixture(scope="module")
def records(smoke_store):
    return smoke_store.result.json_lines()


@pytest.fixture(scope="module")
def rows(smoke_store):
    return store_rows(smoke_store.path)


@pytest.fixture(scope="module")
def n_search_val(dataset, smoke):
    return len(make_splits(dataset, smoke.data).search_val)


# -- run -------------------------------------------------------------------------------

def test_run_all_runs_every_method_and_seed(records, rows):
    expected = [(m, s) for m in STRATEGIES for s in (0, 1)]
    assert [(r["method"], r["seed"]) for r in records] == expected
    assert sorted((r["method"], r["seed"]) for r in rows) == sorted(expected)
    assert all(r["status"] == "finished" and r["state_json"] is None and r["error"] is None for r in rows)
    assert {r["method"] for r in rows} == set(STRATEGIES)


def test_run_json_lines(records, rows, smoke, dataset):
    stored = by_key(rows)
    for record in records:
        assert REQUIRED <= set(record)
        row = stored[(record["method"], record["seed"])]
        assert record["run_id"] == row["id"] and record["cached"] is False and record["status"] == "finished"
        assert record["strategy"] == STRATEGIES[record["method"]].strategy_class
        assert record["space"] == STRATEGIES[record["method"]].spaces[0] and record["protocol"] == "smoke"
        assert record["protocol_hash"] == smoke.hash and record["data"] == dataset.identity
        assert record["genotype"] == json.loads(row["genotype_json"])
        space = get_space(record["space"], smoke)
        assert space.to_dict(space.from_dict(record["genotype"])) == record["genotype"]
        assert (record["val_acc"], record["test_acc"], record["params"], record["flops"]) == \
            (row["val_acc"], row["test_acc"], row["params"], row["flops"])
        assert 0 <= record["test_acc"] <= 1
        assert record["test_acc"] * 200 == pytest.approx(round(record["test_acc"] * 200))  # 200 test images
        assert record["search_seconds"] >= 0 and record["eval_seconds"] > 0
        assert record["device"] == device_name(torch.device("cpu"))
        assert record["flops_convention"] == "fvcore, 1 multiply-add = 1 FLOP"


def test_random_arch_is_the_seeds_first_draw(records, cell_space):
    for record in records:
        if record["method"] == "random-arch":
            assert record["val_acc"] is None
            expected = cell_space.sample(random.Random(record["seed"]))
            assert Genotype.from_dict(record["genotype"]) == expected


def test_random_search_picks_its_best_trial(records, smoke_store, cell_space, smoke, n_search_val):
    for record in (r for r in records if r["method"] == "random"):
        trials = store_trials(smoke_store.path, record["run_id"])
        assert [t["idx"] for t in trials] == list(range(smoke.search.candidates))
        rng = random.Random(record["seed"])
        assert [json.loads(t["arch_json"]) for t in trials] == \
            [cell_space.sample(rng).to_dict() for _ in range(smoke.search.candidates)]
        best = max(trials, key=lambda t: (t["val_acc"], -t["idx"]))
        assert record["val_acc"] == best["val_acc"]
        assert record["genotype"] == json.loads(best["arch_json"])
        assert record["val_acc"] * n_search_val == pytest.approx(round(record["val_acc"] * n_search_val))


def test_stored_params_and_flops_are_the_final_networks(records, smoke):
    for record in records:
        space = get_space(record["space"], smoke)
        model = space.build(space.from_dict(record["genotype"]), smoke.final.network)
        assert record["params"] == count_params(model)
        assert record["flops"] == count_flops(model)


def test_test_acc_is_the_shared_final_recipe(rows, dataset, smoke, cell_space):
    """Final training: the protocol's final stage on all its training images (search-train and
    search-val), weights and order from the seed derived for "final", scored on the test split."""
    from nasbench.data import SplitData
    from nasbench.strategies.base import derive_seed
    from nasbench.training import build_model, train_network

    row = by_key(rows)[("random-arch", 1)]
    data = SplitData.for_config(dataset, smoke.data, torch.device("cpu"))
    assert len(data.train) == smoke.data.train_images and len(data.test) == smoke.data.test_images
    seed = derive_seed(1, "final")
    model = build_model(cell_space, Genotype.from_dict(json.loads(row["genotype_json"])), smoke.final,
                        torch.device("cpu"), seed)
    result = train_network(model, smoke.final, data.train, data.test, seed, show_progress=False)
    assert result.accuracy == row["test_acc"]


def test_runs_store_provenance(rows, smoke):
    for row in rows:
        assert json.loads(row["protocol_json"]) == json.loads(smoke.to_json())
        software = json.loads(row["software_json"])
        assert software["torch"] == metadata.version("torch") and software["numpy"] == np.__version__
        assert software["python"] == platform.python_version()
        assert row["device_fingerprint"].startswith("cpu-")
        assert row["started_at"] <= row["finished_at"]


def test_second_identical_run_is_cached(smoke_store, tmp_path, data_path, records):
    store = smoke_store.copy_to(tmp_path)
    before = store_rows(store)
    result = run_cli(*smoke_args(store, data_path, "--all", "--seeds", "0,1"))
    assert result.code == 0 and result.err == ""
    again = result.json_lines()
    assert [r["cached"] for r in again] == [True] * len(records)
    assert [{**r, "cached": False} for r in again] == records
    assert store_rows(store) == before  # no row added, none changed


def test_human_readable_output(smoke_store, tmp_path, data_path, rows):
    store = smoke_store.copy_to(tmp_path)
    result = run_cli("run", "--method", "random", "--protocol", "smoke", "--store", store, "--data", data_path,
                     "--no-progress")  # no --seeds: the protocol's, (0,)
    assert result.code == 0
    row = by_key(rows)[("random", 0)]
    (line,) = result.out.splitlines()
    assert line.startswith(f"random seed 0: test acc {100 * row['test_acc']:.2f}%, "
                           f"search-val acc {100 * row['val_acc']:.1f}%, params {row['params'] / 1e6:.3f}M, ")
    assert line.endswith("(stored earlier; --force to rerun)")
    assert result.err.splitlines() == [f"stored in {store}; `nasbench report --store {store}` regenerates the tables"]


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
    import nasbench.runner

    store = smoke_store.copy_to(tmp_path)
    before = by_key(store_rows(store))

    def broken_final_training(*args, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access")  # injected failure

    monkeypatch.setattr(nasbench.runner, "train_network", broken_final_training)
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


def test_run_via_subprocess(tmp_path, data_path, rows):
    """``python -m nasbench``, with the data from $NASBENCH_DATA, matches the in-process run."""
    store = tmp_path / "sub.sqlite"
    env = {**os.environ, **SUBPROCESS_ENV, "NASBENCH_DATA": str(data_path)}
    done = subprocess.run([sys.executable, "-m", "nasbench", "run", "--method", "random-arch", "--protocol", "smoke",
                           "--seeds", "1", "--store", str(store), "--json", "--no-progress"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    (record,) = [json.loads(line) for line in done.stdout.splitlines()]
    expected = by_key(rows)[("random-arch", 1)]
    assert record["genotype"] == json.loads(expected["genotype_json"])
    assert record["data"] == expected["data"]
    assert (record["test_acc"], record["params"], record["flops"]) == \
        (expected["test_acc"], expected["params"], expected["flops"])
    assert [r["status"] for r in store_rows(store)] == ["finished"]


# -- report ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def report(smoke_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    no_tables = tmp_path_factory.mktemp("no-cost-tables")  # the repository's own tables are not under test here
    result = run_cli("report", "--store", smoke_store.path, "--out", out, "--tables", no_tables)
    assert result.code == 0
    return out, result


def test_report_writes_its_files(report, smoke, records):
    out, result = report
    figure = f"anytime_smoke_{smoke.hash}_{records[0]['data']}.png"  # random and evolution have trials
    assert result.out.splitlines() == [str(out / name) for name in (
        "results.md", "results.csv", "runs.csv", "anytime.csv", figure, "supernet_history.csv",
        "controller_history.csv")]


def test_report_numbers_equal_the_store(report, rows, smoke):
    out, _ = report
    table = pd.read_csv(out / "results.csv").set_index("method")
    assert sorted(table.index) == sorted(STRATEGIES)
    errors = {m: [100 * (1 - r["test_acc"]) for r in sorted(rows, key=lambda r: r["seed"]) if r["method"] == m]
              for m in STRATEGIES}
    # precondition for a discriminating check of the sample standard deviation (ddof=1)
    assert any(len(set(values)) > 1 for values in errors.values()), errors
    for method, values in errors.items():
        line = table.loc[method]
        assert len(values) == 2 and line["n"] == 2 and line["seeds"] == "0,1"
        assert line["test_error_mean"] == pytest.approx(statistics.mean(values), rel=1e-5)
        assert line["test_error_std"] == pytest.approx(statistics.stdev(values), rel=1e-5, abs=1e-9)
        params = [r["params"] for r in rows if r["method"] == method]
        assert line["params_m"] == pytest.approx(np.mean(params) / 1e6, rel=1e-5)
        assert line["protocol"] == "smoke" and line["protocol_hash"] == smoke.hash
    assert table.loc["random", "delta_vs_random"] == pytest.approx(
        statistics.mean(errors["random"]) - statistics.mean(errors["random-arch"]), rel=1e-5, abs=1e-6)
    assert table.loc["random-arch", "delta_vs_random"] == 0
    assert table.loc["random", "published_test_error"] == 3.29
    assert table.loc["random", "published_params_m"] == 3.2
    assert pd.isna(table.loc["random-arch", "published_test_error"])
    val = [r["val_acc"] for r in rows if r["method"] == "random"]
    assert table.loc["random", "val_acc_mean"] == pytest.approx(np.mean(val), rel=1e-5)


def test_report_markdown_shows_the_same_numbers(report, rows, smoke_store):
    out, _ = report
    text = (out / "results.md").read_text()
    assert f"from the store `{smoke_store.path}` ({len(rows)} finished runs)" in text
    lines = text.splitlines()
    for method in STRATEGIES:
        values = [100 * (1 - r["test_acc"]) for r in rows if r["method"] == method]
        (line,) = [line for line in lines if line.startswith(f"| {method} ")]
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == method and cells[1] == STRATEGIES[method].strategy_class
        assert cells[2] == f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"
        assert cells[3] == "2"


def test_report_runs_csv_has_every_finished_run(report, rows):
    out, _ = report
    runs = pd.read_csv(out / "runs.csv").set_index("id")
    assert sorted(runs.index) == sorted(r["id"] for r in rows)
    for row in rows:
        assert runs.loc[row["id"], "test_acc"] == pytest.approx(row["test_acc"], rel=1e-5)
        assert runs.loc[row["id"], "method"] == row["method"] and runs.loc[row["id"], "seed"] == row["seed"]
    assert "state_json" not in runs.columns and "software" in runs.columns


def test_report_of_missing_store(tmp_path):
    result = run_cli("report", "--store", tmp_path / "none.sqlite", "--out", tmp_path / "out")
    assert result.code == 2
    assert result.err.splitlines() == [f"nasbench: error: no results store at {tmp_path / 'none.sqlite'}; "
                                       "run `nasbench run ...` first or pass --store PATH"]


# -- resume ----------------------------------------------------------------------------

def test_interrupted_run_resumes_where_it_stopped(tmp_path, monkeypatch, smoke_store, data_path, rows):
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

    uninterrupted = by_key(rows)[("random", 0)]
    for field in ("genotype_json", "val_acc", "test_acc", "params", "flops"):
        assert final[field] == uninterrupted[field], field
    expected_trials = store_trials(smoke_store.path, uninterrupted["id"])
    assert [(t["idx"], t["arch_json"], t["val_acc"], t["error"]) for t in trials] == \
        [(t["idx"], t["arch_json"], t["val_acc"], t["error"]) for t in expected_trials]
    (record,) = resumed.json_lines()
    assert record["run_id"] == row["id"] and record["cached"] is False


# -- list and describe -----------------------------------------------------------------

def test_list_methods():
    result = run_cli("list", "methods", "--json")
    (rows,) = result.json_lines()
    assert [r["name"] for r in rows] == list(STRATEGIES)
    assert all(r["strategy"] == STRATEGIES[r["name"]].strategy_class and r["summary"]
               and r["spaces"] == list(STRATEGIES[r["name"]].spaces) for r in rows)
    assert {r["name"]: r["spaces"] for r in rows if r["spaces"] != ["cell"]} == \
        {"fbnet": ["fbnet", "cell"], "proxylessnas": ["fbnet", "cell"], "random": ["cell", "nasnet"],
         "evolution": ["cell", "nasnet"], "enas": ["cell", "enas-macro"], "metaqnn": ["metaqnn"],
         "nas-rl": ["nasrl-macro"], "nasnet": ["nasnet", "cell"]}
    text = run_cli("list", "methods").out.splitlines()
    assert [line.split()[0] for line in text] == list(STRATEGIES)
    assert [line.split()[2] for line in text] == [",".join(cls.spaces) for cls in STRATEGIES.values()]


def test_list_spaces_and_protocols():
    (spaces,) = run_cli("list", "spaces", "--json").json_lines()
    assert [s["name"] for s in spaces] == ["cell", "fbnet", "nasrl-macro", "nasnet", "metaqnn", "enas-macro"]
    (protocols,) = run_cli("list", "protocols", "--json").json_lines()
    assert [p["name"] for p in protocols] == builtin_protocols() == ["full", "proxy", "smoke"]
    assert all(p["hash"] == load_protocol(p["name"]).hash for p in protocols)
    text = run_cli("list", "protocols").out
    assert f"smoke    {load_protocol('smoke').hash}" in text


def test_list_genotypes(cell_space, smoke):
    result = run_cli("list", "genotypes", "--protocol", "smoke", "--json")
    assert result.code == 0
    (rows,) = result.json_lines()
    zoo = cell_space.zoo()
    assert [r["name"] for r in rows] == list(zoo)
    for r in rows:
        entry = zoo[r["name"]]
        model = cell_space.build(entry.arch, smoke.final.network)
        assert r["params"] == count_params(model)
        assert r["published_params_m"] == entry.published_params_m
        assert Genotype.from_dict(r["genotype"]) == entry.arch
        assert r["channels"] == 4 and r["cells"] == 3 and r["flops"] > 0


def test_describe_darts_v2_under_the_full_protocol():
    result = run_cli("describe", "DARTS_V2", "--protocol", "full")
    assert result.code == 0
    assert "3.349M params" in result.out
    assert "36 channels, 20 cells" in result.out
    assert "published: 3.3M params" in result.out
    assert "  n5 = skip_connect(c_{k-2}) + dil_conv_3x3(n2)" in result.out


def test_describe_a_genotype_file(tmp_path, cell_space, smoke):
    path = tmp_path / "mine.json"
    genotype = cell_space.zoo()["PC_DARTS"].arch
    path.write_text(genotype.to_json())
    (summary,) = run_cli("describe", str(path), "--protocol", "smoke", "--json").json_lines()
    assert summary["name"] == str(path) and summary["protocol"] == "smoke"
    assert Genotype.from_dict(summary["genotype"]) == genotype
    assert summary["params"] == count_params(cell_space.build(genotype, smoke.final.network))
    assert "published_params_m" not in summary
    text = run_cli("describe", str(path), "--protocol", "smoke")
    assert text.code == 0 and text.out.startswith(str(genotype)) and "published" not in text.out


def test_describe_gdas_frc_under_a_valid_protocol_of_6_channels(tmp_path):
    """The protocol check accepts any even channel count >= 2; describing (or listing) the zoo
    under such a protocol must work, or be refused with the one-line error, never crash."""
    protocol = tmp_path / "six.toml"
    protocol.write_text('base = "smoke"\nseeds = [0]\n[final]\nchannels = 6\n')
    assert load_protocol(str(protocol)).final.channels == 6
    result = run_cli("describe", "GDAS_FRC", "--protocol", protocol)
    if result.code == 2:
        assert len(result.err.splitlines()) == 1 and result.err.startswith("nasbench: error: ")
    else:
        assert result.code == 0 and "6 channels" in result.out


# -- bad input -------------------------------------------------------------------------

def _bad_inputs(tmp_path, store, data_path):
    bad_protocol = tmp_path / "bad.toml"
    bad_protocol.write_text('base = "smoke"\nseeds = [0]\n[final]\nepochs = "many"\n')
    bad_genotype = tmp_path / "bad.json"
    bad_genotype.write_text('{"normal": [["sep_conv_3x3", 0]], "normal_concat": [2]')
    wrong_arrays = tmp_path / "wrong.npz"
    np.savez(wrong_arrays, images=np.zeros((2, 32, 32, 3), np.uint8), labels=np.zeros(2, np.int64))
    run = ("run", "--store", store, "--no-progress", "--json")
    return {
        "unknown-method": ((*run, "--method", "random,nope", "--protocol", "smoke", "--data", data_path),
                           "unknown method 'nope'"),
        "unknown-protocol": ((*run, "--method", "random", "--protocol", "nope", "--data", data_path),
                             "unknown protocol 'nope'"),
        "malformed-protocol": ((*run, "--method", "random", "--protocol", bad_protocol, "--data", data_path),
                               "final.epochs must be an integer"),
        "unknown-genotype": (("describe", "NotANet", "--protocol", "smoke"), "unknown genotype 'NotANet'"),
        "malformed-genotype": (("describe", bad_genotype, "--protocol", "smoke"), "not valid JSON"),
        "wrong-npz": ((*run, "--method", "random", "--protocol", "smoke", "--data", wrong_arrays),
                      "missing arrays x_train, y_train, x_test, y_test"),
        "unknown-device": ((*run, "--method", "random", "--protocol", "smoke", "--data", data_path,
                            "--device", "tpu"), "--device must be auto, cpu or cuda"),
        "no-method": ((*run, "--method", ",", "--protocol", "smoke", "--data", data_path),
                      "--method needs at least one method name"),
        "unknown-list-protocol": (("list", "genotypes", "--protocol", "nope"), "unknown protocol 'nope'"),
        "protocol-too-big": ((*run, "--method", "random-arch", "--protocol", "full", "--data", data_path),
                             "the protocol needs 50000 training"),
    }


BAD = ["unknown-method", "unknown-protocol", "malformed-protocol", "unknown-genotype", "malformed-genotype",
       "wrong-npz", "unknown-device", "no-method", "unknown-list-protocol", "protocol-too-big"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_exit_2_and_leaves_the_store(case, smoke_store, tmp_path, data_path):
    store = smoke_store.copy_to(tmp_path)
    before = sha256(store)
    argv, words = _bad_inputs(tmp_path, store, data_path)[case]
    result = run_cli(*argv)
    assert result.code == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("nasbench: error: "), result.err
    assert words in lines[0]
    assert sha256(store) == before


def test_bad_input_via_subprocess(smoke_store, tmp_path, data_path):
    store = smoke_store.copy_to(tmp_path)
    before = sha256(store)
    done = subprocess.run([sys.executable, "-m", "nasbench", "run", "--method", "nope", "--protocol", "smoke",
                           "--store", str(store), "--data", str(data_path)],
                          capture_output=True, text=True, cwd=REPO_ROOT, env={**os.environ, **SUBPROCESS_ENV},
                          timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [f"nasbench: error: unknown method 'nope'; known: {', '.join(sorted(STRATEGIES))}"]
    assert sha256(store) == before
