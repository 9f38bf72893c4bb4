"""SNAS: the Gumbel-softmax samples and their temperature, the single-level step, the
resource penalty and its effect on the derived architecture, resuming, and constrained
runs through the command line (their own store rows, their errors)."""
from __future__ import annotations

import json

import pytest
import torch

from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.profiler import counts_table
from nasbench.spaces.cell.costs import genotype_weights
from nasbench.spaces.cell.genotype import Genotype
from nasbench.strategies.base import Constraint
from nasbench.strategies.snas import TEMPERATURE_MIN, TEMPERATURE_START, Snas

from conftest import run_cli, store_rows
from test_darts import context, random_batch, snapshot, stored, with_supernet
from test_darts import two_epoch_protocol  # noqa: F401 (a fixture this module's runs share)


@pytest.fixture(scope="module")
def searching(tiny):
    """Four epochs of four batches of 8 images on a 2-channel supernet."""
    return with_supernet(tiny, epochs=4, channels=2, batch_size=8)


def flops_constraint(cell_space, protocol, target: float, weight: float) -> Constraint:
    return Constraint("flops", target, weight, CostModel(counts_table(cell_space, protocol), cell_space, "flops"))


def test_temperature_falls_linearly_to_its_minimum(cell_space, searching, tiny_data):
    strategy = Snas(context(cell_space, searching, tiny_data))
    temperatures = []
    for epoch in range(4):
        strategy.epochs_done = epoch
        temperatures.append(strategy.temperature())
    step = (TEMPERATURE_START - TEMPERATURE_MIN) / 4
    assert temperatures == pytest.approx([TEMPERATURE_START - step * (e + 1) for e in range(4)])
    assert temperatures[-1] == pytest.approx(TEMPERATURE_MIN)


def test_samples_at_low_temperature_average_to_the_softmax(cell_space, searching, tiny_data):
    strategy = Snas(context(cell_space, searching, tiny_data))
    strategy.epochs_done = 3  # the last epoch: temperature 0.03, samples close to one-hot
    logits = torch.tensor([1.0, 0.0, -1.0, 0.5, 2.0, -2.0, 0.0, 1.5])
    with torch.no_grad():
        for alpha in strategy.supernet.alphas.values():
            alpha.copy_(logits.expand_as(alpha))
        samples = torch.cat([torch.cat(list(strategy.search_weights().values())) for _ in range(300)])
    assert samples.shape == (300 * 28, 8)
    assert torch.allclose(samples.sum(-1), torch.ones(len(samples)))
    assert torch.allclose(samples.mean(0), logits.softmax(-1), atol=0.015)
    assert not torch.allclose(samples[0], samples[1])  # fresh noise per edge


def test_one_step_trains_weights_and_architecture_on_the_training_batch(cell_space, searching, tiny_data):
    strategy = Snas(context(cell_space, searching, tiny_data))
    generator = torch.Generator().manual_seed(0)
    train, val = random_batch(generator), random_batch(generator)
    before = snapshot(strategy.supernet)
    val_loss, train_loss = strategy.search_step(train, val, lr=0.025)
    after = snapshot(strategy.supernet)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert {"alphas.normal", "alphas.reduce"} <= changed and len(changed) > 2
    assert torch.isfinite(val_loss) and torch.isfinite(train_loss)


def test_the_penalty_by_hand(cell_space, tiny):
    genotype = next(entry.arch for entry in cell_space.zoo().values() if entry.arch.reduce is not None)
    weights = {group: w.double() for group, w in genotype_weights(genotype).items()}
    exact = flops_constraint(cell_space, tiny, 1.0, 1.0).cost_model.cost(genotype)
    over = flops_constraint(cell_space, tiny, exact / 2, 0.3)
    assert over.apply(torch.zeros(()), weights).item() == pytest.approx(0.3 * (exact - exact / 2) / (exact / 2))  # = 0.3
    assert flops_constraint(cell_space, tiny, exact * 2, 0.3).apply(torch.zeros(()), weights).item() == 0.0
    assert over.variant() == f"flops<={exact / 2:g},weight=0.3"


def test_a_tight_constraint_derives_a_cheaper_architecture(cell_space, searching, tiny_data):
    def derived(constraint: Constraint | None) -> Genotype:
        return Snas(context(cell_space, searching, tiny_data, seed=3, constraint=constraint)).run().arch

    tight = flops_constraint(cell_space, searching, 1.0, 100.0)
    free, constrained = derived(None), derived(tight)
    assert tight.cost_model.cost(constrained) < tight.cost_model.cost(free)


def test_a_search_stopped_after_an_epoch_resumes_exactly(cell_space, searching, tiny_data):
    two_epochs = with_supernet(searching, epochs=2)
    expected = Snas(context(cell_space, two_epochs, tiny_data, seed=4)).run()
    first = Snas(context(cell_space, two_epochs, tiny_data, seed=4))
    first.step()
    resumed = Snas(context(cell_space, two_epochs, tiny_data, seed=4))
    resumed.restore(stored(first.checkpoint()))
    assert resumed.run() == expected
    assert [r["temperature"] for r in expected.details["epochs"]] == pytest.approx([0.515, TEMPERATURE_MIN])


# -- through the command line -------------------------------------------------------------

def test_smoke_runs_snas(smoke_store):
    rows = [r for r in store_rows(smoke_store.path) if r["method"] == "snas"]
    assert sorted(r["seed"] for r in rows) == [0, 1]
    for row in rows:
        assert row["status"] == "finished" and row["strategy_class"] == "GO" and row["variant"] == ""
        (epoch,) = json.loads(row["details_json"])["epochs"]
        assert json.loads(row["genotype_json"]) == epoch["genotype"]
        assert epoch["temperature"] == pytest.approx(TEMPERATURE_MIN)


def run_snas(store, protocol, data_path, *options):
    return run_cli("run", "--method", "snas", "--protocol", protocol, "--store", store, "--json", "--seeds", "0",
                   "--data", data_path, "--no-progress", *options)


def test_a_constrained_run_is_its_own_row_with_its_achieved_cost(tmp_path, data_path, two_epoch_protocol):
    store = tmp_path / "runs.sqlite"
    assert run_snas(store, two_epoch_protocol, data_path).code == 0
    constrained = run_snas(store, two_epoch_protocol, data_path, "--constraint", "params", "--target", "5000",
                           "--snas-setting", "mild")
    assert constrained.code == 0, constrained.err
    (record,) = constrained.json_lines()
    assert record["cached"] is False and record["variant"] == "params<=5000,weight=0.01"
    details = record["details"]["constraint"]
    assert {k: details[k] for k in ("metric", "target", "weight", "table")} == {
        "metric": "params", "target": 5000.0, "weight": 0.01, "table": None}
    assert details["achieved"] > 0
    plain, again = run_snas(store, two_epoch_protocol, data_path), run_snas(
        store, two_epoch_protocol, data_path, "--constraint", "params", "--target", "5000", "--constraint-weight", "0.01")
    assert plain.json_lines()[0]["cached"] and plain.json_lines()[0]["variant"] == ""
    assert again.json_lines()[0]["cached"] and again.json_lines()[0]["run_id"] == record["run_id"]
    assert [(r["variant"], r["status"]) for r in store_rows(store)] == [
        ("", "finished"), ("params<=5000,weight=0.01", "finished")]
    report = tmp_path / "report"
    assert run_cli("report", "--store", store, "--out", report, "--tables", tmp_path / "no-tables").code == 0
    markdown = (report / "results.md").read_text()
    assert "snas [params<=5000,weight=0.01]" in markdown and f"{details['achieved']:.4g} / 5000" in markdown


@pytest.mark.parametrize("options, message", [
    (["--constraint", "energy", "--target", "1", "--constraint-weight", "1"],
     "unknown --constraint 'energy'; known: latency, flops, params, mac"),
    (["--constraint", "latency", "--target", "5", "--constraint-weight", "1"],
     "--constraint latency needs --table cost_tables/<device>/<table>.json (build one with `nasbench profile`)"),
    (["--constraint", "flops", "--constraint-weight", "1"],
     "--constraint needs a positive --target (ms for latency, counts for the others)"),
    (["--constraint", "flops", "--target", "1"],
     "--constraint with snas needs --constraint-weight LAMBDA or --snas-setting {mild}"),
    (["--constraint", "flops", "--target", "1", "--constraint-weight", "1", "--snas-setting", "mild"],
     "give at most one of --constraint-weight LAMBDA and --snas-setting NAME"),
    (["--constraint", "flops", "--target", "1", "--snas-setting", "wild"], "unknown --snas-setting 'wild'; known: mild"),
    (["--target", "1"], "--target only go with --constraint METRIC"),
    (["--method", "darts", "--constraint", "flops", "--target", "1", "--constraint-weight", "1"],
     "darts cannot search under a resource constraint; methods that can: snas (hinge), fbnet (mul-log-hinge/mul-log), "
     "proxylessnas (mul-log/add-linear)"),
])
def test_bad_constraints_are_refused_before_the_store_is_opened(tmp_path, data_path, options, message):
    store = tmp_path / "never.sqlite"
    method = [] if "--method" in options else ["--method", "snas"]
    result = run_cli("run", *method, *options, "--protocol", "smoke", "--store", store, "--data", data_path)
    assert result.code == 2 and result.err.strip() == f"nasbench: error: {message}"
    assert not store.exists()


def test_a_table_of_another_protocol_is_refused(tmp_path, data_path, cell_space, smoke):
    table = counts_table(cell_space, smoke)
    table.conditions["device_fingerprint"] = "counts"
    table.conditions.update(backend="none", threads=1, batch_size=1)
    path = table.save(tmp_path)
    result = run_cli("run", "--method", "snas", "--protocol", "proxy", "--constraint", "flops", "--target", "1",
                     "--constraint-weight", "1", "--table", path, "--store", tmp_path / "never.sqlite",
                     "--data", data_path)
    assert result.code == 2 and result.err.startswith(f"nasbench: error: cost table {path} is for the cell space under "
                                                      "protocol smoke")
    assert "--protocol proxy" in result.err and not (tmp_path / "never.sqlite").exists()
