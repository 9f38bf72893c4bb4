"""The cost decomposition and the cost model: exactness against whole-network counts,
coverage of the table's parts, the expected (differentiable) cost, and the table file
format with its refusals."""
from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch

from nasbench.errors import NasbenchError
from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.counting import count_flops, count_params
from nasbench.hardware.mac import count_mac
from nasbench.hardware.measure import LatencyStats
from nasbench.hardware.parts import PartKey
from nasbench.hardware.profiler import counts_table, final_network
from nasbench.hardware.table import CostTable, LatencyPredictor, MissingEntryError, TableEntry
from nasbench.protocol import load_protocol
from nasbench.spaces import get_space


@pytest.fixture(scope="module")
def space():
    return get_space("cell")


@pytest.fixture(scope="module")
def protocol():
    return load_protocol("smoke")


@pytest.fixture(scope="module")
def counts(space, protocol):
    return counts_table(space, protocol)


def _genotypes(space, n=6):
    rng = random.Random(11)
    return [space.sample(rng) for _ in range(n)] + [e.arch for e in space.zoo().values()]


def test_part_ids_round_trip():
    key = PartKey("op", "sep_conv_3x3", 16, 16, 32, 2, 1)
    assert key.id == "op:sep_conv_3x3:c16>16:s32:x2:n1"
    assert PartKey.from_id(key.id) == key
    with pytest.raises(ValueError):
        PartKey.from_id("op:sep_conv_3x3")


def test_counts_of_the_parts_add_up_to_the_network_exactly(space, protocol, counts):
    """params (torch), FLOPs (fvcore) and MAC of every genotype's network equal the sums of its parts."""
    config = final_network(protocol)
    for metric, measure in (("params", count_params), ("flops", count_flops),
                            ("mac_elements", lambda net: count_mac(net, [torch.zeros(1, 3, 32, 32)]))):
        model = CostModel(counts, space, metric)
        for genotype in _genotypes(space):
            network = space.build(genotype, config).eval()
            assert model.cost(genotype) == measure(network), (metric, genotype)


def test_the_table_covers_every_sampled_architecture(space, protocol, counts):
    config = final_network(protocol)
    rng = random.Random(5)
    for _ in range(300):
        assert set(space.cost_parts(space.sample(rng), config)) <= set(counts.entries)


def test_parts_sit_where_the_network_puts_them(space, protocol):
    """In the smoke network (4 channels, 3 cells: reductions at cells 1 and 2), a reduction
    cell's edges from its inputs stride from 32 to 16; edges between its nodes run at 16."""
    genotype = space.zoo()["DARTS_V2"].arch
    parts = space.cost_parts(genotype, final_network(protocol))
    ops = [p for p in parts if p.kind == "op"]
    assert PartKey("op", "max_pool_3x3", 8, 8, 32, 2) in ops       # reduce n2 from c_{k-2}
    assert PartKey("op", "skip_connect", 8, 8, 16, 1) in ops        # reduce n4 from n2, at 16x16
    # cell 2 follows a reduction: its c_{k-2} is cell 0's 16-channel output at 32x32
    assert PartKey("preprocess", "factorized_reduce", 16, 16, 32, 2) in parts
    assert PartKey("head", "pool_linear", 64, 10, 8, 1) in parts
    assert sum(p.kind == "combine" and p.name == "add" for p in parts) == 3 * 4


def test_expected_cost_with_one_hot_weights_equals_the_exact_cost(space, counts):
    rng = random.Random(3)
    for metric in ("params", "flops", "mac_bytes"):
        model = CostModel(counts, space, metric)
        for _ in range(5):
            genotype = space.sample(rng)
            expected = model.expected(space.arch_weights(genotype))
            assert expected.item() == pytest.approx(model.cost(genotype), rel=1e-12)


def test_expected_cost_is_differentiable_and_passes_gradcheck(space, counts):
    model = CostModel(counts, space, "flops")
    torch.manual_seed(0)
    alphas = {g: torch.randn(14, 8, dtype=torch.float64, requires_grad=True) for g in ("normal", "reduce")}

    def cost(normal, reduce):
        return model.expected({"normal": normal.softmax(-1), "reduce": reduce.softmax(-1)})

    assert torch.autograd.gradcheck(cost, (alphas["normal"], alphas["reduce"]))
    cost(alphas["normal"], alphas["reduce"]).backward()
    sep5, pool = 5, 1  # SEARCH_OPERATIONS order: none, max_pool, avg_pool, skip, sep3, sep5, dil3, dil5
    weights = alphas["normal"].softmax(-1).detach()
    # raising sep_conv_5x5's logit costs FLOPs, raising max pooling's saves them
    assert (alphas["normal"].grad[:, sep5] > 0).all()
    assert (alphas["normal"].grad[:, pool] < 0).all()
    assert weights.sum().item() == pytest.approx(14)


def test_expected_cost_needs_every_group(space, counts):
    with pytest.raises(NasbenchError, match="reduce"):
        CostModel(counts, space, "flops").expected({"normal": torch.zeros(14, 8)})


def test_arch_weights_refuse_a_genotype_outside_the_search_space(space):
    with pytest.raises(NasbenchError, match="not in the search space"):
        space.arch_weights(space.zoo()["NASNet"].arch)


def test_unknown_metric_is_refused(space, counts):
    with pytest.raises(NasbenchError, match="unknown cost metric 'energy'"):
        CostModel(counts, space, "energy")


# -- the table file ----------------------------------------------------------------------

def _measured(counts: CostTable) -> CostTable:
    """A copy of the counts table with made-up latencies: 1 ms per part plus 0.001 ms per
    FLOP-thousand (only the file format and arithmetic are under test here)."""
    entries = {k: dataclasses.replace(e, latency=LatencyStats(0.9, 1.0 + e.flops / 1e6, 1.2, 1.05, 10))
               for k, e in counts.entries.items()}
    conditions = {"device_fingerprint": "cpu-test-0c", "device_type": "cpu", "backend": "torch", "threads": 1,
                  "batch_size": 1, "device": "test"}
    return dataclasses.replace(counts, entries=entries, conditions=conditions, harness_ms=0.25,
                               predictor=LatencyPredictor("affine", 1.5, 2.0, 10), build_seconds=1.0)


def test_table_round_trips_through_its_file(counts, tmp_path):
    table = _measured(counts)
    path = table.save(tmp_path)
    assert path == tmp_path / "cpu-test-0c" / "cell-smoke-torch-t1-b1.json"
    loaded = CostTable.load(path)
    assert loaded.entries == table.entries
    assert loaded.predictor == table.predictor and loaded.harness_ms == 0.25
    assert json.loads(path.read_text())["schema"] == "nasbench.cost_table/1"


def test_latency_cost_applies_the_predictor(space, counts):
    table = _measured(counts)
    model = CostModel(table, space, "latency_ms")
    genotype = space.zoo()["DARTS_V2"].arch
    parts = space.cost_parts(genotype, model.config)
    by_hand = 1.5 * sum(table.entries[k].latency.p50_ms - 0.25 for k in parts) + 2.0
    assert model.cost(genotype) == pytest.approx(by_hand)
    assert model.expected(space.arch_weights(genotype)).item() == pytest.approx(by_hand)
    assert model.within(genotype, by_hand + 1e-9) and not model.within(genotype, by_hand - 1e-3)


def test_latency_cost_scales_each_operation_by_its_own_factor(space, counts, tmp_path):
    predictor = LatencyPredictor("per_operation", 1.5, 2.0, 10, {"sep_conv_3x3": 3.0, "skip_connect": 0.5})
    table = dataclasses.replace(_measured(counts), predictor=predictor)
    model = CostModel(table, space, "latency_ms")
    genotype = space.zoo()["DARTS_V2"].arch
    scales = {"sep_conv_3x3": 3.0, "skip_connect": 0.5}
    by_hand = 2.0 + sum((scales.get(k.name, 1.5) if k.kind == "op" else 1.5) * (table.entries[k].latency.p50_ms - 0.25)
                        for k in space.cost_parts(genotype, model.config))
    assert model.cost(genotype) == pytest.approx(by_hand)
    assert model.expected(space.arch_weights(genotype)).item() == pytest.approx(by_hand)
    assert CostTable.load(table.save(tmp_path)).predictor == predictor


def test_a_missing_entry_names_the_profile_command(space, counts):
    table = _measured(counts)
    entries = dict(table.entries)
    removed = PartKey("op", "sep_conv_3x3", 4, 4, 32, 1)
    del entries[removed]
    table = dataclasses.replace(table, entries=entries)
    genotype = space.zoo()["DARTS_V2"].arch  # its normal cell (cell 0: 4 channels, 32x32) has sep_conv_3x3
    with pytest.raises(MissingEntryError, match=r"no entry for part op:sep_conv_3x3:c4>4:s32:x1:n1.*nasbench profile "
                                                r"--space cell --protocol smoke --device cpu --backend torch"):
        CostModel(table, space, "latency_ms").cost(genotype)


def test_a_network_of_another_size_is_missing_from_the_table(space, counts):
    bigger = dataclasses.replace(counts, network={"channels": 8, "cells": 3})
    with pytest.raises(MissingEntryError):
        CostModel(bigger, space, "flops").cost(space.zoo()["DARTS_V2"].arch)


def test_tables_of_another_device_or_backend_are_refused(counts):
    table = _measured(counts)
    table.require(device_fingerprint="cpu-test-0c", backend="torch")
    with pytest.raises(NasbenchError, match="measured on cpu-test-0c, not on cuda-h100-sm90"):
        table.require(device_fingerprint="cuda-h100-sm90")
    with pytest.raises(NasbenchError, match="backend torch, not onnxruntime"):
        table.require(backend="onnxruntime")


def test_a_counts_only_table_has_no_latency(space, counts):
    with pytest.raises(NasbenchError, match="holds no latency measurements"):
        CostModel(counts, space, "latency_ms")


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
