"""Cost tables: the file format (round trip, the units of its entries), the latency predictor
applied to a table, and the refusals (a missing entry naming the profile command, a network of
another size, another device or backend, a counts-only table, files that are not tables)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from nasbench.errors import NasbenchError
from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.table import (
    CostTable,
    LatencyPredictor,
    LatencyStats,
    MissingEntryError,
    TableEntry,
)
from nasbench.types import PartKey


def _measured(cell_counts: CostTable) -> CostTable:
    """A copy of the counts table with made-up latencies: 1 ms per part plus 0.001 ms per
    FLOP-thousand (only the file format and arithmetic are under test here)."""
    entries = {k: dataclasses.replace(e, latency=LatencyStats(0.9, 1.0 + e.flops / 1e6, 1.2, 1.05, 10))
               for k, e in cell_counts.entries.items()}
    conditions = {"device_fingerprint": "cpu-test-0c", "device_type": "cpu", "backend": "torch", "threads": 1,
                  "batch_size": 1, "device": "test"}
    return dataclasses.replace(cell_counts, entries=entries, conditions=conditions, harness_ms=0.25,
                               predictor=LatencyPredictor("affine", 1.5, 2.0, 10), build_seconds=1.0)


def test_table_round_trips_through_its_file(cell_counts, tmp_path):
    table = _measured(cell_counts)
    path = table.save(tmp_path)
    assert path == tmp_path / "cpu-test-0c" / "cell-smoke-torch-t1-b1.json"
    loaded = CostTable.load(path)
    assert loaded.entries == table.entries
    assert loaded.predictor == table.predictor and loaded.harness_ms == 0.25
    assert json.loads(path.read_text())["schema"] == "nasbench.cost_table/1"


def test_latency_cost_applies_the_predictor(cell_space, cell_counts):
    table = _measured(cell_counts)
    model = CostModel(table, cell_space, "latency_ms")
    genotype = cell_space.zoo()["DARTS_V2"].arch
    parts = cell_space.cost_parts(genotype, model.config)
    by_hand = 1.5 * sum(table.entries[k].latency.p50_ms - 0.25 for k in parts) + 2.0
    assert model.cost(genotype) == pytest.approx(by_hand)
    assert model.expected(cell_space.arch_weights(genotype)).item() == pytest.approx(by_hand)
    assert model.within(genotype, by_hand + 1e-9) and not model.within(genotype, by_hand - 1e-3)


def test_latency_cost_scales_each_operation_by_its_own_factor(cell_space, cell_counts, tmp_path):
    predictor = LatencyPredictor("per_operation", 1.5, 2.0, 10, {"sep_conv_3x3": 3.0, "skip_connect": 0.5})
    table = dataclasses.replace(_measured(cell_counts), predictor=predictor)
    model = CostModel(table, cell_space, "latency_ms")
    genotype = cell_space.zoo()["DARTS_V2"].arch
    scales = {"sep_conv_3x3": 3.0, "skip_connect": 0.5}
    by_hand = 2.0 + sum((scales.get(k.name, 1.5) if k.kind == "op" else 1.5) * (table.entries[k].latency.p50_ms - 0.25)
                        for k in cell_space.cost_parts(genotype, model.config))
    assert model.cost(genotype) == pytest.approx(by_hand)
    assert model.expected(cell_space.arch_weights(genotype)).item() == pytest.approx(by_hand)
    assert CostTable.load(table.save(tmp_path)).predictor == predictor


def test_a_missing_entry_names_the_profile_command(cell_space, cell_counts):
    table = _measured(cell_counts)
    entries = dict(table.entries)
    removed = PartKey("op", "sep_conv_3x3", 4, 4, 32, 1)
    del entries[removed]
    table = dataclasses.replace(table, entries=entries)
    with pytest.raises(MissingEntryError, match=r"no entry for part op:sep_conv_3x3:c4>4:s32:x1:n1.*nasbench profile "
                                                r"--space cell --protocol smoke --device cpu --backend torch"):
        table.entry(removed)
    # an incomplete table is refused whole, before any architecture is costed with it
    with pytest.raises(MissingEntryError, match=r"the smoke table lacks 1 of the cell space's parts \(e.g. "
                                                r"op:sep_conv_3x3:c4>4:s32:x1:n1\); measure a complete one with "
                                                r"`nasbench profile --space cell --protocol smoke --device cpu"):
        CostModel(table, cell_space, "latency_ms")


def test_a_network_of_another_size_is_missing_from_the_table(cell_space, cell_counts):
    bigger = dataclasses.replace(cell_counts, network={"channels": 8, "cells": 3})
    with pytest.raises(MissingEntryError):
        CostModel(bigger, cell_space, "flops").cost(cell_space.zoo()["DARTS_V2"].arch)


def test_tables_of_another_device_or_backend_are_refused(cell_counts):
    table = _measured(cell_counts)
    table.require(device_fingerprint="cpu-test-0c", backend="torch")
    with pytest.raises(NasbenchError, match="measured on cpu-test-0c, not on cuda-h100-sm90"):
        table.require(device_fingerprint="cuda-h100-sm90")
    with pytest.raises(NasbenchError, match="backend torch, not onnxruntime"):
        table.require(backend="onnxruntime")


def test_a_counts_only_table_has_no_latency(cell_space, cell_counts):
    with pytest.raises(NasbenchError, match="holds no latency measurements"):
        CostModel(cell_counts, cell_space, "latency_ms")


@pytest.mark.parametrize("content, message", [
    ("not json", "invalid JSON"),
    ('{"schema": "other/1"}', "not a cost table of schema nasbench.cost_table/1"),
    ('{"schema": "nasbench.cost_table/1", "entries": []}', "malformed cost table"),
])
def test_a_file_that_is_not_a_table_is_refused(tmp_path, content, message):
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(NasbenchError, match=message):
        CostTable.load(path)


def test_a_missing_table_file_is_refused(tmp_path):
    with pytest.raises(NasbenchError, match="cannot read cost table"):
        CostTable.load(tmp_path / "absent.json")


def test_table_entries_serialise_their_units():
    entry = TableEntry(PartKey("op", "none", 4, 4, 8, 1), 0, 0, 512, 2048, LatencyStats(0.1, 0.2, 0.3, 0.2, 12))
    row = entry.to_dict()
    assert set(row) == {"part", "params", "flops", "mac_elements", "mac_bytes", "latency_ms_p50", "latency_ms_p10",
                        "latency_ms_p90", "latency_ms_mean", "latency_count"}
    assert TableEntry.from_dict(row) == entry


def test_the_drift_and_noise_records_round_trip_and_old_tables_still_load(cell_counts, tmp_path):
    from pathlib import Path

    table = dataclasses.replace(_measured(cell_counts), reference_speed={"workload": "w", "ms": 0.12},
                                drift={"round_range_pct": 3.0}, measurement_stop={"reason": "precision"},
                                noise={"tolerance": 0.1}, warnings=["noise exceeds the tolerance"])
    loaded = CostTable.load(table.save(tmp_path))
    assert (loaded.reference_speed, loaded.drift, loaded.measurement_stop, loaded.noise, loaded.warnings) == (
        table.reference_speed, table.drift, table.measurement_stop, table.noise, table.warnings)
    raw = json.loads(loaded.path.read_text())
    raw["reference_speed"]["ms"] = 0
    loaded.path.write_text(json.dumps(raw))
    with pytest.raises(NasbenchError, match="reference_speed.ms must be a finite number > 0, got 0"):
        CostTable.load(loaded.path)
    committed = next((Path(__file__).parents[2] / "cost_tables").glob("*/cell-proxy-torch-t1-b1.json"))
    old = CostTable.load(committed)  # written before drift correction: latencies as measured, nothing to warn of
    assert old.measured and old.reference_speed is None and old.warnings == [] and old.noise is None


def test_latency_percentiles():
    stats = LatencyStats.of([float(v) for v in range(1, 12)])
    assert (stats.p10_ms, stats.p50_ms, stats.p90_ms, stats.mean_ms, stats.count) == (2.0, 6.0, 10.0, 6.0, 11)
