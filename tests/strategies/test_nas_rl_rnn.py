"""NAS-RL's recurrent-cell search: its tree controller (valid cells in the space's decision
order, replayed decisions, a near-uniform start), the policy update, the reward of Sect. 4.2,
the dispatch from ``nas-rl``, and a search on the smoke protocol with children trained."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from helpers import with_candidates

from nasbench.spaces import get_space
from nasbench.spaces.nasrl_rnn.space import CHOICES, NasRlRnnSpace
from nasbench.strategies import get_strategy
from nasbench.strategies.context import SearchContext
from nasbench.strategies.nas_rl import HIDDEN, INIT_RANGE, NasRl
from nasbench.strategies.nas_rl_rnn import RecurrentNasRl, TreeController
from nasbench.types import Trial


def tree_space(smoke, base: int) -> NasRlRnnSpace:
    space = get_space("nasrl-rnn", smoke)
    return NasRlRnnSpace(dataclasses.replace(space.settings, nasrl_base=base))


def search_context(smoke, ptb_corpus, protocol=None) -> SearchContext:
    return SearchContext(space=get_space("nasrl-rnn", smoke), protocol=protocol or smoke, seed=0, data=ptb_corpus,
                         device=torch.device("cpu"), show_progress=False)


def uniform_entropy(base: int) -> float:
    """Every decision uniform: per node and the inject log(2 * 4), per cell index log(2B - 2)."""
    size = 2 * base - 1
    per_pair = math.log(len(CHOICES["combination"]) * len(CHOICES["activation"]))
    return (size + 1) * per_pair + 2 * math.log(size - 1)


# -- the controller --------------------------------------------------------------------

@pytest.mark.parametrize("base", [2, 8])
def test_controller_writes_valid_cells_and_scores_its_own_decisions(smoke, base):
    space = tree_space(smoke, base)
    controller = TreeController(space)
    generator = torch.Generator().manual_seed(base)
    for _ in range(5):
        sample = controller(generator)
        sample.arch.check()
        assert sample.arch.base == base
        assert len(sample.decisions) == controller.decision_count() == 2 * (2 * base - 1) + 2 + 2
        assert space.from_dict(space.to_dict(sample.arch)) == sample.arch
        replayed = controller(decisions=sample.decisions)
        assert replayed.arch == sample.arch
        torch.testing.assert_close(replayed.log_prob, sample.log_prob)
        torch.testing.assert_close(replayed.entropy, sample.entropy)
    with pytest.raises(ValueError, match="decisions"):
        controller(decisions=(0,) * (controller.decision_count() - 1))


def test_decisions_follow_the_spaces_sampling_order(smoke):
    """Node i's combination and activation are decisions 2i and 2i + 1, the inject's the
    next two, the cell indices (cell_out, cell_in) the last two."""
    controller = TreeController(tree_space(smoke, 2))
    decisions = (1, 3, 0, 2, 1, 0, 0, 1, 1, 0)  # 3 nodes, inject, indices
    arch = controller(decisions=decisions).arch
    combinations, activations = CHOICES["combination"], CHOICES["activation"]
    assert arch.nodes == ((combinations[1], activations[3]), (combinations[0], activations[2]),
                          (combinations[1], activations[0]))
    assert arch.inject == (combinations[0], activations[1])
    assert arch.cell_indices == (1, 0)


@pytest.mark.parametrize("base", [2, 8])
def test_controller_starts_in_the_papers_range_near_uniform(smoke, base):
    controller = TreeController(tree_space(smoke, base))
    values = torch.cat([p.detach().flatten() for p in controller.parameters()])
    assert values.abs().max() <= INIT_RANGE and values.std() > INIT_RANGE / 3
    assert [m.hidden_size for m in controller.cells] == [HIDDEN, HIDDEN]
    with torch.no_grad():
        entropies = [controller(torch.Generator().manual_seed(s)).entropy.item() for s in range(3)]
    for entropy in entropies:
        assert entropy == pytest.approx(uniform_entropy(base), rel=0.01)


# -- the strategy ----------------------------------------------------------------------

def test_nas_rl_runs_this_search_on_language_models():
    assert "nasrl-rnn" in get_strategy("nas-rl").spaces
    assert NasRl.for_task("language-model") is RecurrentNasRl
    assert NasRl.for_task("image") is NasRl
    assert RecurrentNasRl.name == "nas-rl" and RecurrentNasRl.strategy_class == "RL"


def test_reward_is_80_over_perplexity_squared(smoke, ptb_corpus):
    strategy = RecurrentNasRl(search_context(smoke, ptb_corpus))
    trial = Trial(0, {}, None, 1.0, val_perplexity=40.0)
    assert strategy.reward(trial) == pytest.approx(80 / 40.0 ** 2)
    assert strategy.reward(dataclasses.replace(trial, val_perplexity=400.0)) < strategy.reward(trial)


def test_a_policy_update_raises_a_rewarded_childs_probability(smoke, ptb_corpus):
    strategy = RecurrentNasRl(search_context(smoke, ptb_corpus))
    assert strategy.policy.optimizer.param_groups[0]["lr"] == 5e-4 and strategy.policy.entropy_weight == 0.0
    with torch.no_grad():
        sample = strategy.controller(strategy.controller_generator)
    reward = strategy.reward(Trial(0, {}, None, 1.0, val_perplexity=60.0))
    strategy.pending = [{"decisions": list(sample.decisions), "log_prob": sample.log_prob.item(),
                         "entropy": sample.entropy.item(), "reward": reward}]
    strategy.update_controller()
    with torch.no_grad():
        after = strategy.controller(decisions=sample.decisions).log_prob.item()
    assert after > sample.log_prob.item()
    assert strategy.history[0]["rewards"] == [pytest.approx(reward)] and strategy.pending == []


def test_search_trains_children_and_rewards_their_perplexity(smoke, ptb_corpus):
    """Two children on the smoke protocol (one per update): each trained by the runner's
    candidate training for language models, scored by its validation perplexity."""
    strategy = RecurrentNasRl(search_context(smoke, ptb_corpus, with_candidates(smoke, 2)))
    result = strategy.run()
    assert len(strategy.trials) == 2
    for trial in strategy.trials:
        assert trial.error is None and trial.val_acc is None and trial.val_perplexity > 1
        strategy.context.space.from_dict(trial.arch).check()
    assert [h["rewards"] for h in strategy.history] == [[pytest.approx(80 / t.val_perplexity ** 2)]
                                                        for t in strategy.trials]
    best = min(strategy.trials, key=lambda t: t.val_perplexity)
    assert result.val_perplexity == best.val_perplexity and result.val_acc is None
