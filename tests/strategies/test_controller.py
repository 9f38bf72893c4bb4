"""The LSTM controllers and REINFORCE: ENAS' cell controller writes valid genotypes, replays its
decisions, starts in the paper's range (near uniform choices without the official operation
bias, favouring the separable convolutions with it), and learns the architecture a reward
favours."""
from __future__ import annotations

import math

import pytest
import torch
from helpers import cell_choice_counts

from nasbench.spaces.cell.space import NODES, SAMPLED_OPERATIONS
from nasbench.strategies.controller import (
    INIT_RANGE,
    MICRO_SQUASH,
    CellController,
    PolicyGradient,
)

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
    """Without the operation bias (as NASNet runs this controller); with it, every parameter
    but the bias starts in the range too."""
    controller = CellController()
    assert controller.op_bias is None
    values = torch.cat([p.detach().flatten() for p in controller.parameters()])
    assert values.abs().max() <= INIT_RANGE and values.std() > INIT_RANGE / 3
    sample = controller(torch.Generator().manual_seed(1))
    uniform = sum(math.log(n) for n in cell_choice_counts())
    assert sample.entropy.item() == pytest.approx(uniform, rel=0.02)  # temperature 5 flattens the logits
    biased = CellController(operation_bias=True)
    assert all(p.abs().max() <= INIT_RANGE for name, p in biased.named_parameters() if name != "op_bias")


FAVOURED = ("sep_conv_3x3", "sep_conv_5x5")
"""The official micro controller's operations 0 and 1 (micro_child.py:567-573)."""


def test_enas_operation_bias_is_the_official_one_by_operation_name():
    """``b_soft`` starts at 10 for operations 0 and 1 and 0 for the rest, is learned, and goes
    in before the squash in both cell types; ``b_soft_no_learn``, +0.25 and -0.25, is fixed
    and goes in after it, in normal cells only (melodyguan/enas, micro_controller.py:100-109,
    178-185, 79). With a zero LSTM output the logits are the biases alone."""
    controller = CellController(**MICRO_SQUASH, operation_bias=True)
    learned = dict(zip(SAMPLED_OPERATIONS, controller.op_bias.tolist()))
    assert learned == {op: 10.0 if op in FAVOURED else 0.0 for op in SAMPLED_OPERATIONS}
    assert any(p is controller.op_bias for p in controller.parameters())
    assert "normal_op_bias" not in controller.state_dict()  # a constant, not state
    favoured = 1.10 / 2.5 * math.tanh(10.0)  # the official micro search's squash, no temperature
    zero = torch.zeros(1, controller.lstm.hidden_size)
    with torch.no_grad():
        normal, reduce = (dict(zip(SAMPLED_OPERATIONS, controller.operation_logits(zero, cell_type).tolist()))
                          for cell_type in ("normal", "reduce"))
    for op in SAMPLED_OPERATIONS:
        assert normal[op] == pytest.approx(favoured + 0.25 if op in FAVOURED else -0.25)
        assert reduce[op] == pytest.approx(favoured if op in FAVOURED else 0.0)


def test_the_biased_controller_starts_favouring_the_separable_convolutions():
    """With near-zero LSTM outputs the share of the two favoured operations is, by hand,
    2e^(a+0.25) / (2e^(a+0.25) + 5e^-0.25) = 0.63 in normal cells and 2e^a / (2e^a + 5) = 0.51
    in reduction cells, a = 1.1 / 2.5 tanh(10) under the official micro squash; uniform
    choices would give 2/7."""
    torch.manual_seed(0)
    controller = CellController(**MICRO_SQUASH, operation_bias=True)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        samples = [controller(generator) for _ in range(60)]
    a = 1.10 / 2.5 * math.tanh(10.0)
    expected = {"normal": 2 * math.exp(a + 0.25) / (2 * math.exp(a + 0.25) + 5 * math.exp(-0.25)),
                "reduce": 2 * math.exp(a) / (2 * math.exp(a) + 5)}
    for cell_type, share in expected.items():
        ops = [op for sample in samples for op, _ in getattr(sample.arch, cell_type)]
        assert sum(op in FAVOURED for op in ops) / len(ops) == pytest.approx(share, abs=0.05)


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


def test_enas_runs_its_cell_controller_as_the_official_micro_search(cell_space):
    """No temperature, tanh constant 1.1, operations' 2.5-fold reduced, the bias on
    (melodyguan/enas scripts/cifar10_micro_search.sh:36-37); NASNet's use stays plain."""
    from nasbench.strategies.enas import ENAS_SPACES

    controller = ENAS_SPACES["cell"].controller(cell_space)
    assert (controller.temperature, controller.tanh_constant, controller.op_tanh_reduce) == (1.0, 1.10, 2.5)
    assert controller.op_bias is not None
    logits = torch.tensor([100.0, -100.0, 0.0])
    assert controller.squash(logits, controller.op_tanh_reduce).tolist() == pytest.approx([0.44, -0.44, 0.0])
