"""ENAS' macro search space and ENAS searching it: the architecture value, its networks, the
supernet's weight sharing, the macro controller (learning a favoured architecture, the KL
penalty on skip connections), and a search that derives, resumes and final-trains."""
from __future__ import annotations

import json
import math
import random
from collections import Counter

import pytest
import torch
from torch import nn

from nasbench.data import Augmentation
from nasbench.errors import ConfigError
from nasbench.protocol import load_protocol, protocol_from_file
from nasbench.spaces import get_space
from nasbench.spaces.base import NetworkConfig
from nasbench.spaces.enas_macro.network import OPERATIONS, make_operation, reduction_layers
from nasbench.spaces.enas_macro.space import MacroArch
from nasbench.spaces.enas_macro.supernet import MacroSupernet, path_weights
from nasbench.strategies.controller import ENTROPY_WEIGHT, INIT_RANGE, PolicyGradient
from nasbench.strategies.enas import Enas
from nasbench.strategies.macro_controller import SKIP_TARGET, MacroController, skip_penalty

from conftest import run_cli, store_rows
from test_darts import context, snapshot, stored, with_supernet

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def smoke_space(smoke):
    """3 layers, pooling after the first and the second."""
    return get_space("enas-macro", smoke)


@pytest.fixture(scope="module")
def proxy_space():
    """6 layers, pooling after the second and the fourth."""
    return get_space("enas-macro", load_protocol("proxy"))


def batch(data, n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` normalised CIFAR-10 images of search-train and their labels."""
    split = data.search_train
    return Augmentation(CPU).normalise(split.images[:n]), split.labels[:n]


# -- the architecture value ---------------------------------------------------------------

def test_architectures_round_trip_through_json_and_read_as_text(proxy_space):
    arch = MacroArch(("conv_3x3", "sep_conv_5x5", "max_pool_3x3", "conv_5x5", "avg_pool_3x3", "sep_conv_3x3"),
                     ((), (0,), (), (0, 2), (1,), (0, 1, 2, 3, 4)))
    assert proxy_space.from_dict(json.loads(json.dumps(proxy_space.to_dict(arch)))) == arch
    assert hash(proxy_space.from_dict(arch.to_dict())) == hash(arch)
    assert str(arch) == ("conv_3x3 | sep_conv_5x5 +0 | max_pool_3x3 | conv_5x5 +0 +2 | avg_pool_3x3 +1 | "
                         "sep_conv_3x3 +0 +1 +2 +3 +4")
    assert proxy_space.skip_share(arch) == {"skips": 9 / 15}


@pytest.mark.parametrize("data, problem", [
    ([], "JSON object"),
    ({"operations": ["conv_3x3"] * 6}, "JSON object"),
    ({"operations": ["conv_3x3"] * 6, "skips": [[]] * 6, "extra": 1}, "JSON object"),
    ({"operations": ["conv_3x3"] * 5, "skips": [[]] * 5}, "has 5 operations and 5 skip lists, but the protocol's "
                                                            "enas-macro layout has 6 layers"),
    ({"operations": ["conv_3x3"] * 5 + ["skip"], "skips": [[]] * 6}, "unknown operation 'skip'"),
    ({"operations": ["conv_3x3"] * 6, "skips": [[0]] + [[]] * 5}, r"layer 0's skips \[0\] must be empty"),
    ({"operations": ["conv_3x3"] * 6, "skips": [[], [], [1, 2]] + [[]] * 3}, r"layer 2's skips \[1, 2\] must be"),
    ({"operations": ["conv_3x3"] * 6, "skips": [[], [], [1, 0]] + [[]] * 3}, "increasing integers in 0..1"),
    ({"operations": ["conv_3x3"] * 6, "skips": [[], [], [0, 0]] + [[]] * 3}, "increasing integers"),
    ({"operations": ["conv_3x3"] * 6, "skips": [[], [], ["0"]] + [[]] * 3}, "increasing integers"),
])
def test_malformed_architectures_fail_with_one_line_saying_what_is_wrong(proxy_space, data, problem):
    with pytest.raises(ConfigError, match=problem) as err:
        proxy_space.from_dict(data, where="arch.json")
    assert str(err.value).startswith("arch.json: ") and len(str(err.value).splitlines()) == 1


def test_sampling_is_uniform_and_uses_only_the_rng(proxy_space):
    archs = [proxy_space.sample(random.Random(seed)) for seed in range(600)]
    assert archs[:5] == [proxy_space.sample(random.Random(seed)) for seed in range(5)]
    assert all(proxy_space.from_dict(a.to_dict()) == a for a in archs)
    operations = Counter(op for a in archs for op in a.operations)
    assert set(operations) == set(OPERATIONS)
    assert all(abs(n / (600 * 6) - 1 / 6) < 0.02 for n in operations.values())
    density = sum(proxy_space.skip_share(a)["skips"] for a in archs) / len(archs)
    assert abs(density - 0.5) < 0.02  # each skip with probability 1/2
    every_skip = {(layer, j) for a in archs for layer, skips in enumerate(a.skips) for j in skips}
    assert every_skip == {(layer, j) for layer in range(6) for j in range(layer)}


def test_mutation_changes_one_operation_or_one_skip_connection(proxy_space):
    rng = random.Random(0)
    kinds = Counter()
    for _ in range(200):
        arch = proxy_space.sample(rng)
        child = proxy_space.mutate(arch, rng)
        assert proxy_space.from_dict(child.to_dict()) == child != arch
        ops = [i for i, (a, b) in enumerate(zip(arch.operations, child.operations)) if a != b]
        flips = [(i, j) for i, (a, b) in enumerate(zip(arch.skips, child.skips)) for j in set(a) ^ set(b)]
        assert len(ops) + len(flips) == 1
        kinds["op" if ops else "skip"] += 1
    assert kinds["op"] > 80 and kinds["skip"] > 60  # the first layer can only change its operation


def test_a_protocol_without_the_layout_or_with_too_few_layers_is_refused(tmp_path):
    raw = json.loads(load_protocol("smoke").to_json())
    del raw["enas_macro"], raw["name"]
    path = tmp_path / "nolayout.yaml"
    path.write_text(json.dumps(raw))  # JSON is YAML
    protocol = protocol_from_file(path)
    assert protocol.hash == load_protocol("smoke").hash  # a space's layout is not part of the hash
    with pytest.raises(ConfigError, match=r"protocol nolayout has no \[enas_macro\] section \(layers\)"):
        get_space("enas-macro", protocol)
    path = tmp_path / "shallow.toml"
    path.write_text('base = "smoke"\n[enas_macro]\nlayers = 2\n')
    with pytest.raises(ConfigError, match="layers must be >= 3"):
        protocol_from_file(path)
    assert [load_protocol(name).enas_macro.layers for name in ("smoke", "proxy", "full")] == [3, 6, 12]


# -- networks ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", OPERATIONS)
def test_every_operation_keeps_the_shape_behind_a_1x1_convolution(name):
    c = 6
    op = make_operation(name, c)
    x = torch.randn(2, c, 8, 8)
    assert op(x).shape == x.shape
    conv = {"conv_3x3": 9 * c * c, "conv_5x5": 25 * c * c, "sep_conv_3x3": 9 * c + c * c,
            "sep_conv_5x5": 25 * c + c * c}.get(name)
    conv = 0 if conv is None else conv + 2 * c  # a convolution's weights and its batch norm's
    assert sum(p.numel() for p in op.parameters()) == c * c + 2 * c + conv


@pytest.mark.parametrize("name", OPERATIONS)
def test_networks_of_every_operation_train_and_pool_where_the_code_does(name, proxy_space, tiny_data):
    torch.manual_seed(0)
    arch = MacroArch((name,) * 6, tuple(tuple(range(layer)) for layer in range(6)))  # every skip
    model = proxy_space.build(arch, NetworkConfig(channels=4, cells=5))
    sizes = []
    for layer in model.layers:
        layer.ops[name].register_forward_hook(lambda module, inputs, out: sizes.append(out.shape[1:]))
    images, labels = batch(tiny_data)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(6):
        logits, aux = model.forward_train(images)
        loss = nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
        optimizer.step()
        losses.append(loss.item())
    assert aux is None and logits.shape == (16, 10)
    assert reduction_layers(6) == (1, 3)
    assert [tuple(s) for s in sizes[:6]] == [(4, 32, 32)] * 2 + [(4, 16, 16)] * 2 + [(4, 8, 8)] * 2
    assert losses[-1] < losses[0]


# -- the supernet ------------------------------------------------------------------------------

def test_the_supernet_path_is_the_architectures_network(proxy_space, tiny_data):
    """Given the supernet's weights (its parameter names are a superset), the network built
    from an architecture computes exactly what the supernet's path for it computes, in
    training and in eval mode, whether only the path runs or every term at weight zero."""
    torch.manual_seed(0)
    supernet = MacroSupernet(6, 4)
    images, _ = batch(tiny_data, 8)
    for seed in range(3):
        arch = proxy_space.sample(random.Random(seed))
        network = proxy_space.build(arch, NetworkConfig(channels=4, cells=5))
        shared = supernet.state_dict()
        network.load_state_dict({name: shared[name] for name in network.state_dict()})
        weights = path_weights(arch, CPU)
        for train in (False, True):  # eval first: a training pass updates the running statistics
            outputs = []
            for model, inputs in ((network, ()), (supernet, (weights, True)), (supernet, (weights, False))):
                model.train(train)
                torch.manual_seed(1)  # the same dropout mask
                outputs.append(model(images, *inputs))
            torch.testing.assert_close(outputs[1], outputs[0], rtol=0, atol=0)
            torch.testing.assert_close(outputs[2], outputs[0])


def test_a_path_trains_only_its_own_operations(proxy_space, tiny_data):
    torch.manual_seed(0)
    supernet = MacroSupernet(6, 4)
    arch = proxy_space.sample(random.Random(3))
    images, labels = batch(tiny_data, 8)
    optimizer = torch.optim.SGD(supernet.weight_parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    before = snapshot(supernet)
    nn.functional.cross_entropy(supernet(images, path_weights(arch, CPU)), labels).backward()
    optimizer.step()
    changed = {name for name, p in supernet.named_parameters() if not torch.equal(p, before[name])}
    for layer, chosen in enumerate(arch.operations):
        for op in OPERATIONS:
            mine = {name for name in before if name.startswith(f"layers.{layer}.ops.{op}.")}
            assert mine <= changed if op == chosen else not mine & changed, (layer, op)
    assert {"stem.0.weight", "classifier.weight"} <= changed


def test_supernet_weights_of_another_shape_are_refused():
    with pytest.raises(ValueError, match=r"need \(3, 6\) operations and \(3, 3\) skips"):
        MacroSupernet(3, 4)(torch.zeros(1, 3, 32, 32), {"operations": torch.zeros(3, 6), "skips": torch.zeros(2, 2)})


# -- the controller -----------------------------------------------------------------------------

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


# -- the search ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def searching(tiny):
    """Two epochs of four batches of 8 images on a 4-channel, 3-layer supernet."""
    return with_supernet(tiny, epochs=2, channels=4, batch_size=8)


@pytest.fixture(scope="module")
def tiny_space(tiny):
    return get_space("enas-macro", tiny)


def test_enas_searches_the_macro_space_and_derives_the_best_sample(tiny_space, searching, tiny_data):
    strategy = Enas(context(tiny_space, searching, tiny_data))
    assert isinstance(strategy.supernet, MacroSupernet) and isinstance(strategy.controller, MacroController)
    supernet, controller = snapshot(strategy.supernet), snapshot(strategy.controller)
    strategy.step()
    assert any(not torch.equal(v, dict(strategy.supernet.named_parameters())[k]) for k, v in supernet.items())
    assert all(not torch.equal(v, dict(strategy.controller.named_parameters())[k]) for k, v in controller.items())
    record = strategy.history[0]
    settings = searching.search.enas
    assert len(record["rewards"]) == len(record["skip_shares"]) == settings.controller_steps
    assert all(0 <= r <= 1 + ENTROPY_WEIGHT * (3 * math.log(6) + 3 * math.log(2)) for r in record["rewards"])
    assert all(set(share) == {"skips"} and 0 <= share["skips"] <= 1 for share in record["skip_shares"])
    result = strategy.run()
    candidates = result.details["derive_candidates"]
    assert len(candidates) == settings.derive_samples
    best = max(candidates, key=lambda c: c["val_acc"])
    assert result.val_acc == best["val_acc"] and result.arch == tiny_space.from_dict(best["arch"])
    assert strategy.result() == result


def test_a_macro_search_stopped_after_an_epoch_resumes_exactly(tiny_space, searching, tiny_data):
    expected = Enas(context(tiny_space, searching, tiny_data, seed=3)).run()
    first = Enas(context(tiny_space, searching, tiny_data, seed=3))
    first.step()
    resumed = Enas(context(tiny_space, searching, tiny_data, seed=3))
    resumed.restore(stored(first.checkpoint()))
    assert resumed.steps_done() == 1
    assert resumed.run() == expected


def test_run_searches_the_macro_space_and_final_trains(tmp_path, data_path, smoke):
    store = tmp_path / "macro.sqlite"
    result = run_cli("run", "--method", "enas", "--space", "enas-macro", "--protocol", "smoke", "--seeds", "0",
                     "--store", store, "--json", "--data", data_path, "--no-progress")
    assert result.code == 0, result.err
    (row,) = store_rows(store)
    assert row["status"] == "finished" and row["space"] == "enas-macro" and row["variant"] == "space=enas-macro"
    assert row["test_acc"] is not None and row["params"] > 0
    arch = get_space("enas-macro", smoke).from_dict(json.loads(row["genotype_json"]))
    details = json.loads(row["details_json"])
    assert arch.to_dict() in [c["arch"] for c in details["derive_candidates"]]
    assert [len(e["rewards"]) for e in details["controller_epochs"]] == [smoke.search.enas.controller_steps]
