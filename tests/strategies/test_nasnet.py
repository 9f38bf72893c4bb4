"""NASNet's search: its controller (valid architectures of the NASNet space, replayed
decisions, the paper's initialisation), PPO (the baseline, learning a favoured
architecture), the minibatches of children, and `nasbench run` on the smoke protocol, on its
own space and on the shared cell space."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch
from helpers import (
    run_cli,
    store_rows,
    store_trials,
)

from nasbench.report import load_runs, summarise
from nasbench.spaces import get_space
from nasbench.spaces.cell.genotype import Genotype
from nasbench.spaces.cell.space import NODES, SAMPLED_OPERATIONS
from nasbench.spaces.nasnet.arch import BLOCKS, COMBINATIONS, OPERATIONS, decision_sizes
from nasbench.strategies.controller import INIT_RANGE
from nasbench.strategies.nasnet import (
    NASNET_CONTROLLERS,
    NasnetController,
    ProximalPolicy,
)


@pytest.fixture(scope="module")
def space():
    return get_space("nasnet")


def test_controller_writes_valid_architectures_and_scores_its_own_decisions(space):
    controller = NasnetController()
    generator = torch.Generator().manual_seed(0)
    samples = [controller(generator) for _ in range(20)]
    for sample in samples:
        assert len(sample.decisions) == 2 * 5 * BLOCKS and sample.arch.decisions() == sample.decisions
        assert space.from_dict(space.to_dict(sample.arch)) == sample.arch
        replayed = controller(decisions=sample.decisions)
        assert replayed.arch == sample.arch
        torch.testing.assert_close(replayed.log_prob, sample.log_prob)
        torch.testing.assert_close(replayed.entropy, sample.entropy)
    assert len({s.arch for s in samples}) == len(samples)
    # NASNet may feed one state to both inputs of a block: the controller does not mask it
    assert any(a == b for s in samples for _, cell in s.arch.cells() for a, b in (blk.inputs for blk in cell.blocks))


def test_controller_is_the_papers_one_layer_lstm_starting_near_uniform():
    controller = NasnetController()
    values = torch.cat([p.detach().flatten() for p in controller.parameters()])
    assert values.abs().max() <= INIT_RANGE and values.std() > INIT_RANGE / 3
    assert controller.lstm.hidden_size == 100
    uniform = sum(math.log(n) for n in decision_sizes())
    assert controller(torch.Generator().manual_seed(1)).entropy.item() == pytest.approx(uniform, rel=0.02)


def test_the_baseline_averages_the_rewards_before_each_child():
    policy = ProximalPolicy(NasnetController())
    torch.testing.assert_close(policy.advantages([0.5, 0.7]), torch.tensor([0.0, 0.2]))
    assert policy.baseline == pytest.approx(0.95 * 0.5 + 0.05 * 0.7)
    assert policy.advantages([0.5])[0].item() == pytest.approx(0.5 - (0.95 * 0.5 + 0.05 * 0.7))


@pytest.mark.slow
def test_ppo_learns_the_architecture_a_reward_favours():
    """PPO (Adam at 0.01: the paper's 3.5e-4 is 30 times slower; 4 passes a minibatch of 10),
    rewarded by the share of decisions that match a known architecture (every block
    sep_conv_3x3 on h_i twice, added), makes the controller write it within 30 updates."""
    torch.manual_seed(0)
    controller = NasnetController()
    policy = ProximalPolicy(controller, lr=0.01, epochs=4)
    generator = torch.Generator().manual_seed(1)
    op = OPERATIONS.index("sep_conv_3x3")
    target = (1, 1, op, op, COMBINATIONS.index("add")) * (2 * BLOCKS)
    for _ in range(30):
        children = []
        with torch.no_grad():
            for _ in range(10):
                sample = controller(generator)
                children.append({"decisions": sample.decisions, "log_prob": sample.log_prob.item(),
                                 "reward": sum(a == b for a, b in zip(sample.decisions, target)) / len(target)})
        policy.update(children)
    with torch.no_grad():
        per_decision = math.exp(controller(decisions=target).log_prob.item() / len(target))
    assert per_decision > 0.9
    assert str(controller(decisions=target).arch).count("sep_conv_3x3(h_i)") == 4 * BLOCKS


def test_on_the_cell_space_the_controller_writes_genotypes_with_plain_logits():
    """On the shared cell space a block has four decisions (two distinct inputs, two of the
    seven DARTS operations; always added), and NASNet's logits are not squashed: its
    untrained controller is near uniform. (It is ENAS' micro controller, whose learning of a
    favoured genotype tests/strategies/test_controller.py checks; PPO's is checked above.)"""
    torch.manual_seed(0)
    controller = NASNET_CONTROLLERS["cell"]()
    assert controller.tanh_constant is None and controller.lstm.hidden_size == 100
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        samples = [controller(generator) for _ in range(20)]
    for sample in samples:
        assert isinstance(sample.arch, Genotype) and len(sample.decisions) == 2 * NODES * 4
        assert all(a != b for a, b in zip(sample.arch.normal[::2], sample.arch.normal[1::2]))
        assert controller(decisions=sample.decisions).log_prob.item() == pytest.approx(sample.log_prob.item(), abs=1e-5)
    uniform = sum(math.log(n) for node in range(NODES) for n in (node + 2, node + 1,
                                                                 len(SAMPLED_OPERATIONS), len(SAMPLED_OPERATIONS)))
    assert all(abs(-s.log_prob.item() - 2 * uniform) < 1.0 for s in samples)


@pytest.mark.slow
def test_run_searches_the_shared_cell_space_and_reports_it_beside_random_search(tmp_path, data_path):
    """`nasbench run --method nasnet --space cell` trains cell-space children by the same
    candidate stage as random search: both land in one report table, NASNet's row without
    NASNet-A's published figures (those are of its own space)."""
    store = tmp_path / "cell.sqlite"
    for method in (("--method", "nasnet", "--space", "cell"), ("--method", "random")):
        result = run_cli("run", *method, "--protocol", "smoke", "--seeds", "0", "--store", store,
                         "--data", data_path, "--no-progress")
        assert result.code == 0, result.err
    nasnet, random = store_rows(store)
    assert nasnet["space"] == random["space"] == "cell" and nasnet["variant"] == "space=cell"
    assert nasnet["status"] == "finished" and nasnet["strategy_class"] == "RL" and nasnet["test_acc"] is not None
    Genotype.from_json(nasnet["genotype_json"])
    trials = store_trials(store, nasnet["id"])
    assert len(trials) == len(store_trials(store, random["id"]))
    assert json.loads(nasnet["details_json"])["child_trainings"] == len(trials)
    summary = summarise(load_runs(store))
    assert set(summary["space"]) == {"cell"}
    row = summary[summary["method"] == "nasnet"].iloc[0]
    assert row["space"] == "cell" and pd.isna(row["published_source"])
