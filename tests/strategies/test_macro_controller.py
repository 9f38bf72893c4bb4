"""ENAS' macro controller: valid architectures with replayed decisions, the paper's initialisation,
learning a favoured architecture, and the KL penalty on skip connections."""
from __future__ import annotations

import math

import pytest
import torch

from nasbench.protocol import load_protocol
from nasbench.spaces import get_space
from nasbench.spaces.enas_macro.plan import OPERATIONS
from nasbench.spaces.enas_macro.space import MacroArch
from nasbench.strategies.controller import INIT_RANGE, PolicyGradient
from nasbench.strategies.macro_controller import (
    SKIP_TARGET,
    MacroController,
    skip_penalty,
)


@pytest.fixture(scope="module")
def proxy_space():
    """6 layers, pooling after the second and the fourth."""
    return get_space("enas-macro", load_protocol("proxy"))


def test_controller_writes_architectures_and_scores_its_own_decisions(proxy_space):
    torch.manual_seed(0)
    controller = MacroController(6)
    generator = torch.Generator().manual_seed(0)
    samples = [controller(generator) for _ in range(20)]
    for sample in samples:
        assert proxy_space.from_dict(sample.arch.to_dict()) == sample.arch
        assert len(sample.decisions) == 6 + 15  # an operation per layer, a skip bit per earlier state
        replayed = controller(decisions=sample.decisions)
        assert replayed.arch == sample.arch
        for field in ("log_prob", "entropy", "skip_kl"):
            torch.testing.assert_close(getattr(replayed, field), getattr(sample, field))
    assert len({s.arch for s in samples}) == len(samples)
    values = torch.cat([p.detach().flatten() for p in controller.parameters()])
    assert values.abs().max() <= INIT_RANGE and values.std() > INIT_RANGE / 3
    uniform = 6 * math.log(6) + 15 * math.log(2)  # temperature 5 flattens the logits
    assert samples[0].entropy.item() == pytest.approx(uniform, rel=0.02)
    # every skip near probability 1/2: per layer the summed KL(1/2 || 0.4), averaged over the 5 layers
    kl_half = 0.5 * math.log(0.5 / SKIP_TARGET) + 0.5 * math.log(0.5 / (1 - SKIP_TARGET))
    assert samples[0].skip_kl.item() == pytest.approx(kl_half * 15 / 5, rel=0.1)


@pytest.mark.slow
def test_controller_learns_the_architecture_a_reward_favours():
    """REINFORCE (Adam at 0.03, as the micro controller's test), rewarded by the share of
    decisions that match a known architecture (every layer a 3x3 separable convolution with
    every skip connection), without the KL penalty (which would hold the skip probabilities
    at 0.4): within 150 updates of 10 samples the target's probability per decision reaches
    its cap (tanh_constant caps an operation's at 0.97, a skip's at 0.92) and whole samples
    are the target."""
    torch.manual_seed(0)
    controller = MacroController(6)
    op = OPERATIONS.index("sep_conv_3x3")
    target = tuple(d for layer in range(6) for d in (op, *[1] * layer))
    policy = PolicyGradient(controller, lr=0.03)
    generator = torch.Generator().manual_seed(1)

    def matches(sample) -> float:
        return sum(a == b for a, b in zip(sample.decisions, target)) / len(target)

    for _ in range(150):
        policy.update(generator, matches, samples=10)
    with torch.no_grad():
        best = controller(decisions=target)
        per_decision = math.exp(best.log_prob.item() / len(target))
        hits = sum(controller(generator).decisions == target for _ in range(50))
    assert best.arch == MacroArch(("sep_conv_3x3",) * 6, tuple(tuple(range(layer)) for layer in range(6)))
    assert per_decision > 0.93
    assert hits >= 5


def skip_density(controller: MacroController, generator: torch.Generator, samples: int = 200) -> float:
    with torch.no_grad():
        return sum(sum(map(len, controller(generator).arch.skips)) for _ in range(samples)) / (samples * 15)


@pytest.mark.slow
def test_the_kl_penalty_pulls_the_skip_density_to_the_target():
    """With no reward, the penalty alone takes the density from 1/2 to 0.4 (and the KL to
    about zero); against a reward for every skip connection, which without it drives the
    density past 0.9 in 50 updates, it holds the density below 0.6."""
    def trained(reward, penalty) -> tuple[MacroController, torch.Generator]:
        torch.manual_seed(0)
        controller = MacroController(6)
        generator = torch.Generator().manual_seed(1)
        policy = PolicyGradient(controller, lr=0.01, penalty=penalty)
        for _ in range(50):
            policy.update(generator, reward, samples=5)
        return controller, generator

    torch.manual_seed(0)
    assert abs(skip_density(MacroController(6), torch.Generator().manual_seed(1)) - 0.5) < 0.03
    alone, generator = trained(lambda s: 0.0, skip_penalty)
    assert abs(skip_density(alone, generator) - SKIP_TARGET) < 0.03
    with torch.no_grad():
        assert alone(generator).skip_kl.item() < 0.01

    def dense(sample) -> float:
        return sum(map(len, sample.arch.skips)) / 15

    assert skip_density(*trained(dense, skip_penalty)) < 0.6
    assert skip_density(*trained(dense, None)) > 0.9
