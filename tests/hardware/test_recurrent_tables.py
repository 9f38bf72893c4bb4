"""Cost tables of a recurrent cell, built for real at smoke size: the table and its validation
figures, its JSON round trip, a missing part's error, the BPTT window's file, `nasbench cost`
of a zoo cell, and every committed table read back and predicting as its file says."""
from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

import pytest

from nasbench.cli import main
from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.profiler import counts_table, table_network
from nasbench.hardware.table import CostTable, MissingEntryError
from nasbench.spaces import get_space, space_for_table
from nasbench.types import PartKey

FAST = ["--rounds", "2", "--min-time", "0.002", "--calibrate", "8", "--validate", "6", "--max-time", "0", "--later", "0",
        "--no-progress"]
COMMITTED = Path(__file__).resolve().parents[2] / "cost_tables"


@pytest.fixture(scope="module")
def smoke_space(smoke):
    return get_space("enas-rnn", smoke)


@pytest.fixture(scope="module")
def profiled(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("recurrent-tables")
    assert main(["profile", "--space", "enas-rnn", "--protocol", "smoke", "--device", "cpu", "--backend", "torch",
                 "--out", str(out), *FAST]) == 0
    (path,) = [p for p in out.glob("*/*.json") if not p.name.endswith(".validation.json")]
    return path


def test_a_smoke_profile_writes_a_validated_table_of_the_cell(profiled, smoke, smoke_space):
    assert profiled.name == "enas-rnn-smoke-torch-t1-b100.json"  # smoke's eval_batch_size, one time step
    table = CostTable.load(profiled)
    assert set(table.entries) == set(smoke_space.all_cost_parts(table_network(smoke_space, smoke)))
    assert table.network["hidden_size"] == table.network_config.channels == smoke_space.settings.final_hidden_size
    assert table.network["steps"] == table.network_config.cells == 1 and table.predictor.fitted_on == 8
    assert all(entry.latency.p50_ms > 0 for entry in table.entries.values())
    validation = json.loads(profiled.with_suffix(".validation.json").read_text())
    assert validation["validation_archs"] == 6
    for name in ("naive_sum", "table"):
        figures = validation["predictors"][name]
        assert figures["n"] == 6 and 0 <= figures["within_10pct"] <= 1 and -1 <= figures["kendall_tau"] <= 1
        assert math.isfinite(figures["mape_pct"])
    model = CostModel(table, smoke_space, "latency_ms")
    for row in validation["architectures"]:
        assert model.cost(smoke_space.from_dict(row["arch"])) > 0


def test_a_recurrent_table_survives_its_json_round_trip(profiled, tmp_path):
    table = CostTable.load(profiled)
    again = CostTable.load(table.save(tmp_path))
    assert again == table and again.content_hash == table.content_hash
    assert again.path.read_bytes() == profiled.read_bytes()


def test_a_missing_recurrent_part_is_one_clear_error(profiled, smoke_space):
    table = CostTable.load(profiled)
    absent = PartKey("average", "mean", 8, 8, 1, 1, 30)  # no cell averages 30 nodes
    with pytest.raises(MissingEntryError, match="--space enas-rnn --protocol smoke .* --batch-size 100"):
        table.entry(absent)
    present = next(iter(table.entries))
    partial = dataclasses.replace(table, entries={k: e for k, e in table.entries.items() if k != present})
    with pytest.raises(MissingEntryError, match=f"lacks 1 of the enas-rnn space's parts \\(e.g. {present.id}\\)"):
        CostModel(partial, smoke_space, "flops")


def test_a_window_table_is_named_and_rebuilt_by_its_steps(smoke, smoke_space):
    table = counts_table(smoke_space, smoke)
    window = table_network(smoke_space, smoke, window=True)
    conditions = {"backend": "torch", "threads": 1, "batch_size": 100}
    windowed = dataclasses.replace(table, network=smoke_space.network_record(window), conditions=conditions)
    assert windowed.file_name() == "enas-rnn-smoke-torch-t1-b100-w20.json" and windowed.window == 20
    assert windowed.profile_command().endswith("--batch-size 100 --window")
    assert dataclasses.replace(table, conditions=conditions).file_name() == "enas-rnn-smoke-torch-t1-b100.json"
    with pytest.raises(Exception, match="a BPTT window is for recurrent cells"):
        table_network(get_space("cell"), smoke, window=True)


def test_nasbench_cost_predicts_a_zoo_cell_from_the_table(profiled, smoke_space, capsys):
    assert main(["cost", "DARTS_V2", "--table", str(profiled), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    arch = smoke_space.zoo()["DARTS_V2"].arch
    table = CostTable.load(profiled)
    assert result["flops"] == sum(table.entry(k).flops for k in smoke_space.cost_parts(arch, table.network_config))
    assert result["latency_ms_predicted"] == pytest.approx(CostModel(table, smoke_space, "latency_ms").cost(arch))


@pytest.mark.parametrize("path", sorted(p for p in COMMITTED.glob("*/*.json") if not p.name.endswith(".validation.json")),
                         ids=lambda p: p.name)
def test_committed_tables_read_and_predict_as_their_files_say(path):
    """The image tables unchanged by the recurrent ones: each reads back as its file and predicts
    the sum its file gives, as the recurrent tables do."""
    raw = json.loads(path.read_text())
    table = CostTable.load(path)
    assert table.file_name() == path.name and (table.window is None) == (raw["network"].get("steps", 1) == 1)
    assert {key: value for key, value in table.to_dict().items() if key in raw} == raw
    space = space_for_table(table)
    arch = space.sample(random.Random(0))
    rows = {row["part"]: row for row in raw["entries"]}
    p = raw["predictor"]
    scale = {key: p["op_scales"].get(key.name, p["scale"]) if key.kind == "op" else p["scale"]
             for key in space.cost_parts(arch, table.network_config)}
    expected = p["offset_ms"] + sum(scale[key] * (rows[key.id]["latency_ms_p50"] - raw["harness_ms"])
                                    for key in space.cost_parts(arch, table.network_config))
    assert CostModel(table, space, "latency_ms").cost(arch) == pytest.approx(expected, rel=1e-12)
