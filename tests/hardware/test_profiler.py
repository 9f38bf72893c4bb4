"""Profiling for real on this CPU at smoke size: the accuracy figures and the latency
predictor, a whole table build with validation for both backends, `nasbench cost`, refusals,
and the report's cost-table and latency sections."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from nasbench.cli import main
from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.counting import count_flops, count_params
from nasbench.hardware.measure import MeasureSettings
from nasbench.hardware.profiler import (
    ArchMeasurement,
    accuracy_figures,
    final_network,
    fit_predictor,
)
from nasbench.hardware.table import (
    CostTable,
    LatencyPredictor,
    LatencyStats,
    MissingEntryError,
)
from nasbench.protocol import load_protocol
from nasbench.provenance import device_fingerprint
from nasbench.spaces import get_space
from nasbench.spaces.cell.ops import OPERATIONS

FAST = ["--rounds", "1", "--min-time", "0.002", "--calibrate", "12", "--validate", "5", "--max-time", "0", "--later", "2",
        "--no-progress"]


def test_accuracy_figures_by_hand():
    figures = accuracy_figures([1.04, 2.18, 2.9, 4.0, 7.5], [1.0, 2.0, 3.0, 4.0, 5.0])
    errors = [0.04, 0.09, -0.1 / 3, 0.0, 0.5]
    assert figures["within_5pct"] == 0.6 and figures["within_10pct"] == 0.8
    assert figures["mape_pct"] == pytest.approx(100 * sum(map(abs, errors)) / 5)
    assert figures["bias_pct"] == pytest.approx(100 * sum(errors) / 5)
    # sorted |errors| 0, 0.033, 0.04, 0.09, 0.5: the 95th percentile interpolates at position 3.8
    assert figures["p95_abs_error_pct"] == pytest.approx(100 * (0.09 + 0.8 * (0.5 - 0.09)))
    assert figures["kendall_tau"] == pytest.approx(1.0) and figures["spearman_rho"] == pytest.approx(1.0)


def test_a_constant_prediction_ranks_nothing_and_warns_of_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's ConstantInputWarning would fail the test
        figures = accuracy_figures([2.0, 2.0, 2.0], [1.9, 2.0, 2.2])
    assert np.isnan(figures["kendall_tau"]) and np.isnan(figures["spearman_rho"]) and figures["within_10pct"] == 1.0


def _arch_measurement(latency_ms: float, op_sums_ms: dict[str, float], other_sum_ms: float, harness_ms: float,
                      parts: int) -> ArchMeasurement:
    part_sum = sum(op_sums_ms.values()) + other_sum_ms + harness_ms
    return ArchMeasurement({}, LatencyStats(latency_ms, latency_ms, latency_ms, latency_ms, 1), None, part_sum,
                           part_sum + (parts - 1) * harness_ms, op_sums_ms, other_sum_ms, 0, 0)


def test_the_predictor_stays_affine_where_per_operation_scales_only_fit_noise():
    rng = np.random.default_rng(1)
    calibration = []
    for _ in range(12):
        sums = {name: float(rng.uniform(0.5, 3.0)) for name in ("sep_conv_3x3", "max_pool_3x3", "skip_connect", "avg_pool_3x3")}
        latency = 1.1 * (sum(sums.values()) + 4.0) + 2.0
        calibration.append(_arch_measurement(latency * (1 + rng.normal(0, 0.01)), sums, 4.0, 0.0, 40))
    predictor = fit_predictor(calibration, 0.0)
    assert predictor.kind == "affine" and predictor.op_scales == {}
    assert predictor.loo_mape_pct["affine"] < predictor.loo_mape_pct["per_operation"]
    assert predictor.scale == pytest.approx(1.1, rel=0.05)


def test_the_predictor_never_scales_a_part_below_zero():
    """Calibration latencies that fall as an operation's share grows (noise, on a loaded
    machine) fit that operation a negative scale by plain least squares; the table's
    predictor clips it at 0 and so predicts no negative latency for a network of it alone.
    Latencies that fall with the whole sum clip the affine scale the same way."""
    rng = np.random.default_rng(2)
    calibration = []
    for _ in range(12):
        sums = {name: float(rng.uniform(0.5, 3.0)) for name in ("sep_conv_3x3", "max_pool_3x3", "skip_connect")}
        latency = 1.5 * sums["sep_conv_3x3"] + 1.2 * sums["max_pool_3x3"] - 0.8 * sums["skip_connect"] + 6.0
        calibration.append(_arch_measurement(latency, sums, 4.0, 0.0, 40))
    predictor = fit_predictor(calibration, 0.0)
    assert predictor.kind == "per_operation"
    assert predictor.op_scales["skip_connect"] == 0.0 and min(predictor.op_scales.values()) >= 0
    skips_ms = 30.0  # a network of skip connections alone (plain least squares: 6 - 0.8 * 30 ms)
    assert predictor.offset_ms + predictor.scale * 4.0 + predictor.op_scales["skip_connect"] * skips_ms > 0
    falling = [_arch_measurement(10.0 - a.part_sum_ms / 4, a.op_sums_ms, 4.0, 0.0, 40) for a in calibration]
    affine = fit_predictor(falling[:5], 0.0)
    assert affine.kind == "affine" and affine.scale == 0.0
    assert affine.offset_ms == pytest.approx(np.mean([a.latency.p50_ms for a in falling[:5]]))


def test_the_predictor_recovers_per_operation_scales():
    """Whole networks made of three operations that cost 1.5x, 1.2x and 1.0x their
    isolated time, plus 2 ms of network overhead: the fit finds exactly those."""
    rng = np.random.default_rng(0)
    truth = {"sep_conv_3x3": 1.5, "max_pool_3x3": 1.2, "skip_connect": 1.0}
    calibration = []
    for _ in range(12):
        sums = {name: float(rng.uniform(0.5, 3.0)) for name in truth}
        others = 4.0  # identical in every architecture, like the stem and the head
        latency = sum(truth[n] * v for n, v in sums.items()) + others + 2.0
        calibration.append(_arch_measurement(latency, sums, others, 0.01, 40))
    predictor = fit_predictor(calibration, 0.01)
    assert predictor.kind == "per_operation" and predictor.fitted_on == 12
    assert predictor.op_scales == pytest.approx(truth, abs=1e-9)
    # parts common to every architecture are not identifiable apart from the offset; their total is
    assert predictor.offset_ms + predictor.scale * 4.0 == pytest.approx(6.0, abs=1e-9)
    assert predictor.loo_mape_pct["per_operation"] < 1e-9 < predictor.loo_mape_pct["affine"]
    assert fit_predictor(calibration[:5], 0.01).kind == "affine"  # too few for 3 scales and an offset
    assert fit_predictor(calibration[:1], 0.01) == LatencyPredictor("sum", 1.0, 0.01)


@pytest.fixture(scope="module", params=["torch", "onnxruntime"])
def profiled(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"tables-{request.param}")
    batches = "1,2" if request.param == "torch" else "1"  # two batch sizes once: two tables
    code = main(["profile", "--protocol", "smoke", "--device", "cpu", "--backend", request.param, "--out", str(out),
                 "--batch-size", batches, *FAST])
    assert code == 0
    tables = sorted(p for p in out.glob("*/*.json") if not p.name.endswith(".validation.json"))
    assert [p.name for p in tables] == [f"cell-smoke-{request.param}-t1-b{b}.json" for b in batches.split(",")]
    return request.param, tables[0], out


@pytest.mark.slow
def test_profile_writes_a_complete_table(profiled):
    backend, path, _ = profiled
    assert path.parent.name == device_fingerprint(torch.device("cpu"))
    assert path.name == f"cell-smoke-{backend}-t1-b1.json"
    table = CostTable.load(path)
    space = get_space("cell")
    assert set(table.entries) == set(space.all_cost_parts(final_network(load_protocol("smoke"))))
    for entry in table.entries.values():
        assert entry.latency.count >= MeasureSettings().min_reps and 0 < entry.latency.p10_ms <= entry.latency.p50_ms <= entry.latency.p90_ms
    for field in ("device", "device_fingerprint", "cpu_model", "cores", "threads", "backend", "backend_version",
                  "torch_version", "dtype", "batch_size", "memory_format", "date", "measurement"):
        assert field in table.conditions, field
    assert table.conditions["backend"] == backend and table.conditions["threads"] == 1
    predictor = table.predictor
    assert predictor.fitted_on == 12 and set(predictor.loo_mape_pct) == {"affine", "per_operation"}
    assert predictor.kind == min(predictor.loo_mape_pct, key=predictor.loo_mape_pct.get)
    if predictor.kind == "per_operation":
        assert set(predictor.op_scales) <= set(OPERATIONS) and len(predictor.op_scales) >= 5
    assert table.build_seconds > 0 and table.harness_ms > 0


@pytest.mark.slow
def test_the_operations_that_look_free_are_measured(profiled):
    _, path, _ = profiled
    table = CostTable.load(path)
    by_id = {k.id: e for k, e in table.entries.items()}
    assert by_id["op:none:c4>4:s32:x1:n1"].latency.p50_ms > 0
    assert by_id["combine:add:c4>4:s32:x1:n2"].latency.p50_ms > 0
    assert by_id["combine:concat:c4>16:s32:x1:n4"].mac_elements == 2 * 16 * 32 * 32
    strided_skip = by_id["op:skip_connect:c8>8:s32:x2:n1"]
    assert strided_skip.params > 0 and strided_skip.flops > 0  # a factorized reduce


@pytest.mark.slow
def test_profile_validation_file(profiled):
    _, path, _ = profiled
    validation = json.loads(path.with_suffix(".validation.json").read_text())
    assert validation["validation_archs"] == 5 and len(validation["architectures"]) == 5
    assert set(validation["predictors"]) == {"naive_sum", "part_sum", "table", "affine_sum", "flops_linear",
                                             "flops_mac_linear"}
    for figures in validation["predictors"].values():
        assert figures["n"] == 5 and 0 <= figures["within_10pct"] <= 1 and figures["mape_pct"] >= 0
    for arch in validation["architectures"]:
        assert arch["latency"]["p50_ms"] > 0 and arch["part_sum_ms"] > 0
    later = validation["later_process"]  # two validation networks again, in a separate process after the build
    assert later["n"] == 2 and later["networks"] == "validation" and later["speed_factor"] > 0
    assert set(later["predictors"]) == {"table", "table_unscaled"} and later["repeatability"]["n"] == 2
    for arch in later["architectures"]:
        assert arch["predicted_now_ms"] == pytest.approx(arch["predicted_ms"] * later["speed_factor"])
        assert arch["measured_ms"] > 0 and arch["measured_raw_ms"] > 0
    table = CostTable.load(path)
    assert table.noise["across_processes"] == later["repeatability"] and table.noise["tolerance"] == 0.1
    assert table.reference_speed["ms"] > 0 and table.drift["measurements"] > 0
    assert table.measurement_stop["rounds"] == 1 and table.measurement_stop["reason"] == "time limit"
    assert any("precision unknown" in w for w in table.warnings)  # one round: its noise is not known
    assert validation["warnings"] == table.warnings


@pytest.mark.slow
def test_one_table_per_batch_size(profiled):
    backend, path, _ = profiled
    if backend != "torch":
        pytest.skip("built for one batch size")
    b1, b2 = CostTable.load(path), CostTable.load(path.with_name(path.name.replace("-b1.", "-b2.")))
    assert (b1.conditions["batch_size"], b2.conditions["batch_size"]) == (1, 2)
    assert json.loads(path.with_name(path.name.replace("-b1.", "-b2.validation.")).read_text())["later_process"]["n"] == 2
    assert set(b1.entries) == set(b2.entries)  # the same parts, costing more per call at batch 2
    assert sum(e.latency.p50_ms for e in b2.entries.values()) > sum(e.latency.p50_ms for e in b1.entries.values())


@pytest.mark.slow
def test_cost_command_matches_the_network_counts_and_measures(profiled, capsys):
    _, path, _ = profiled
    assert main(["cost", "DARTS_V2", "--table", str(path), "--measure", "--max-time", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    network = get_space("cell").build(get_space("cell").zoo()["DARTS_V2"].arch, final_network(load_protocol("smoke")))
    assert result["params"] == count_params(network) and result["flops"] == count_flops(network)
    assert result["mac_bytes"] == 4 * result["mac_elements"]
    assert result["latency_ms_predicted"] > 0 and result["latency_ms_measured_p50"] > 0
    assert result["latency_ms_predicted_now"] == pytest.approx(result["latency_ms_predicted"] * result["speed_factor"])
    assert result["speed_factor"] == pytest.approx(result["reference_ms_now"] / result["reference_ms_table"])
    assert result["prediction_error_pct"] == pytest.approx(
        100 * (result["latency_ms_predicted_now"] - result["latency_ms_measured_p50"]) / result["latency_ms_measured_p50"])
    assert result["prediction_error_unscaled_pct"] == pytest.approx(
        100 * (result["latency_ms_predicted"] - result["latency_ms_measured_raw_p50"]) / result["latency_ms_measured_raw_p50"])
    measurement = result["measurement"]  # the default 9 rounds, no time beyond them: its spread and precision
    assert measurement["rounds"] == 9 and measurement["reason"] in ("precision", "time limit")
    low, high = measurement["rounds_p50_p10_p90_ms"]
    assert 0 < low <= high and measurement["network_precision"] >= 0


@pytest.mark.slow
def test_cost_refuses_to_measure_a_table_of_another_device(profiled, tmp_path, capsys):
    _, path, _ = profiled
    raw = json.loads(path.read_text())
    raw["conditions"]["device_fingerprint"] = "cpu-elsewhere-0c"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(raw))
    assert main(["cost", "DARTS_V2", "--table", str(other)]) == 0  # predicting is fine
    capsys.readouterr()
    assert main(["cost", "DARTS_V2", "--table", str(other), "--measure"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "measured on cpu-elsewhere-0c" in err[0]


@pytest.mark.slow
def test_report_shows_the_cost_tables(profiled, tmp_path):
    backend, path, out = profiled
    store = tmp_path / "empty.sqlite"
    from nasbench.store import Store

    Store(store).close()
    assert main(["report", "--store", str(store), "--out", str(tmp_path / "reports"), "--tables", str(out)]) == 0
    markdown = (tmp_path / "reports" / "results.md").read_text()
    assert "## Cost tables" in markdown and path.name in markdown and "flops_mac_linear" in markdown
    assert (tmp_path / "reports" / "cost_tables.csv").is_file()


@pytest.mark.slow
def test_expected_latency_with_one_hot_weights_equals_the_exact_latency(profiled):
    _, path, _ = profiled
    space = get_space("cell")
    model = CostModel(CostTable.load(path), space, "latency_ms")
    genotype = space.zoo()["PC_DARTS"].arch
    assert model.expected(space.arch_weights(genotype)).item() == pytest.approx(model.cost(genotype), rel=1e-9)


@pytest.mark.slow
def test_report_gives_each_method_its_latency_on_the_profiled_device(profiled, smoke_store, tmp_path):
    backend, path, out = profiled
    assert main(["report", "--store", str(smoke_store.path), "--out", str(tmp_path), "--tables", str(out)]) == 0
    table = CostTable.load(path)
    column = f"latency_ms cell {table.device_fingerprint} {backend} t1 b1"
    summary = pd.read_csv(tmp_path / "results.csv").set_index("method")
    model, space = CostModel(table, get_space("cell"), "latency_ms"), get_space("cell")
    runs_csv = pd.read_csv(tmp_path / "runs.csv")
    for method in runs_csv[runs_csv["space"] != "cell"]["method"].unique():  # a cell table costs no other space
        assert np.isnan(summary.loc[method, column])
    for method, runs in runs_csv[runs_csv["space"] == "cell"].groupby("method"):
        genotypes = [space.from_dict(json.loads(g)) for g in runs["genotype_json"]]
        if method == "pnas":  # 2 candidates on smoke: cells of 2 nodes, whose parts no table holds
            assert all(g.nodes < 4 for g in genotypes) and np.isnan(summary.loc[method, column])
            with pytest.raises(MissingEntryError):
                model.cost(genotypes[0])
            continue
        expected = np.mean([model.cost(g) for g in genotypes])
        assert summary.loc[method, column] == pytest.approx(expected, rel=1e-5)
    markdown = (tmp_path / "results.md").read_text()
    assert f"space `cell`, device `{table.device_fingerprint}`\n\n| Method " in markdown
    assert f"| {backend} t1 b1 |" in markdown
