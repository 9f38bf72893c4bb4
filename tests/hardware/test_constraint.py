"""Resource constraints: the loss forms (multiplicative log, hinged log, additive linear) against
hand computation, SNAS' penalty, and the constraint options of `nasbench run` refused in one
line before any store is opened."""
from __future__ import annotations

import math

import pytest
import torch
from helpers import counts_table_file, flops_constraint, run_cli

from nasbench.errors import NasbenchError
from nasbench.spaces.cell.costs import genotype_weights
from nasbench.spaces.fbnet.candidates import BLOCK_NAMES
from nasbench.spaces.fbnet.space import LAYERS_GROUP


def uniform(fbnet_space) -> dict[str, torch.Tensor]:
    return {LAYERS_GROUP: torch.full((len(fbnet_space.specs), len(BLOCK_NAMES)), 1 / len(BLOCK_NAMES), dtype=torch.float64)}


# -- the loss forms ---------------------------------------------------------------------

def test_the_multiplicative_log_loss_equals_its_hand_computed_value(fbnet_space, fbnet_searching):
    constraint = flops_constraint(fbnet_space, fbnet_searching, target=2e6, weight=0.2, form="mul-log", exponent=0.6)
    model = constraint.cost_model
    expected = sum(model.part_cost(p) for p in model.space.cost_layout(model.config).fixed) + sum(
        model.part_cost(part) / len(BLOCK_NAMES) for layer in fbnet_space.cost_layout(model.config).choices[LAYERS_GROUP][0]
        for part in layer)
    loss = torch.tensor(2.3, dtype=torch.float64)
    value = constraint.apply(loss, uniform(fbnet_space)).item()
    assert value == pytest.approx(2.3 * 0.2 * (math.log(expected) / math.log(2e6)) ** 0.6, rel=1e-12)


def test_the_additive_linear_loss_equals_its_hand_computed_value_and_keeps_pushing_below_the_target(fbnet_space, fbnet_searching):
    constraint = flops_constraint(fbnet_space, fbnet_searching, target=2e6, weight=0.1, form="add-linear")
    expected = constraint.cost_model.expected(uniform(fbnet_space)).item()
    loss = torch.tensor(2.3, dtype=torch.float64)
    assert constraint.apply(loss, uniform(fbnet_space)).item() == pytest.approx(2.3 + 0.1 * (expected - 2e6) / 2e6)
    loose = flops_constraint(fbnet_space, fbnet_searching, target=10 * expected, weight=0.1, form="add-linear")
    assert loose.apply(loss, uniform(fbnet_space)).item() < 2.3  # below the target the additive form still rewards


def test_the_hinged_log_form_is_flat_below_the_target_and_fbnets_above_it(fbnet_space, fbnet_searching):
    loss = torch.tensor(2.3, dtype=torch.float64)
    expected = flops_constraint(fbnet_space, fbnet_searching, 2e6, 0.2, "add-linear").cost_model.expected(uniform(fbnet_space)).item()
    below = flops_constraint(fbnet_space, fbnet_searching, target=2 * expected, weight=0.2, form="mul-log-hinge", exponent=0.6)
    assert below.apply(loss, uniform(fbnet_space)).item() == pytest.approx(2.3 * 0.2)
    above = flops_constraint(fbnet_space, fbnet_searching, target=expected / 2, weight=0.2, form="mul-log-hinge", exponent=0.6)
    assert above.apply(loss, uniform(fbnet_space)).item() == pytest.approx(
        2.3 * 0.2 * (math.log(expected) / math.log(expected / 2)) ** 0.6)


def test_the_log_form_refuses_a_target_whose_log_is_not_positive(fbnet_space, fbnet_searching):
    with pytest.raises(NasbenchError, match="above 1"):
        flops_constraint(fbnet_space, fbnet_searching, target=1.0, weight=0.2, form="mul-log", exponent=0.6)


# -- SNAS' penalty ------------------------------------------------------------------------

def test_the_penalty_by_hand(cell_space, tiny):
    genotype = next(entry.arch for entry in cell_space.zoo().values() if entry.arch.reduce is not None)
    weights = {group: w.double() for group, w in genotype_weights(genotype).items()}
    exact = flops_constraint(cell_space, tiny, 1.0, 1.0).cost_model.cost(genotype)
    over = flops_constraint(cell_space, tiny, exact / 2, 0.3)
    assert over.apply(torch.zeros(()), weights).item() == pytest.approx(0.3 * (exact - exact / 2) / (exact / 2))  # = 0.3
    assert flops_constraint(cell_space, tiny, exact * 2, 0.3).apply(torch.zeros(()), weights).item() == 0.0
    assert over.variant() == f"flops<={exact / 2:g},weight=0.3"


def test_snas_per_edge_log_form_adds_lambda_times_the_per_edge_term_without_a_target(cell_space, tiny):
    constraint = flops_constraint(cell_space, tiny, None, 0.01, "per-edge-log")
    weights = {g: torch.randn(14, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64).softmax(-1)
               for g in ("normal", "reduce")}
    term = constraint.cost_model.per_edge_log(weights).item()
    assert term > 0 and constraint.apply(torch.tensor(2.0), weights).item() == pytest.approx(2.0 + 0.01 * term)
    assert constraint.variant() == "flops,weight=0.01,form=per-edge-log"
    with pytest.raises(NasbenchError, match="takes no --target"):
        flops_constraint(cell_space, tiny, 5.0, 0.01, "per-edge-log")
    with pytest.raises(NasbenchError, match="needs a --target"):
        flops_constraint(cell_space, tiny, None, 0.01, "hinge")


def test_snas_resources_average_the_log_terms_of_params_flops_and_mac(cell_space, tiny):
    from nasbench.hardware.constraint import build_constraint
    from nasbench.strategies.snas import Snas

    constraint = build_constraint("resources", None, methods=[Snas], spaces=[cell_space], protocol=tiny,
                                  registry={"snas": Snas}, setting="mild")
    assert [m.metric for m in constraint.models] == ["params", "flops", "mac_elements"] and constraint.weight == 0.01
    weights = {g: torch.full((14, 8), 1 / 8, dtype=torch.float64) for g in ("normal", "reduce")}
    terms = [m.per_edge_log(weights).item() for m in constraint.models]
    assert len(set(terms)) == 3
    assert constraint.apply(torch.tensor(0.0), weights).item() == pytest.approx(0.01 * sum(terms) / 3)
    assert constraint.variant() == "resources,weight=0.01,form=per-edge-log"


# -- the command line's constraint options ------------------------------------------------

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


@pytest.mark.parametrize("options, message", [
    (["--constraint", "energy", "--target", "1", "--constraint-weight", "1"],
     "unknown --constraint 'energy'; known: latency, flops, params, mac, resources"),
    (["--constraint", "latency", "--constraint-weight", "1"],
     "--constraint latency needs --table cost_tables/<device>/<table>.json (build one with `nasbench profile`)"),
    (["--constraint", "flops", "--constraint-form", "hinge", "--constraint-weight", "1"],
     "--constraint needs a positive, finite --target (ms for latency, counts for the others)"),
    (["--constraint", "flops", "--target", "1"],
     "the per-edge-log constraint form is a penalty without a budget: drop --target, or give --constraint-form hinge "
     "for a budget"),
    (["--constraint", "flops", "--constraint-form", "hinge", "--target", "1"],
     "--constraint with snas needs --constraint-weight LAMBDA under the hinge form"),
    (["--constraint", "flops", "--constraint-weight", "1", "--snas-setting", "mild"],
     "give at most one of --constraint-weight LAMBDA and --snas-setting NAME"),
    (["--constraint", "flops", "--snas-setting", "wild"], "unknown --snas-setting 'wild'; known: mild"),
    (["--constraint", "flops", "--constraint-form", "hinge", "--target", "1", "--snas-setting", "mild"],
     "--snas-setting names a strength of SNAS' per-edge-log penalty, not of the hinge form; give --constraint-weight "
     "LAMBDA"),
    (["--constraint", "resources", "--constraint-form", "hinge", "--target", "1", "--constraint-weight", "1"],
     "--constraint resources (SNAS' mean of params, FLOPs and MAC) has no single budget: give --constraint params, "
     "flops or mac with a --target, or the per-edge-log form"),
    (["--target", "1"], "--target only go with --constraint METRIC"),
    (["--method", "darts", "--constraint", "flops", "--target", "1", "--constraint-weight", "1"],
     "darts cannot search under a resource constraint; methods that can: snas (per-edge-log/hinge), spos (filter), "
     "fbnet (mul-log-hinge/mul-log), proxylessnas (mul-log/add-linear)"),
])
def test_bad_constraints_are_refused_before_the_store_is_opened(tmp_path, data_path, options, message):
    store = tmp_path / "never.sqlite"
    method = [] if "--method" in options else ["--method", "snas"]
    result = run_cli("run", *method, *options, "--protocol", "smoke", "--store", store, "--data", data_path)
    assert result.code == 2 and result.err.strip() == f"nasbench: error: {message}"
    assert not store.exists()


def test_a_table_of_another_protocol_is_refused(tmp_path, data_path, cell_space, smoke):
    path = counts_table_file(cell_space, smoke, tmp_path)
    result = run_cli("run", "--method", "snas", "--protocol", "proxy", "--constraint", "flops",
                     "--constraint-weight", "1", "--table", path, "--store", tmp_path / "never.sqlite",
                     "--data", data_path)
    assert result.code == 2 and result.err.startswith(f"nasbench: error: cost table {path} is for the cell space under "
                                                      "protocol smoke")
    assert "--protocol proxy" in result.err and not (tmp_path / "never.sqlite").exists()
