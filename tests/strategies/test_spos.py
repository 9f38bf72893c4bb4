"""SPOS: crossover and mutation keep architectures valid (cells and FBNet layers), the
evolution never scores or returns a candidate over its hard constraint, batch-norm
recalibration gives a path its own statistics, the ``filter`` constraint form, one trained
supernet serving a second target without retraining, and constrained smoke runs through
`nasbench run`."""
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
    stored,
    with_section,
    with_supernet,
)
from torch import nn

from nasbench.data import Augmentation, DeviceSplit
from nasbench.errors import NasbenchError
from nasbench.hardware.constraint import build_constraint
from nasbench.ranking import check_ranking
from nasbench.spaces import get_space
from nasbench.spaces.cell.genotype import Genotype
from nasbench.spaces.cell.supernet import WeightedSupernet, path_weights
from nasbench.spaces.fbnet.candidates import BLOCK_NAMES
from nasbench.spaces.fbnet.space import LayerArch
from nasbench.strategies import STRATEGIES
from nasbench.strategies.random_ws import RandomWeightSharing
from nasbench.strategies.spos import Spos, crossover, mutate, recalibrated_accuracy
from nasbench.training import evaluate
from nasbench.types import Checkpoint

EVOLUTION = dict(population=4, iterations=2, select=2, crossover=2, mutation=2, mutation_prob=0.1,
                 recalibration_images=16)


@pytest.fixture(scope="module")
def searching(tiny):
    """One epoch of four batches of 8 images on a 2-channel supernet, then 3 generations of 4 paths."""
    return with_section(with_supernet(tiny, epochs=1, channels=2, batch_size=8), "search.spos", **EVOLUTION)


@pytest.fixture(params=["cell", "fbnet"])
def evolving(request, searching, cell_space):
    """SPOS' evolution settings with the space: the cell space, or the smoke FBNet layout."""
    space = cell_space if request.param == "cell" else get_space("fbnet", searching)
    return space, searching


def quarter_constraint(space, protocol):
    """A FLOPs filter that about a quarter of the space's random architectures pass."""
    rng = random.Random(1)
    costs = sorted(flops_constraint(space, protocol, 1.0, None, "filter").cost_model.cost(space.sample(rng))
                   for _ in range(40))
    return flops_constraint(space, protocol, costs[len(costs) // 4], None, "filter")


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


def test_fbnet_genes_are_layers(searching):
    space, rng = get_space("fbnet", searching), random.Random(0)
    for _ in range(100):
        first, second = space.sample(rng), space.sample(rng)
        child = crossover(first, second, rng)
        assert space.from_dict(space.to_dict(child)) == child
        assert all(block in pair for block, pair in zip(child.blocks, zip(first.blocks, second.blocks)))
    assert len({crossover(first, second, random.Random(seed)) for seed in range(30)} - {first, second}) > 2  # genes mix
    assert mutate(first, rng, 0.0) == first
    redrawn = [mutate(first, random.Random(seed), 1.0) for seed in range(30)]
    assert all(isinstance(m, LayerArch) and set(m.blocks) <= set(BLOCK_NAMES) for m in redrawn)
    assert len({m.blocks[0] for m in redrawn}) > 3  # every gene redrawn among the 9 blocks


def test_evolution_never_scores_or_returns_a_candidate_over_the_constraint(evolving, tiny_data):
    cell_space, searching = evolving  # the cell space or the FBNet layout
    constraint = quarter_constraint(cell_space, searching)
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


def test_one_trained_supernet_serves_a_second_target_without_retraining(evolving, tiny_data, monkeypatch):
    space, searching = evolving
    loose = flops_constraint(space, searching, 1e12, None, "filter")
    kept = []
    first = Spos(context(space, searching, tiny_data, seed=3, constraint=loose,
                         on_shared_stage=lambda checkpoint: kept.append(stored(checkpoint))))
    first.run()
    assert len(kept) == 1 and kept[0].state["epochs_done"] == searching.search.supernet.epochs  # kept once, at its end
    tight = quarter_constraint(space, searching)
    fresh = Spos(context(space, searching, tiny_data, seed=3, constraint=tight)).run()  # trains its own supernet
    second = Spos(context(space, searching, tiny_data, seed=3, constraint=tight))
    monkeypatch.setattr(RandomWeightSharing, "search_epoch", lambda *args: pytest.fail("the supernet trained again"))
    assert second.start_after_stage(kept[0])
    assert second.steps_done() == searching.search.supernet.epochs
    reused = second.run()
    assert (reused.arch, reused.val_acc, reused.details) == (fresh.arch, fresh.val_acc, fresh.details)
    assert all(tight.cost_model.within(space.from_dict(s["arch"]), tight.target) for s in reused.details["scores"])
    elsewhere = Spos(context(space, searching, tiny_data, seed=3, constraint=tight))
    other_device = Checkpoint({**kept[0].state, "device": "cuda"}, kept[0].tensors)
    assert not elsewhere.start_after_stage(other_device) and elsewhere.steps_done() == 0  # left untouched


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
    accuracy = recalibrated_accuracy(strategy.supernet, path_weights(genotype, torch.device("cpu")), calibration,
                                     tiny_data.search_val)
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
def test_constrained_smoke_runs_are_stored_within_their_targets_on_one_supernet(tmp_path, data_path, smoke,
                                                                               monkeypatch):
    store = tmp_path / "s.sqlite"
    targets = (2.2e6, 1.9e6)  # about the median of the smoke networks, then tighter
    result = run_cli(*smoke_args(store, data_path, "--method", "spos", "--constraint", "flops",
                                 "--target", str(targets[0])))
    assert result.code == 0, result.err
    monkeypatch.setattr(RandomWeightSharing, "search_epoch", lambda *args: pytest.fail("the supernet trained again"))
    second = run_cli(*smoke_args(store, data_path, "--method", "spos", "--constraint", "flops",
                                 "--target", str(targets[1])))
    assert second.code == 0, second.err
    first_row, second_row = store_rows(store)
    assert "starts from the uniform single-path supernet run 1 computed" in second.err
    assert (first_row["status"], first_row["strategy_class"], first_row["variant"]) == (
        "finished", "EA", "flops<=2.2e+06,form=filter")
    assert (second_row["status"], second_row["variant"]) == ("finished", "flops<=1.9e+06,form=filter")
    first, reused = json.loads(first_row["details_json"]), json.loads(second_row["details_json"])
    for details, target in zip((first, reused), targets):
        assert details["constraint"]["achieved"] <= target and details["constraint"]["form"] == "filter"
        assert len(details["scores"]) == 4 and len(details["supernet_epochs"]) == smoke.search.supernet.epochs
    assert "shared_stage" not in first and reused["shared_stage"]["run_id"] == first_row["id"]
    assert reused["supernet_epochs"] == first["supernet_epochs"]  # the same supernet
    assert second_row["search_seconds"] > reused["shared_stage"]["seconds"] > 0  # its search cost counts the supernet
