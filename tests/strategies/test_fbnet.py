"""FBNet on the FBNet layer-wise space: its temperature, warm-up (weights only, then theta),
the final architectures sampled from theta, every block running in the supernet, and a
tighter target giving a cheaper distribution and cheaper samples."""
from __future__ import annotations

import math

import pytest
import torch
from helpers import context, flops_constraint, random_batch, snapshot, with_supernet

from nasbench.spaces.fbnet.candidates import BLOCK_NAMES
from nasbench.spaces.fbnet.supernet import sample_arch
from nasbench.strategies.fbnet import TEMPERATURE_DECAY, TEMPERATURE_START, Fbnet

# -- FBNet -----------------------------------------------------------------------------

def test_fbnet_temperature_decays_by_exp_minus_0045_per_epoch(fbnet_space, fbnet_searching, tiny_data):
    strategy = Fbnet(context(fbnet_space, fbnet_searching, tiny_data))
    temperatures = []
    for epoch in range(4):
        strategy.epochs_done = epoch
        temperatures.append(strategy.temperature())
    assert temperatures == pytest.approx([5.0 * math.exp(-0.045 * e) for e in range(4)])
    assert TEMPERATURE_START == 5.0 and TEMPERATURE_DECAY == 0.045


def test_fbnet_warm_up_trains_weights_only_then_theta_moves(fbnet_space, tiny, tiny_data):
    protocol = with_supernet(tiny, epochs=9, batch_size=8)  # warm-up: round(9 / 9) = 1 epoch
    strategy = Fbnet(context(fbnet_space, protocol, tiny_data))
    assert strategy.warmup_epochs() == 1
    alpha = strategy.supernet.alpha.detach().clone()
    weights = snapshot(strategy.supernet)
    strategy.step()
    assert torch.equal(strategy.supernet.alpha, alpha)
    assert any(not torch.equal(p, weights[n]) for n, p in strategy.supernet.named_parameters() if n != "alphas.layers")
    strategy.step()
    assert not torch.equal(strategy.supernet.alpha, alpha)


@pytest.mark.slow
def test_fbnet_samples_its_final_architectures_from_theta_and_keeps_the_best(fbnet_space, fbnet_searching, tiny_data):
    strategy = Fbnet(context(fbnet_space, fbnet_searching, tiny_data))
    result = strategy.run()
    assert len(strategy.trials) == strategy.samples() == min(6, fbnet_searching.search.candidates)
    assert result.val_acc == max(t.val_acc for t in strategy.trials)
    assert fbnet_space.to_dict(result.arch) in [t.arch for t in strategy.trials]
    assert len(result.details["epochs"]) == 4


def test_fbnet_every_block_runs_in_the_supernet(fbnet_space, fbnet_searching, tiny_data):
    strategy = Fbnet(context(fbnet_space, fbnet_searching, tiny_data))
    calls = []
    for layer in strategy.supernet.layers:
        for block in layer:
            block.register_forward_hook(lambda *_: calls.append(1))
    strategy.loss(random_batch(torch.Generator().manual_seed(0), size=32), strategy.search_weights())
    assert len(calls) == len(fbnet_space.specs) * len(BLOCK_NAMES)


@pytest.mark.slow
def test_a_tighter_target_gives_fbnet_a_cheaper_distribution_and_cheaper_samples(fbnet_space, tiny, tiny_data):
    """Targets far above every network (no pressure) and far below every network, in the
    hinged log form whose strength is its exponent (weight and target are constant factors)."""
    protocol = with_supernet(tiny, epochs=6, batch_size=4)
    expected, sampled = {}, {}
    for target in (1e12, 1e5):
        constraint = flops_constraint(fbnet_space, protocol, target, weight=0.2, form="mul-log-hinge", exponent=4.0)
        strategy = Fbnet(context(fbnet_space, protocol, tiny_data, constraint=constraint))
        while strategy.epochs_done < strategy.supernet_epochs():
            strategy.step()
        expected[target] = strategy.history[-1]["expected_cost"]
        generator = torch.Generator().manual_seed(0)
        sampled[target] = sum(constraint.cost_model.cost(sample_arch(dict(strategy.supernet.alphas), generator))
                              for _ in range(50)) / 50
    assert expected[1e5] < 0.95 * expected[1e12]
    assert sampled[1e5] < sampled[1e12]
