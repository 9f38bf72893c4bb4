"""The LSTM controllers and REINFORCE: ENAS' cell controller writes valid genotypes, replays its
decisions, starts in the paper's range near uniform choices, and learns the architecture a
reward favours."""
from __future__ import annotations

import math

import pytest
import torch
from helpers import cell_choice_counts

from nasbench.spaces.cell.space import NODES, SAMPLED_OPERATIONS
from nasbench.strategies.controller import INIT_RANGE, CellController, PolicyGradient

DECISIONS = 2 * NODES * 4
"""Two inputs and two operations per node, in two cell types."""


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
    uniform = sum(math.log(n) for n in cell_choice_counts())
    assert sample.entropy.item() == pytest.approx(uniform, rel=0.02)  # temperature 5 flattens the logits


@pytest.mark.slow
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
