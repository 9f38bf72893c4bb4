"""The trade-off rows from runs as the report reads them: which runs sit together, where a
row's predicted latency comes from, and the figure drawn where there is a latency."""
from __future__ import annotations

import json

import matplotlib.image
import pandas as pd

from nasbench.report.tradeoff import tradeoff, tradeoff_markdown

TABLE = "latency_ms cell cpu-y torch t1 b1"
"""A measured table's predicted latency, as :func:`~nasbench.report.latency.with_device_costs` adds it."""
LATENCY = {"metric": "latency_ms", "target": 2.5, "weight": 1.0, "form": "add-linear", "exponent": 1.0,
           "table": "cost_tables/cpu-x/cell.json", "device": "cpu-x", "achieved": 2.4, "measured_ms_p50": 2.7}
PER_EDGE = {"metric": "params", "target": None, "weight": 0.01, "form": "per-edge-log", "exponent": 1.0,
            "table": None, "device": None, "achieved": 3000.0, "costs": {"params": 3000.0}}


def run(method: str, constraint: dict | None, latency: float | None, seed: int = 0, space: str = "cell") -> dict:
    constrained = constraint or {}
    return {"protocol": "p", "protocol_hash": "h", "data": "d", "space": space, "method": method, "seed": seed,
            "variant": "" if constraint is None else f"v{constraint['weight']}", "params": 1e6, "flops": 2e6,
            "test_acc": 0.9, "search_seconds": 60.0, "protocol_json": "{}", "genotype_json": "{}",
            "details_json": json.dumps({} if constraint is None else {"constraint": constraint}),
            "constraint_metric": constrained.get("metric"), "constraint_target": constrained.get("target"),
            "constraint_achieved": constrained.get("achieved"), "constraint_device": constrained.get("device"),
            "constraint_measured": constrained.get("measured_ms_p50"), TABLE: latency}


RUNS = pd.DataFrame([
    run("proxylessnas", LATENCY, 2.2), run("proxylessnas", None, 3.1), run("proxylessnas", None, 3.3, space="fbnet"),
    run("snas", {**PER_EDGE, "weight": 0.1}, None), run("snas", PER_EDGE, 1.5), run("snas", None, 1.9),
    run("darts", None, 1.0),
])


def test_constrained_runs_sit_with_their_methods_unconstrained_runs_on_the_same_space_a_sweep_in_order():
    rows = tradeoff(RUNS, [])
    assert list(zip(rows["method"], rows["constraint"])) == [
        ("proxylessnas", "unconstrained"), ("proxylessnas", "latency ≤ 2.5 ms, λ 1, add-linear"),
        ("snas", "unconstrained"), ("snas", "params, λ 0.01, per-edge-log"), ("snas", "params, λ 0.1, per-edge-log")]
    assert rows["space"].eq("cell").all()  # neither darts (never constrained) nor proxylessnas on fbnet
    assert rows["target"].isna().tolist() == [True, False, True, True, True] and rows["target"][1] == 2.5
    assert rows["setting"].tolist()[1:4] == ["latency, λ 1, add-linear", "unconstrained", "params, λ 0.01, per-edge-log"]


def test_a_latency_constraint_predicts_by_its_own_table_the_others_by_the_reports():
    rows = tradeoff(RUNS, []).set_index(["method", "constraint"])
    latency = rows.loc["proxylessnas", "latency ≤ 2.5 ms, λ 1, add-linear"]
    assert (latency["predicted_ms"], latency["device"], latency["measured_ms"]) == (2.4, "cpu-x", 2.7)
    free = rows.loc["proxylessnas", "unconstrained"]
    assert (free["predicted_ms"], free["device"]) == (3.1, "cpu-y") and pd.isna(free["measured_ms"])
    assert rows.loc[("snas", "params, λ 0.01, per-edge-log"), "predicted_ms"] == 1.5
    unpredicted = rows.loc["snas", "params, λ 0.1, per-edge-log"]
    assert pd.isna(unpredicted["predicted_ms"]) and pd.isna(unpredicted["device"])
    assert rows["mac_elements"].isna().all()  # "{}" is no protocol to count on


def test_the_figure_draws_the_rows_with_a_latency(tmp_path):
    text, figures = tradeoff_markdown(tradeoff(RUNS, []), tmp_path)
    assert [f.name for f in figures] == ["tradeoff_p_h_d.png"] and f"![test error against latency]({figures[0].name})" in text
    assert matplotlib.image.imread(figures[0]).shape[2] == 4
    row = next(line for line in text.splitlines() if "λ 0.01, per-edge-log" in line)
    assert [cell.strip() for cell in row.strip("|").split("|")][4:] == [
        "10.00", "1.000", "2.0", "–", "1.500", "–", "60", "cpu-y"]  # test error, params, FLOPs, MAC, latency
