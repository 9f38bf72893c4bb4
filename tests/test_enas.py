"""ENAS on the cell space: the controller (valid genotypes, replayed decisions, the paper's
initialisation, learning a favoured architecture), the learning-rate restarts, the two
phases of an epoch, the derivation, resuming, and `nasbench run` on the smoke protocol."""
from __future__ import annotations

import json
import math

import pytest
import torch

from nasbench.spaces.cell.space import NODES, SAMPLED_OPERATIONS
from nasbench.strategies.controller import ENTROPY_WEIGHT, INIT_RANGE, CellController, PolicyGradient
from nasbench.strategies.enas import Enas, cosine_with_restarts

from conftest import store_rows
from test_darts import context, snapshot, stored, with_supernet

DECISIONS = 2 * NODES * 4
"""Two inputs and two operations per node, in two cell types."""


@pytest.fixture(scope="module")
def searching(tiny):
    """Two epochs of four batches of 8 images on a 4-channel, 3-cell supernet."""
    return with_supernet(tiny, epochs=2, channels=4, batch_size=8)


def test_controller_writes_valid_genotypes_and_scores_its_own_decisions():
    controller = CellController()
    generator = torch.Generator().manual_seed(0)
    samples = [controller(generator) for _ in range(20)]
    for sample in samples:
        assert len(sample.decisions) == DECISIONS
        for cell in (sample.arch.normal, sample.arch.reduce):
            sources = [source for _, source in cell]
            assert all(a != b for a, b in zip(sources[::2], sources[1::2]))  # two distinct inputs per node
        assert sample.log_prob.item() < 0 and sample.entropy.item() > 0
        replayed = controller(decisions=sample.decisions)
        assert replayed.arch == sample.arch
        torch.testing.assert_close(replayed.log_prob, sample.log_prob)
        torch.testing.assert_close(replayed.entropy, sample.entropy)
    assert len({s.arch for s in samples}) == len(samples)  # an untrained controller explores
    with pytest.raises(ValueError, match="either a generator"):
        controller()


def test_controller_starts_uniform_in_the_papers_range_and_near_uniform_choices():
    controller = CellController()
    values = torch.cat([p.detach().flatten() for p in controller.parameters()])
    assert values.abs().max() <= INIT_RANGE and values.std() > INIT_RANGE / 3
    sample = controller(torch.Generator().manual_seed(1))
    uniform = sum(math.log(n) for n in choice_counts())
    assert sample.entropy.item() == pytest.approx(uniform, rel=0.02)  # temperature 5 flattens the logits


def choice_counts() -> list[int]:
    """The number of options of each decision, in the controller's order."""
    counts = []
    for _ in range(2):
        for node in range(NODES):
            counts += [node + 2, node + 1, len(SAMPLED_OPERATIONS), len(SAMPLED_OPERATIONS)]
    return counts


def test_controller_learns_the_architecture_a_reward_favours():
    """REINFORCE (:class:`PolicyGradient`, Adam at 0.03: the paper's 3.5e-4 is 100 times
    slower), rewarded by the share of decisions that match a known genotype (every node
    sep_conv_3x3 on both cell inputs), makes the controller write that genotype: within 200
    updates of 10 samples the target's probability per decision passes 0.9 (tanh_constant
    caps an operation's at 0.96) and whole samples are the target."""
    torch.manual_seed(0)
    controller = CellController()
    op = SAMPLED_OPERATIONS.index("sep_conv_3x3")
    target = (0, 1, op, op) * (2 * NODES)  # input 1 is choice 1 once input 0 is masked
    policy = PolicyGradient(controller, lr=0.03)
    generator = torch.Generator().manual_seed(1)

    def matches(sample) -> float:
        return sum(a == b for a, b in zip(sample.decisions, target)) / DECISIONS

    for _ in range(200):
        policy.update(generator, matches, samples=10)
    with torch.no_grad():
        per_decision = math.exp(controller(decisions=target).log_prob.item() / DECISIONS)
        hits = sum(controller(generator).decisions == target for _ in range(50))
    assert controller(decisions=target).arch.normal == (("sep_conv_3x3", 0), ("sep_conv_3x3", 1)) * NODES
    assert per_decision > 0.9
    assert hits >= 10


def test_learning_rate_restarts_after_10_then_20_epochs():
    lr = [cosine_with_restarts(0.05, 0.001, epoch, 10, 2) for epoch in range(31)]
    assert lr[0] == lr[10] == lr[30] == 0.05
    assert lr[5] == pytest.approx(0.0255) and lr[20] == pytest.approx(0.0255)
    assert all(a > b for a, b in zip(lr[:9], lr[1:10]))


def test_an_epoch_trains_shared_weights_then_the_controller(cell_space, searching, tiny_data):
    strategy = Enas(context(cell_space, searching, tiny_data))
    supernet, controller = snapshot(strategy.supernet), snapshot(strategy.controller)
    strategy.step()
    assert any(not torch.equal(v, dict(strategy.supernet.named_parameters())[k]) for k, v in supernet.items())
    assert all(not torch.equal(v, dict(strategy.controller.named_parameters())[k]) for k, v in controller.items())
    record = strategy.history[0]
    settings = searching.search.enas
    assert len(record["rewards"]) == len(record["entropies"]) == settings.controller_steps
    assert all(0 <= r <= 1 + ENTROPY_WEIGHT * sum(math.log(n) for n in choice_counts()) for r in record["rewards"])
    assert record["baseline"] == strategy.policy.baseline != 0
    assert record["lr"] == 0.05 and math.isfinite(record["val_loss"])


def test_the_result_is_the_best_of_the_sampled_architectures(cell_space, searching, tiny_data):
    strategy = Enas(context(cell_space, searching, tiny_data))
    result = strategy.run()
    candidates = result.details["derive_candidates"]
    assert len(candidates) == searching.search.enas.derive_samples
    best = max(candidates, key=lambda c: c["val_acc"])
    assert result.val_acc == best["val_acc"]
    assert result.arch == cell_space.from_dict(best["arch"])
    assert [e["epoch"] for e in result.details["controller_epochs"]] == [1, 2]
    assert strategy.result() == result  # deterministic: derived from the run's seed


def test_a_search_stopped_after_an_epoch_resumes_exactly(cell_space, searching, tiny_data):
    expected = Enas(context(cell_space, searching, tiny_data, seed=3)).run()
    first = Enas(context(cell_space, searching, tiny_data, seed=3))
    first.step()
    resumed = Enas(context(cell_space, searching, tiny_data, seed=3))
    resumed.restore(stored(first.checkpoint()))
    assert resumed.steps_done() == 1
    assert resumed.run() == expected


def test_run_stores_enas_as_rl_with_its_reward_curve(smoke_store):
    rows = [row for row in store_rows(smoke_store.path) if row["method"] == "enas"]
    assert len(rows) == 2 and {row["seed"] for row in rows} == {0, 1}
    for row in rows:
        assert row["status"] == "finished" and row["strategy_class"] == "RL"
        assert row["test_acc"] is not None and row["params"] > 0
        epochs = json.loads(row["details_json"])["controller_epochs"]
        assert epochs and all(len(e["rewards"]) == 2 for e in epochs)
