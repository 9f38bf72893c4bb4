"""FBNet and ProxylessNAS on the FBNet layer-wise space and on the cell space: the latency
losses against hand computation, FBNet's temperature, warm-up and final sampling,
ProxylessNAS' binarised gradient and rescaling, a tighter target giving a cheaper
architecture, exact resume, and constrained and unconstrained runs through the command line."""
from __future__ import annotations

import json
import math

import pytest
import torch

from nasbench.errors import NasbenchError
from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.profiler import counts_table
from nasbench.spaces import get_space
from nasbench.spaces.fbnet.blocks import BLOCK_NAMES
from nasbench.spaces.fbnet.space import LAYERS_GROUP
from nasbench.spaces.cell.genotype import Genotype
from nasbench.spaces.cell.ops import SEARCH_OPERATIONS
from nasbench.spaces.cell.supernet import sample_genotype
from nasbench.spaces.fbnet.supernet import sample_arch
from nasbench.strategies.base import Constraint
from nasbench.strategies.fbnet import TEMPERATURE_DECAY, TEMPERATURE_START, Fbnet
from nasbench.strategies.proxylessnas import ARCH_UPDATE_EVERY, ProxylessNas, binarised_gradient

from conftest import run_cli, store_rows
from test_darts import context, random_batch, snapshot, stored, with_supernet


@pytest.fixture(scope="module")
def searching(tiny):
    """Four epochs of four batches of 8 images on the smoke layout."""
    return with_supernet(tiny, epochs=4, batch_size=8)


@pytest.fixture(scope="module")
def space(searching):
    return get_space("fbnet", searching)


def flops_constraint(space, protocol, target: float, weight: float, form: str, exponent: float = 1.0) -> Constraint:
    return Constraint("flops", target, weight, CostModel(counts_table(space, protocol), space, "flops"), form, exponent)


def uniform(space) -> dict[str, torch.Tensor]:
    return {LAYERS_GROUP: torch.full((len(space.specs), len(BLOCK_NAMES)), 1 / len(BLOCK_NAMES), dtype=torch.float64)}


# -- the losses ------------------------------------------------------------------------

def test_the_multiplicative_log_loss_equals_its_hand_computed_value(space, searching):
    constraint = flops_constraint(space, searching, target=2e6, weight=0.2, form="mul-log", exponent=0.6)
    model = constraint.cost_model
    expected = sum(model.part_cost(p) for p in model.space.cost_layout(model.config).fixed) + sum(
        model.part_cost(part) / len(BLOCK_NAMES) for layer in space.cost_layout(model.config).choices[LAYERS_GROUP][0]
        for part in layer)
    loss = torch.tensor(2.3, dtype=torch.float64)
    value = constraint.apply(loss, uniform(space)).item()
    assert value == pytest.approx(2.3 * 0.2 * (math.log(expected) / math.log(2e6)) ** 0.6, rel=1e-12)


def test_the_additive_linear_loss_equals_its_hand_computed_value_and_keeps_pushing_below_the_target(space, searching):
    constraint = flops_constraint(space, searching, target=2e6, weight=0.1, form="add-linear")
    expected = constraint.cost_model.expected(uniform(space)).item()
    loss = torch.tensor(2.3, dtype=torch.float64)
    assert constraint.apply(loss, uniform(space)).item() == pytest.approx(2.3 + 0.1 * (expected - 2e6) / 2e6)
    loose = flops_constraint(space, searching, target=10 * expected, weight=0.1, form="add-linear")
    assert loose.apply(loss, uniform(space)).item() < 2.3  # below the target the additive form still rewards


def test_the_hinged_log_form_is_flat_below_the_target_and_fbnets_above_it(space, searching):
    loss = torch.tensor(2.3, dtype=torch.float64)
    expected = flops_constraint(space, searching, 2e6, 0.2, "add-linear").cost_model.expected(uniform(space)).item()
    below = flops_constraint(space, searching, target=2 * expected, weight=0.2, form="mul-log-hinge", exponent=0.6)
    assert below.apply(loss, uniform(space)).item() == pytest.approx(2.3 * 0.2)
    above = flops_constraint(space, searching, target=expected / 2, weight=0.2, form="mul-log-hinge", exponent=0.6)
    assert above.apply(loss, uniform(space)).item() == pytest.approx(
        2.3 * 0.2 * (math.log(expected) / math.log(expected / 2)) ** 0.6)


def test_the_log_form_refuses_a_target_whose_log_is_not_positive(space, searching):
    with pytest.raises(NasbenchError, match="above 1"):
        flops_constraint(space, searching, target=1.0, weight=0.2, form="mul-log", exponent=0.6)


# -- FBNet -----------------------------------------------------------------------------

def test_fbnet_temperature_decays_by_exp_minus_0045_per_epoch(space, searching, tiny_data):
    strategy = Fbnet(context(space, searching, tiny_data))
    temperatures = []
    for epoch in range(4):
        strategy.epochs_done = epoch
        temperatures.append(strategy.temperature())
    assert temperatures == pytest.approx([5.0 * math.exp(-0.045 * e) for e in range(4)])
    assert TEMPERATURE_START == 5.0 and TEMPERATURE_DECAY == 0.045


def test_fbnet_warm_up_trains_weights_only_then_theta_moves(space, tiny, tiny_data):
    protocol = with_supernet(tiny, epochs=9, batch_size=8)  # warm-up: round(9 / 9) = 1 epoch
    strategy = Fbnet(context(space, protocol, tiny_data))
    assert strategy.warmup_epochs() == 1
    alpha = strategy.supernet.alpha.detach().clone()
    weights = snapshot(strategy.supernet)
    strategy.step()
    assert torch.equal(strategy.supernet.alpha, alpha)
    assert any(not torch.equal(p, weights[n]) for n, p in strategy.supernet.named_parameters() if n != "alphas.layers")
    strategy.step()
    assert not torch.equal(strategy.supernet.alpha, alpha)


def test_fbnet_samples_its_final_architectures_from_theta_and_keeps_the_best(space, searching, tiny_data):
    strategy = Fbnet(context(space, searching, tiny_data))
    result = strategy.run()
    assert len(strategy.trials) == strategy.samples() == min(6, searching.search.candidates)
    assert result.val_acc == max(t.val_acc for t in strategy.trials)
    assert space.to_dict(result.arch) in [t.arch for t in strategy.trials]
    assert len(result.details["epochs"]) == 4


def test_fbnet_every_block_runs_in_the_supernet(space, searching, tiny_data):
    strategy = Fbnet(context(space, searching, tiny_data))
    calls = []
    for layer in strategy.supernet.layers:
        for block in layer:
            block.register_forward_hook(lambda *_: calls.append(1))
    strategy.loss(random_batch(torch.Generator().manual_seed(0), size=32), strategy.search_weights())
    assert len(calls) == len(space.specs) * len(BLOCK_NAMES)


# -- ProxylessNAS ----------------------------------------------------------------------

def test_binarised_gradient_is_the_papers_formula():
    gates = torch.tensor([[0.3, -1.2], [2.0, 0.5]])
    probs = torch.tensor([[0.25, 0.75], [0.6, 0.4]])
    expected = torch.tensor([[sum(gates[r, j] * probs[r, j] * (float(i == j) - probs[r, i]) for j in range(2))
                              for i in range(2)] for r in range(2)])
    assert torch.allclose(binarised_gradient(gates, probs), expected)


def test_a_proxylessnas_weight_step_runs_one_block_per_layer(space, searching, tiny_data):
    strategy = ProxylessNas(context(space, searching, tiny_data))
    gates = strategy.search_weights()[LAYERS_GROUP]
    assert torch.equal(gates.sum(-1), torch.ones(len(space.specs))) and set(gates.unique().tolist()) == {0.0, 1.0}
    calls = []
    for layer in strategy.supernet.layers:
        for block in layer:
            block.register_forward_hook(lambda *_: calls.append(1))
    strategy.weight_step(random_batch(torch.Generator().manual_seed(0), size=32))
    assert len(calls) == len(space.specs)


def test_a_proxylessnas_architecture_step_leaves_unsampled_probabilities_unchanged(space, searching, tiny_data):
    strategy = ProxylessNas(context(space, searching, tiny_data))
    before = strategy.supernet.alpha.detach().softmax(-1).clone()
    strategy.architecture_step(random_batch(torch.Generator().manual_seed(0), size=32))
    after = strategy.supernet.alpha.detach().softmax(-1)
    changed = (after - before).abs() > 1e-7
    assert changed.any()
    assert (changed.sum(-1) <= 2).all()  # only the sampled pair of each layer moves
    assert torch.allclose(after.sum(-1), torch.ones(len(space.specs)))


def test_proxylessnas_updates_the_architecture_every_fifth_weight_step_after_warm_up(space, tiny, tiny_data):
    protocol = with_supernet(tiny, epochs=4, batch_size=4)  # 8 batches per epoch, warm-up 1 epoch
    strategy = ProxylessNas(context(space, protocol, tiny_data))
    alpha = strategy.supernet.alpha.detach().clone()
    strategy.step()
    assert torch.equal(strategy.supernet.alpha, alpha) and strategy.weight_steps == 8
    steps = []
    original = strategy.architecture_step
    strategy.architecture_step = lambda batch: steps.append(strategy.weight_steps) or original(batch)
    strategy.step()
    assert steps == [s for s in range(8, 16) if s % ARCH_UPDATE_EVERY == 0]


def test_a_tighter_target_gives_fbnet_a_cheaper_distribution_and_cheaper_samples(space, tiny, tiny_data):
    """Targets far above every network (no pressure) and far below every network, in the
    hinged log form whose strength is its exponent (weight and target are constant factors)."""
    protocol = with_supernet(tiny, epochs=6, batch_size=4)
    expected, sampled = {}, {}
    for target in (1e12, 1e5):
        constraint = flops_constraint(space, protocol, target, weight=0.2, form="mul-log-hinge", exponent=4.0)
        strategy = Fbnet(context(space, protocol, tiny_data, constraint=constraint))
        while strategy.epochs_done < strategy.supernet_epochs():
            strategy.step()
        expected[target] = strategy.history[-1]["expected_cost"]
        generator = torch.Generator().manual_seed(0)
        sampled[target] = sum(constraint.cost_model.cost(sample_arch(dict(strategy.supernet.alphas), generator))
                              for _ in range(50)) / 50
    assert expected[1e5] < 0.95 * expected[1e12]
    assert sampled[1e5] < sampled[1e12]


def test_a_tighter_target_gives_proxylessnas_a_cheaper_architecture(space, tiny, tiny_data):
    protocol = with_supernet(tiny, epochs=10, batch_size=2)  # 16 batches an epoch: 26 architecture steps
    costs = {}
    for target in (1e12, 1e5):
        constraint = flops_constraint(space, protocol, target, weight=50.0, form="add-linear")
        result = ProxylessNas(context(space, protocol, tiny_data, constraint=constraint)).run()
        costs[target] = constraint.cost_model.cost(result.arch)
    assert costs[1e5] < costs[1e12]


@pytest.mark.parametrize("cls", [Fbnet, ProxylessNas])
def test_a_layerwise_search_stopped_after_an_epoch_resumes_exactly(cls, space, tiny, tiny_data):
    protocol = with_supernet(tiny, epochs=2, batch_size=8)
    expected = cls(context(space, protocol, tiny_data, seed=3)).run()
    first = cls(context(space, protocol, tiny_data, seed=3))
    first.step()
    resumed = cls(context(space, protocol, tiny_data, seed=3))
    resumed.restore(stored(first.checkpoint()))
    result = resumed.run()
    assert result.arch == expected.arch
    assert result.details["epochs"] == expected.details["epochs"]


# -- on the cell space -----------------------------------------------------------------

@pytest.fixture(scope="module")
def cell_searching(tiny):
    return with_supernet(tiny, epochs=2, channels=2, batch_size=8)


def test_proxylessnas_on_cells_moves_only_each_edges_sampled_pair(cell_space, cell_searching, tiny_data):
    strategy = ProxylessNas(context(cell_space, cell_searching, tiny_data))
    before = {g: a.detach().softmax(-1).clone() for g, a in strategy.supernet.alphas.items()}
    calls = []
    for cell in strategy.supernet.cells:
        for edge in cell.edges:
            for op in edge.ops.values():
                op.register_forward_hook(lambda *_: calls.append(1))
    strategy.architecture_step(random_batch(torch.Generator().manual_seed(0), size=32))
    assert 0 < len(calls) <= 2 * 14 * len(strategy.supernet.cells)  # at most the pair of every edge runs
    for group, alpha in strategy.supernet.alphas.items():
        changed = (alpha.detach().softmax(-1) - before[group]).abs() > 1e-7
        assert changed.any() and (changed.sum(-1) <= 2).all()


@pytest.mark.parametrize("cls", [Fbnet, ProxylessNas])
def test_the_hardware_aware_methods_search_cells_and_derive_a_genotype(cls, cell_space, cell_searching, tiny_data):
    result = cls(context(cell_space, cell_searching, tiny_data)).run()
    assert isinstance(result.arch, Genotype)
    assert all(op != "none" for op, _ in result.arch.normal + result.arch.reduce)
    assert result.details["operations"] == list(SEARCH_OPERATIONS)


def test_a_genotype_sampled_from_cell_weights_follows_them(cell_space):
    generator = torch.Generator().manual_seed(0)
    alphas = {g: torch.full((14, 8), -20.0) for g in ("normal", "reduce")}
    for alpha in alphas.values():
        alpha[:, SEARCH_OPERATIONS.index("sep_conv_3x3")] = 0.0
        alpha[:, SEARCH_OPERATIONS.index("none")] = 5.0  # never drawn, however likely
    genotype = sample_genotype(alphas, generator)
    assert {op for op, _ in genotype.normal + genotype.reduce} == {"sep_conv_3x3"}


# -- the command line ------------------------------------------------------------------

def test_constrained_and_unconstrained_runs_are_stored_apart_with_measured_latency(tmp_path, data_path):
    table_dir = tmp_path / "tables"
    assert run_cli("profile", "--space", "fbnet", "--protocol", "smoke", "--device", "cpu", "--backend", "torch",
                   "--threads", "1", "--calibrate", "3", "--rounds", "2", "--min-time", "0.001", "--min-reps", "2",
                   "--no-progress", "--out", table_dir).code == 0
    (table,) = [p for p in table_dir.glob("*/fbnet-smoke-*.json") if not p.name.endswith(".validation.json")]
    store = tmp_path / "runs.sqlite"
    common = ("--protocol", "smoke", "--store", store, "--data", data_path, "--no-progress", "--json")
    assert run_cli("run", "--method", "proxylessnas", *common).code == 0
    for form in ("mul-log", "add-linear"):  # a 0.5 ms target: the log form is defined below 1 ms (microseconds)
        assert run_cli("run", "--method", "proxylessnas", *common, "--constraint", "latency", "--table", table,
                       "--target", "0.5", "--constraint-form", form).code == 0
    rows = store_rows(store)
    assert rows[0]["variant"] == ""
    assert "form=mul-log,beta=0.3" in rows[1]["variant"] and "form=add-linear" in rows[2]["variant"]
    for row in rows[1:]:
        constraint = json.loads(row["details_json"])["constraint"]
        assert constraint["target"] == 0.5 and constraint["achieved"] > 0 and constraint["measured_ms_p50"] > 0
        assert constraint["device"] == json.loads(table.read_text())["conditions"]["device_fingerprint"]


def test_a_run_on_another_space_is_its_own_variant(tmp_path, data_path):
    store = tmp_path / "runs.sqlite"
    common = ("--method", "proxylessnas", "--protocol", "smoke", "--store", store, "--data", data_path, "--no-progress")
    assert run_cli("run", *common).code == 0
    assert run_cli("run", *common, "--space", "cell").code == 0
    rows = store_rows(store)
    assert [(r["space"], r["variant"]) for r in rows] == [("fbnet", ""), ("cell", "space=cell")]
    assert set(json.loads(rows[1]["genotype_json"])) == {"normal", "normal_concat", "reduce", "reduce_concat"}


@pytest.mark.parametrize("argv, message", [
    (("--method", "darts", "--space", "fbnet"), "does not search the fbnet space"),
    (("--method", "proxylessnas", "--space", "nope"), "unknown space"),
    (("--method", "random", "--constraint", "flops", "--target", "1e6"), "cannot search under a resource constraint"),
    (("--method", "snas", "--constraint", "flops", "--target", "1e6", "--constraint-form", "mul-log"), "mul-log"),
    (("--method", "fbnet,proxylessnas", "--constraint", "flops", "--target", "1e6", "--constraint-form", "mul-log"),
     "one at a time"),
    (("--method", "snas,proxylessnas", "--constraint", "flops", "--target", "1e6", "--constraint-form", "hinge"),
     "proxylessnas cannot"),
])
def test_bad_constraint_options_are_one_line_errors(tmp_path, data_path, argv, message):
    result = run_cli("run", *argv, "--protocol", "smoke", "--store", tmp_path / "s.sqlite", "--data", data_path)
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "s.sqlite").exists()


@pytest.mark.parametrize("method", ["fbnet", "proxylessnas"])
def test_bench_times_a_search_step_on_the_fbnet_layout(method):
    result = run_cli("bench", "search-step", "--method", method, "--space", "fbnet", "--layout-protocol", "smoke",
                     "--batch-size", "2", "--repeats", "1", "--json")
    assert result.code == 0, result.err
    (record,) = result.json_lines()
    assert record["method"] == method and record["space"] == "fbnet" and 0 < record["median_s"]
    text = run_cli("bench", "search-step", "--method", method, "--space", "fbnet", "--layout-protocol", "smoke",
                   "--batch-size", "2", "--repeats", "1")
    assert text.out.startswith(f"{method} search step, batch 2, the fbnet layout of smoke (7 layers of 4-16 channels")


def test_bench_refuses_a_space_the_method_does_not_search():
    result = run_cli("bench", "search-step", "--method", "darts", "--space", "fbnet", "--layout-protocol", "smoke")
    assert result.code == 2 and "darts does not search the fbnet space" in result.err
