"""EAS: the meta-controller's episodes and their log-probabilities, the reward transformation
and baseline, children that start from the trained start network's weights, every episode
growing the start network, exact resumption in the middle of a batch, and a smoke run through
the command line."""
from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import context, run_cli, store_rows, stored, with_candidates, with_section
from torch import nn

from nasbench.spaces import get_space
from nasbench.spaces.plain_cnn.arch import Deepen, Widen
from nasbench.spaces.plain_cnn.space import PlainCnnLayout, PlainCnnSpace
from nasbench.strategies.eas import PLACES, Eas, EasPolicy, MetaController, reward
from nasbench.training import evaluate

LAYOUT = PlainCnnLayout(blocks=3, filters=(4, 8, 12), units=(8, 16), wider_actions=1, deeper_actions=3)


@pytest.fixture(scope="module")
def space():
    return PlainCnnSpace(LAYOUT)


def test_an_episode_is_the_layouts_actions_and_replays_under_the_same_policy(space):
    torch.manual_seed(0)
    controller = MetaController(space)
    parent = space.start()
    episode = controller(parent, generator=torch.Generator().manual_seed(0))
    grown = parent
    for step in episode.steps:
        grown = grown.apply(step)
    assert episode.arch == grown and space.check(grown) == grown
    assert sum(isinstance(step, Deepen) for step in episode.steps) == LAYOUT.deeper_actions
    assert all(isinstance(step, Widen) for step in episode.steps[:-LAYOUT.deeper_actions])  # wider actions first
    assert episode.log_prob.shape == () and episode.log_prob.item() < 0 and episode.entropy.item() > 0
    again = controller(parent, decisions=episode.decisions)
    assert again.arch == episode.arch and again.steps == episode.steps
    assert torch.allclose(again.log_prob, episode.log_prob)
    assert again.log_prob.requires_grad  # scored again for the update, with gradients


def test_the_log_probability_sums_over_every_decision_by_hand(space):
    """With every parameter zero each choice is uniform among those allowed: 1/2 for each
    widenable layer, then per Net2Deeper action the blocks with layers, the places in the
    chosen block (at most 10), and the 3 kernels in a convolution block."""
    controller = MetaController(space)
    with torch.no_grad():
        for parameter in controller.parameters():
            parameter.zero_()
    parent = space.start().apply(Widen(space.start().refs()[0], 12))  # one layer at the widest width
    episode = controller(parent, generator=torch.Generator().manual_seed(3))
    choices = [2] * (len(parent.refs()) - 1)  # the widest layer takes no decision
    arch = parent
    for step in episode.steps:
        if isinstance(step, Deepen):
            counts = arch.layer_counts()
            choices += [sum(1 for c in counts if c), min(counts[step.ref.block], PLACES)]
            choices += [] if step.kernel is None else [3]
        arch = arch.apply(step)
    assert len(episode.decisions) == len(choices)
    assert episode.log_prob.item() == pytest.approx(-sum(map(math.log, choices)), abs=1e-5)
    assert episode.entropy.item() == pytest.approx(sum(map(math.log, choices)) / len(choices), abs=1e-5)


def test_the_reward_is_tan_of_the_accuracy_less_a_baseline_moving_by_095_by_hand():
    """arch_manager.py L200-223: reward tan(acc pi / 2); the baseline, from 0, moves 0.95 of
    the way to each batch's mean reward before it is subtracted."""
    assert reward(0.5) == pytest.approx(1.0)
    policy = EasPolicy(nn.Linear(1, 1))
    first = [math.tan(0.5 * math.pi / 2), math.tan(0.8 * math.pi / 2)]
    baseline = 0.95 * sum(first) / 2
    assert policy.advantages([0.5, 0.8]) == pytest.approx([r - baseline for r in first])
    second = math.tan(0.6 * math.pi / 2)
    baseline += 0.95 * (second - baseline)
    assert policy.advantages([0.6]) == pytest.approx([second - baseline]) and policy.baseline == pytest.approx(baseline)


def test_an_update_makes_the_better_rewarded_episode_more_likely(space):
    torch.manual_seed(0)
    controller = MetaController(space)
    policy = EasPolicy(controller)
    parent = space.start()
    good, bad = (controller(parent, generator=torch.Generator().manual_seed(s)) for s in (0, 1))
    before = controller(parent, decisions=good.decisions).log_prob.item()
    policy.update([controller(parent, decisions=e.decisions) for e in (good, bad)], [0.9, 0.1])
    assert controller(parent, decisions=good.decisions).log_prob.item() > before


# -- the search ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def protocol(tiny):
    """Five networks: the start network, then two batches of two children."""
    protocol = with_section(with_candidates(tiny, 5), "search.eas", children_per_update=2)
    return with_section(protocol, "plain_cnn", wider_actions=1, deeper_actions=2)


@pytest.fixture(scope="module")
def searched(protocol, tiny_data):
    """A whole search with the checkpoint after every step, as the store keeps them."""
    checkpoints = []
    strategy = Eas(context(get_space("plain-cnn", protocol), protocol, tiny_data, seed=1,
                           on_checkpoint=lambda c: checkpoints.append(stored(c))))
    return strategy, strategy.run(), checkpoints


def test_a_child_starts_from_its_parents_weights(tiny, tiny_data):
    """Without Net2Net's noise, a child before any training classifies search-validation
    exactly as its trained parent did."""
    protocol = with_section(tiny, "search.eas", noise=False)
    strategy = Eas(context(get_space("plain-cnn", protocol), protocol, tiny_data, seed=2))
    strategy.step()  # the start network, trained from scratch
    parent = strategy.trials[0]
    assert strategy.parent["arch"] == parent.arch == strategy.space.start().to_dict()
    with torch.no_grad():
        episode = strategy.controller(strategy.space.start(), generator=torch.Generator().manual_seed(0))
    child = strategy.child_network(episode.steps, 1)
    assert child.arch == episode.arch != strategy.space.start()
    assert evaluate(child, tiny_data.search_val) == parent.val_acc
    assert strategy.weights["parent"].keys() != child.state_dict().keys()  # it did grow


def test_every_episode_grows_the_trained_start_network(searched, protocol):
    strategy, result, _ = searched
    trials, start = strategy.trials, strategy.space.start()
    assert [h["children"] for h in strategy.history] == [2, 2] and len(trials) == 5
    assert strategy.parent == {"trial": 0, "arch": start.to_dict(), "val_acc": trials[0].val_acc}
    layouts = protocol.section("plain_cnn")
    for trial in trials[1:]:  # each child: the start network after one episode (1 widening, 2 deepenings)
        child = strategy.space.from_dict(trial.arch)
        assert sum(child.layer_counts()) == sum(start.layer_counts()) + layouts["deeper_actions"]
    assert result.val_acc == max(t.val_acc for t in trials) and result.details["child_trainings"] == 5
    assert strategy.weights.keys() == {"parent"}


def test_a_search_stopped_in_the_middle_of_a_batch_resumes_exactly(searched, protocol, tiny_data):
    whole, result, checkpoints = searched
    middle = checkpoints[1]  # the start network and the first child of the first batch
    assert len(middle.state["fields"]["batch"]) == 1 and middle.tensors["weights"].keys() == {"parent"}
    resumed = Eas(context(get_space("plain-cnn", protocol), protocol, tiny_data, seed=1))
    resumed.restore(middle)
    assert resumed.run() == result
    assert [t.val_acc for t in resumed.trials] == [t.val_acc for t in whole.trials]
    for key, value in whole.weights["parent"].items():
        assert torch.equal(resumed.weights["parent"][key], value), key


def test_a_smoke_run_searches_final_trains_and_is_stored(tmp_path, data_path, smoke):
    def run():
        return run_cli("run", "--method", "eas", "--protocol", "smoke", "--seeds", "0", "--store",
                       tmp_path / "s.sqlite", "--json", "--data", data_path, "--no-progress", "--no-estimate")

    result = run()
    assert result.code == 0, result.err
    (row,) = store_rows(tmp_path / "s.sqlite")
    assert (row["status"], row["strategy_class"], row["space"]) == ("finished", "RL", "plain-cnn")
    assert 0 <= row["test_acc"] <= 1 and row["params"] > 0
    details = json.loads(row["details_json"])
    assert details["child_trainings"] == smoke.search.candidates
    assert len(details["controller_epochs"]) == smoke.search.candidates - 1  # one child per update in smoke
    arch = get_space("plain-cnn", smoke).from_dict(json.loads(row["genotype_json"]))
    assert sum(arch.layer_counts()) >= sum(get_space("plain-cnn", smoke).start().layer_counts())
    again = run()
    assert again.code == 0 and again.json_lines()[0]["cached"] is True
