"""SPOS: crossover and mutation keep genotypes valid, the evolution never scores or returns
a candidate over its hard constraint, batch-norm recalibration gives a path its own
statistics, the ``filter`` constraint form, and a constrained smoke run through `nasbench run`."""
from __future__ import annotations

import copy
import json
import random

import pytest
import torch
from helpers import (
    context,
    flops_constraint,
    run_cli,
    smoke_args,
    store_rows,
    with_section,
    with_supernet,
)
from torch import nn

from nasbench.data import Augmentation, DeviceSplit
from nasbench.errors import NasbenchError
from nasbench.hardware.constraint import build_constraint
from nasbench.ranking import check_ranking
from nasbench.spaces.cell.genotype import Genotype
from nasbench.spaces.cell.supernet import WeightedSupernet, path_weights
from nasbench.strategies import STRATEGIES
from nasbench.strategies.spos import Spos, crossover, mutate, recalibrated_accuracy
from nasbench.training import evaluate

EVOLUTION = dict(population=4, iterations=2, select=2, crossover=2, mutation=2, mutation_prob=0.1,
                 recalibration_images=16)


@pytest.fixture(scope="module")
def searching(tiny):
    """One epoch of four batches of 8 images on a 2-channel supernet, then 3 generations of 4 paths."""
    return with_section(with_supernet(tiny, epochs=1, channels=2, batch_size=8), "search.spos", **EVOLUTION)


def nodes(genotype: Genotype) -> list[tuple]:
    return [(kind, edges[2 * n:2 * n + 2]) for kind, edges, _ in genotype.cells() for n in range(len(edges) // 2)]


def test_crossover_and_mutation_give_valid_genotypes(cell_space):
    rng = random.Random(0)
    for _ in range(200):
        first, second = cell_space.sample(rng), cell_space.sample(rng)
        child = crossover(first, second, rng)
        assert cell_space.from_dict(cell_space.to_dict(child)) == child  # a valid genotype of the space
        assert all(node in (a, b) for node, a, b in zip(nodes(child), nodes(first), nodes(second)))  # node-wise
        mutant = mutate(first, rng, 0.5)
        assert cell_space.from_dict(cell_space.to_dict(mutant)) == mutant
        for (kind, ((_, s1), (_, s2))), position in zip(nodes(mutant), list(range(4)) * 2):
            assert s1 != s2 and max(s1, s2) < position + 2  # two distinct earlier inputs
    first = cell_space.sample(rng)
    assert mutate(first, rng, 0.0) == first and mutate(first, rng, 1.0) != first


def test_evolution_never_scores_or_returns_a_candidate_over_the_constraint(cell_space, searching, tiny_data):
    rng = random.Random(1)
    costs = sorted(flops_constraint(cell_space, searching, 1.0, None, "filter").cost_model.cost(cell_space.sample(rng))
                   for _ in range(40))
    constraint = flops_constraint(cell_space, searching, costs[len(costs) // 4], None, "filter")  # a quarter pass
    strategy = Spos(context(cell_space, searching, tiny_data, seed=2, constraint=constraint))
    assert strategy.budget() == 1 + 4 * 3
    result = strategy.run()
    scores = result.details["scores"]
    assert [s["generation"] for s in scores] == [0] * 4 + [1] * 4 + [2] * 4
    archs = [cell_space.from_dict(s["arch"]) for s in scores]
    assert len(set(archs)) == len(archs)  # each path scored once
    assert all(constraint.cost_model.within(arch, constraint.target) for arch in archs)
    assert constraint.cost_model.within(result.arch, constraint.target)
    assert {s["origin"] for s in scores[4:]} <= {"mutation", "crossover", "random"}
    assert {s["origin"] for s in scores[:4]} == {"random"}
    best = max(scores, key=lambda s: (s["val_acc"], -s["index"]))
    assert result.val_acc == best["val_acc"] and cell_space.to_dict(result.arch) == best["arch"]
    with pytest.raises(NasbenchError, match="no new legal path"):
        tight = flops_constraint(cell_space, searching, 1.0, None, "filter")
        Spos(context(cell_space, searching, tiny_data, constraint=tight)).next_generation()


def test_recalibration_gives_the_path_its_own_batch_norm_statistics(cell_space, searching, tiny_data):
    strategy = Spos(context(cell_space, searching, tiny_data))
    norms = [m for m in strategy.supernet.modules() if isinstance(m, nn.BatchNorm2d)]
    for norm in norms:  # running statistics that describe no path
        norm.running_mean.fill_(3.0)
        norm.running_var.fill_(7.0)
    before = [(n.running_mean.clone(), n.running_var.clone()) for n in norms]
    genotype = cell_space.sample(random.Random(4))
    train = tiny_data.search_train
    calibration = DeviceSplit(train.images[:16], train.labels[:16])
    accuracy = recalibrated_accuracy(strategy.supernet, genotype, calibration, tiny_data.search_val)
    assert all(torch.equal(n.running_mean, m) and torch.equal(n.running_var, v) for n, (m, v) in zip(norms, before))
    # by hand: statistics reset, then the path's forward over the calibration images in training mode
    path = WeightedSupernet(copy.deepcopy(strategy.supernet), path_weights(genotype, torch.device("cpu")), sparse=True)
    for norm in (m for m in path.modules() if isinstance(m, nn.BatchNorm2d)):
        norm.reset_running_stats()
        norm.momentum = None
    path.train()
    with torch.no_grad():
        path(Augmentation(torch.device("cpu")).normalise(calibration.images))
    assert accuracy == evaluate(path, tiny_data.search_val)
    stem = next(m for m in path.modules() if isinstance(m, nn.BatchNorm2d))  # on every path
    assert not torch.allclose(stem.running_mean, before[0][0])


def test_the_filter_form_is_a_hard_constraint_without_weight(cell_space, smoke):
    build = dict(methods=[Spos], spaces=[cell_space], protocol=smoke, registry=STRATEGIES)
    constraint = build_constraint("flops", 3e7, **build)
    assert (constraint.form, constraint.weight) == ("filter", None)
    assert constraint.variant() == "flops<=3e+07,form=filter"
    assert constraint.describe(cell_space.sample(random.Random(0)))["weight"] is None
    with pytest.raises(NasbenchError, match="takes no --constraint-weight"):
        build_constraint("flops", 3e7, weight=0.1, **build)
    with pytest.raises(NasbenchError, match="not a loss term"):
        constraint.apply(torch.zeros(()), {})
    assert check_ranking("spos", 4) is Spos  # `nasbench rank --supernet spos`: a supernet method


@pytest.mark.slow
def test_a_constrained_smoke_run_is_stored_within_its_target(tmp_path, data_path, smoke, cell_space, cell_counts):
    target = 2.2e6  # about the median of the smoke networks
    result = run_cli(*smoke_args(tmp_path / "s.sqlite", data_path, "--method", "spos", "--constraint", "flops",
                                 "--target", str(target)))
    assert result.code == 0, result.err
    (row,) = store_rows(tmp_path / "s.sqlite")
    assert (row["status"], row["strategy_class"], row["variant"]) == ("finished", "EA", "flops<=2.2e+06,form=filter")
    details = json.loads(row["details_json"])
    assert details["constraint"]["achieved"] <= target and details["constraint"]["form"] == "filter"
    assert len(details["scores"]) == 4 and len(details["supernet_epochs"]) == smoke.search.supernet.epochs
