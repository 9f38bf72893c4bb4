"""`nasbench report` on the session's smoke store: the files it writes (also as JSON lines), its
numbers against the store's, its Markdown, its runs table, a missing store, and cost tables
labelled this machine's or another device's."""
from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import run_cli

from nasbench.hardware.profiler import counts_table
from nasbench.provenance import device_fingerprint
from nasbench.store import Store
from nasbench.strategies import STRATEGIES


@pytest.fixture(scope="module")
def report(smoke_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    no_tables = tmp_path_factory.mktemp("no-cost-tables")  # the repository's own tables are not under test here
    result = run_cli("report", "--store", smoke_store.path, "--out", out, "--tables", no_tables)
    assert result.code == 0
    return out, result


def test_report_writes_its_files(report, smoke, smoke_records):
    out, result = report
    figure = f"anytime_smoke_{smoke.hash}_{smoke_records[0]['data']}.png"  # random and evolution have trials
    written = result.out.splitlines()
    assert written[:7] == [str(out / name) for name in (
        "results.md", "results.csv", "runs.csv", "anytime.csv", figure, "supernet_history.csv",
        "controller_history.csv")]
    drawings = [line for line in written[7:] if line.endswith(".svg")]
    assert len(drawings) == len(smoke_records) and all(line.startswith(str(out / "architectures")) for line in drawings)
    methods = {r["method"] for r in smoke_records}
    pages = written[7 + len(drawings):]
    assert pages[0] == str(out / "site" / "index.html")
    assert sorted(pages[1:]) == sorted(str(out / "site" / "methods" / f"{method}.html") for method in methods)


def test_report_json_names_each_written_file(report, smoke_store, tmp_path):
    _, text = report
    (tmp_path / "no-tables").mkdir()
    result = run_cli("report", "--store", smoke_store.path, "--out", tmp_path / "out", "--tables", tmp_path / "no-tables",
                     "--json")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    records = [json.loads(line) for line in lines]
    assert [Path(r["path"]).name for r in records] == [Path(line).name for line in text.out.splitlines()]
    assert all(Path(r["path"]).is_relative_to(tmp_path / "out") and Path(r["path"]).is_file() for r in records)
    kinds = [r["kind"] for r in records]
    assert kinds[:7] == ["markdown", "csv", "csv", "csv", "png", "csv", "csv"]
    assert set(kinds[7:]) == {"svg", "html"}


def test_report_labels_this_machines_cost_tables_and_another_devices(tmp_path, cell_space, smoke):
    store = tmp_path / "empty.sqlite"
    Store(store).close()
    here, elsewhere = device_fingerprint(torch.device("cpu")), "cpu-elsewhere-f0m0s0-0c"
    for fingerprint in (here, elsewhere):
        table = counts_table(cell_space, smoke)
        table.conditions.update(device=f"the {fingerprint} CPU", device_fingerprint=fingerprint, device_type="cpu",
                                backend="torch", threads=1, batch_size=1)
        table.save(tmp_path / "tables")
    out = tmp_path / "out"
    result = run_cli("report", "--store", store, "--out", out, "--tables", tmp_path / "tables", "--json")
    assert result.code == 0, result.err
    records = result.json_lines()
    assert [(Path(r["path"]).name, r["kind"]) for r in records] == [
        ("results.md", "markdown"), ("results.csv", "csv"), ("runs.csv", "csv"), ("cost_tables.csv", "csv")]
    assert all(Path(r["path"]).parent == out and Path(r["path"]).is_file() for r in records)
    rows = pd.read_csv(out / "cost_tables.csv").set_index("device_fingerprint")
    assert rows.loc[here, "machine"] == "this machine" and rows.loc[elsewhere, "machine"] == "another device"
    markdown = (out / "results.md").read_text()
    assert f"**this machine** (`{here}`): the {here} CPU, torch" in markdown
    assert f"**another device** (`{elsewhere}`): the {elsewhere} CPU, torch" in markdown
    assert f"the machine that wrote this report: `{here}`" in markdown


def test_report_numbers_equal_the_store(report, smoke_rows, smoke):
    out, _ = report
    table = pd.read_csv(out / "results.csv").set_index("method")
    assert sorted(table.index) == sorted(STRATEGIES)
    errors = {m: [100 * (1 - r["test_acc"]) for r in sorted(smoke_rows, key=lambda r: r["seed"]) if r["method"] == m]
              for m in STRATEGIES}
    # precondition for a discriminating check of the sample standard deviation (ddof=1)
    assert any(len(set(values)) > 1 for values in errors.values()), errors
    for method, values in errors.items():
        line = table.loc[method]
        assert len(values) == 2 and line["n"] == 2 and line["seeds"] == "0,1"
        assert line["test_error_mean"] == pytest.approx(statistics.mean(values), rel=1e-5)
        assert line["test_error_std"] == pytest.approx(statistics.stdev(values), rel=1e-5, abs=1e-9)
        params = [r["params"] for r in smoke_rows if r["method"] == method]
        assert line["params_m"] == pytest.approx(np.mean(params) / 1e6, rel=1e-5)
        assert line["protocol"] == "smoke" and line["protocol_hash"] == smoke.hash
    assert table.loc["random", "delta_vs_random"] == pytest.approx(
        statistics.mean(errors["random"]) - statistics.mean(errors["random-arch"]), rel=1e-5, abs=1e-6)
    assert table.loc["random-arch", "delta_vs_random"] == 0
    assert table.loc["random", "published_test_error"] == 3.29
    assert table.loc["random", "published_params_m"] == 3.2
    assert pd.isna(table.loc["random-arch", "published_test_error"])
    val = [r["val_acc"] for r in smoke_rows if r["method"] == "random"]
    assert table.loc["random", "val_acc_mean"] == pytest.approx(np.mean(val), rel=1e-5)


def test_report_markdown_shows_the_same_numbers(report, smoke_rows, smoke_store):
    out, _ = report
    text = (out / "results.md").read_text()
    assert f"from the store `{smoke_store.path}` ({len(smoke_rows)} finished runs)" in text
    lines = text.splitlines()
    for method in STRATEGIES:
        values = [100 * (1 - r["test_acc"]) for r in smoke_rows if r["method"] == method]
        (line,) = [line for line in lines if line.startswith(f"| {method} ") and "±" in line]  # its main table row
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == method and cells[1] == STRATEGIES[method].strategy_class
        assert cells[3] == f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} (2)"


def test_report_runs_csv_has_every_finished_run(report, smoke_rows):
    out, _ = report
    runs = pd.read_csv(out / "runs.csv").set_index("id")
    assert sorted(runs.index) == sorted(r["id"] for r in smoke_rows)
    for row in smoke_rows:
        assert runs.loc[row["id"], "test_acc"] == pytest.approx(row["test_acc"], rel=1e-5)
        assert runs.loc[row["id"], "method"] == row["method"] and runs.loc[row["id"], "seed"] == row["seed"]
    assert "state_json" not in runs.columns and "software" in runs.columns


def test_report_of_missing_store(tmp_path):
    result = run_cli("report", "--store", tmp_path / "none.sqlite", "--out", tmp_path / "out")
    assert result.code == 2
    assert result.err.splitlines() == [f"nasbench: error: no results store at {tmp_path / 'none.sqlite'}; "
                                       "run `nasbench run ...` first or pass --store PATH"]
