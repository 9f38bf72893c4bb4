"""ENAS' recurrent-cell search: the dispatch from ``enas``, the controller (valid cells, a
proper distribution whose entropy its samples estimate, the official nearness penalty), an
epoch (shared weights trained on sampled paths, then the controller rewarded by 80 / ppl),
the derivation, and a search resumed from its checkpoint ending as the uninterrupted one."""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import random
from collections import Counter

import pytest
import torch
from helpers import snapshot, stored, with_section

from nasbench.spaces import get_space
from nasbench.strategies import get_strategy
from nasbench.strategies.context import SearchContext
from nasbench.strategies.enas import Enas
from nasbench.strategies.enas_rnn import (
    CONTROLLER_HIDDEN,
    ENTROPY_WEIGHT,
    REWARD_CONSTANT,
    RecurrentController,
    RecurrentEnas,
)


@pytest.fixture(scope="module")
def corpus(ptb_corpus):
    """3,000 training words (about nine windows of 16 columns) and 1,000 validation words."""
    return dataclasses.replace(ptb_corpus, train=ptb_corpus.train[:3000], valid=ptb_corpus.valid[:1000])


def search(smoke, corpus, average: str = "loose-ends", epochs: int = 1, **enas) -> RecurrentEnas:
    """A search of 3-step cells at 8 units over 16 columns; ``enas`` changes ``[search.enas]``."""
    protocol = with_section(smoke, "language_model", search_batch_size=16, search_epochs=epochs, cell_average=average)
    protocol = with_section(protocol, "search.enas", **enas)
    context = SearchContext(space=get_space("enas-rnn", protocol), protocol=protocol, seed=0, data=corpus,
                            device=torch.device("cpu"), show_progress=False)
    return get_strategy("enas").for_task("language-model")(context)


def all_decisions(steps: int, fixed_first: bool) -> list[tuple[int, ...]]:
    """Every decision sequence of a cell: node 0's activation unless fixed, then per node i
    its input (0..i-1) and activation."""
    choices = [] if fixed_first else [range(4)]
    for node in range(1, steps + 1):
        choices += [range(node), range(4)]
    return list(itertools.product(*choices))


# -- the dispatch and the controller ------------------------------------------------------

def test_enas_runs_this_search_on_language_models():
    assert "enas-rnn" in get_strategy("enas").spaces
    assert Enas.for_task("language-model") is RecurrentEnas and Enas.for_task("image") is Enas
    assert (RecurrentEnas.name, RecurrentEnas.strategy_class, RecurrentEnas.summary) == ("enas", "RL", Enas.summary)


@pytest.mark.parametrize("average", ["loose-ends", "intermediate"])
def test_the_controller_writes_valid_cells_and_scores_its_own_decisions(average):
    torch.manual_seed(0)
    controller = RecurrentController(steps=5, average=average)
    generator = torch.Generator().manual_seed(1)
    firsts = set()
    for _ in range(20):
        sample = controller(generator)
        sample.arch.check()
        assert len(sample.arch.nodes) == 5 and sample.arch.average == average
        assert len(sample.decisions) == controller.decision_count() == 10 + (average == "loose-ends")
        replayed = controller(decisions=sample.decisions)
        assert replayed.arch == sample.arch
        torch.testing.assert_close(replayed.log_prob, sample.log_prob)
        torch.testing.assert_close(replayed.entropy, sample.entropy)
        firsts.add(sample.arch.first)
    assert firsts == {"tanh"} if average == "intermediate" else len(firsts) > 1  # DARTS' rule fixes node 0
    with pytest.raises(ValueError, match="decisions"):
        controller(decisions=sample.decisions[:-1])


@pytest.mark.parametrize("average", ["loose-ends", "intermediate"])
def test_the_controllers_cells_form_a_distribution_whose_entropy_the_samples_estimate(average):
    """Over every cell of 2 steps the probabilities sum to 1, and the expected sample
    entropy (the sum of each decision's entropy) is the distribution's entropy."""
    torch.manual_seed(0)
    controller = RecurrentController(steps=2, average=average)
    with torch.no_grad():
        samples = [controller(decisions=d) for d in all_decisions(2, fixed_first=average == "intermediate")]
    log_probs = torch.stack([s.log_prob for s in samples]).double()
    entropies = torch.stack([s.entropy for s in samples]).double()
    assert len({s.arch for s in samples}) == len(samples) == (128 if average == "loose-ends" else 32)
    assert log_probs.exp().sum().item() == pytest.approx(1, abs=1e-5)
    assert (log_probs.exp() * entropies).sum().item() == pytest.approx(-(log_probs.exp() * log_probs).sum().item(),
                                                                      rel=1e-5)


def test_the_controller_starts_as_the_official_one_near_uniform_but_for_near_inputs():
    """LSTM of 100 units, parameters in +-0.1; before training, the activations nearly
    uniform and node i's input drawn with the official penalty (i - j)^2 / 6: at node 3,
    inputs 2, 1, 0 about 57%, 30%, 13% of the time."""
    torch.manual_seed(0)
    controller = RecurrentController(steps=3, average="loose-ends")
    assert controller.lstm.hidden_size == CONTROLLER_HIDDEN
    assert max(p.abs().max().item() for p in controller.parameters()) <= 0.1
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        cells = [controller(generator).arch for _ in range(400)]
    inputs = Counter(cell.nodes[2][1] for cell in cells)
    penalty = torch.tensor([-9.0, -4.0, -1.0]).div(6).softmax(0).tolist()
    for source, expected in enumerate(penalty):
        assert inputs[source] / 400 == pytest.approx(expected, abs=0.07)
    activations = Counter(a for cell in cells for a, _ in cell.nodes)
    assert all(abs(n / 1200 - 0.25) < 0.05 for n in activations.values()) and len(activations) == 4


# -- an epoch ------------------------------------------------------------------------------

def test_an_epoch_trains_the_shared_weights_on_sampled_paths_then_the_controller(smoke, corpus):
    strategy = search(smoke, corpus, controller_steps=2, controller_aggregate=2)
    window = strategy.reward_window(random.Random(0))
    cell = strategy.controller(torch.Generator().manual_seed(0)).arch
    untrained = strategy.path_perplexity(cell, window)
    model, controller = snapshot(strategy.model), snapshot(strategy.controller)
    paths = []
    strategy.model.register_forward_hook(lambda m, args, out: paths.append(m.cell.arch) if m.training else None)
    strategy.step()
    assert len(paths) >= 8 and len(set(paths)) > len(paths) / 2  # a newly sampled cell per window
    assert strategy.path_perplexity(cell, window) < untrained / 2  # about the vocabulary's size before
    params = dict(strategy.model.named_parameters())
    assert all(not torch.equal(v, params[k]) for k, v in model.items() if not k.startswith("cell.edges"))
    assert any(not torch.equal(v, params[k]) for k, v in model.items() if k.startswith("cell.edges"))
    moved = {k for k, v in dict(strategy.controller.named_parameters()).items() if not torch.equal(v, controller[k])}
    assert {"lstm.weight_ih", "lstm.weight_hh", "attn_anchor.weight", "attn_query.weight", "attn_score.weight",
            "op_logits.weight", "start"} <= moved
    record = strategy.history[0]
    assert record["epoch"] == 1 and math.log(30) < record["train_nll"] < math.log(corpus.vocab_size)
    assert len(record["rewards"]) == len(record["entropies"]) == len(record["valid_perplexities"]) == 2
    assert record["baseline"] == strategy.policy.baseline != 0 and strategy.steps_done() == 1


def test_the_reward_is_80_over_the_paths_validation_perplexity(smoke, corpus):
    """One sample per update: its reward is exactly 80 / ppl plus the entropy bonus (1e-3),
    and ppl is its path's on a validation window under the shared weights."""
    strategy = search(smoke, corpus, controller_steps=3, controller_aggregate=1)
    scored = []
    path_perplexity = strategy.path_perplexity
    strategy.path_perplexity = lambda arch, batch: scored.append((arch, batch)) or path_perplexity(arch, batch)
    strategy.step()
    record = strategy.history[0]
    assert REWARD_CONSTANT == 80 and ENTROPY_WEIGHT == 1e-3
    for reward, perplexity, entropy in zip(record["rewards"], record["valid_perplexities"], record["entropies"]):
        assert reward == pytest.approx(80 / perplexity + 1e-3 * entropy, rel=1e-9)
    for (arch, (inputs, targets)), perplexity in zip(scored, record["valid_perplexities"]):
        assert inputs.shape == (strategy.stage.bptt, 16) and torch.equal(inputs[1:], targets[:-1])
        assert path_perplexity(arch, (inputs, targets)) == perplexity  # evaluation draws nothing


# -- the result and the state ---------------------------------------------------------------

def test_the_derivation_keeps_the_lowest_perplexity_sample(smoke, corpus):
    strategy = search(smoke, corpus, derive_samples=6)
    strategy.path_perplexity = lambda arch, batch: 50 + int(hashlib.sha256(str(arch).encode()).hexdigest(), 16) % 1000
    result = strategy.result()
    candidates = result.details["derive_candidates"]
    perplexities = [c["val_perplexity"] for c in candidates]
    assert len(candidates) == 6 and len(set(perplexities)) > 1
    best = candidates[perplexities.index(min(perplexities))]
    assert result.val_acc is None and result.val_perplexity == min(perplexities)
    assert result.arch == strategy.context.space.from_dict(best["arch"]) and result.arch.average == "loose-ends"
    assert strategy.result().arch == result.arch  # drawn from the run's seed: the same choice each time


def test_a_resumed_search_ends_exactly_as_the_uninterrupted_one(smoke, corpus):
    """Two epochs straight, against one epoch, its checkpoint as the store returns it, a
    fresh strategy restored from it and the second epoch."""
    straight = search(smoke, corpus, epochs=2)
    straight_result = straight.run()
    first = search(smoke, corpus, epochs=2)
    first.step()
    checkpoint = stored(first.checkpoint())
    resumed = search(smoke, corpus, epochs=2)
    resumed.restore(checkpoint)
    assert not resumed.finished()
    resumed_result = resumed.run()
    for ours, theirs in ((resumed.controller, straight.controller), (resumed.model, straight.model)):
        for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            assert torch.equal(a, b), name
    assert resumed.history == straight.history and resumed.policy.baseline == straight.policy.baseline
    assert resumed_result.arch == straight_result.arch
    assert resumed_result.val_perplexity == straight_result.val_perplexity
    assert resumed_result.details == straight_result.details
    assert straight.history[1]["train_nll"] < straight.history[0]["train_nll"]
