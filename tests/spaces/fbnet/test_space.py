"""The FBNet layer-wise space: its layout from the protocol, its architectures, blocks,
cost decomposition, supernet, and a real (tiny) profile of it on this CPU."""
from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import tomllib
from importlib import resources

import pytest
import torch
from helpers import SUBPROCESS_ENV
from torch import nn

from nasbench.errors import ConfigError, NasbenchError
from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.counting import count_flops, count_params
from nasbench.hardware.mac import count_mac
from nasbench.hardware.profiler import counts_table, final_network
from nasbench.hardware.table import CostTable
from nasbench.protocol import load_protocol, protocol_from_file
from nasbench.provenance import device_fingerprint
from nasbench.spaces import get_space, space_for_table
from nasbench.spaces.fbnet.blocks import InvertedResidual, make_block
from nasbench.spaces.fbnet.candidates import BLOCK_NAMES
from nasbench.spaces.fbnet.network import FbnetNetwork
from nasbench.spaces.fbnet.space import (
    FbnetLayout,
    FbnetSpace,
    LayerArch,
    plan_layers,
)
from nasbench.spaces.fbnet.supernet import LayerSupernet
from nasbench.strategies import check_protocol

PAPER_IMAGENET = FbnetLayout(resolution=224, stem_channels=16, stem_stride=2, stage_layers=(1, 4, 4, 4, 4, 4, 1),
                             stage_channels=(16, 24, 32, 64, 112, 184, 352), stage_strides=(1, 2, 2, 2, 1, 2, 1),
                             head_channels=1984)


@pytest.fixture(scope="module")
def smoke_space(smoke):
    return get_space("fbnet", smoke)


def write_protocol(tmp_path, text: str, name: str = "custom"):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return check_protocol(protocol_from_file(path))


# -- layout ---------------------------------------------------------------------------

def test_full_layout_plans_22_layers_with_stage_strides_and_widths():
    layout = FbnetSpace.read_layout(load_protocol("full"))
    specs = plan_layers(layout)
    assert len(specs) == 22
    i, c, size = 0, layout.stem_channels, layout.resolution // layout.stem_stride
    for layers, width, stride in zip(layout.stage_layers, layout.stage_channels, layout.stage_strides):
        for j in range(layers):
            spec = specs[i]
            assert (spec.c_in, spec.size) == (c, size)
            assert spec.c_out == width and spec.stride == (stride if j == 0 else 1)
            c, size, i = width, size // spec.stride, i + 1
    assert (specs[-1].c_out, specs[-1].size) == (352, 4)  # CIFAR strides: 32 / 8


def test_paper_imagenet_layout_ends_at_7x7_with_352_channels():
    PAPER_IMAGENET.check("paper layout")
    specs = plan_layers(PAPER_IMAGENET)
    assert len(specs) == 22 and specs[0].size == 112
    assert specs[-1].size // specs[-1].stride == 7 and specs[-1].c_out == 352
    net = FbnetNetwork(LayerArch(("skip",) * 22), PAPER_IMAGENET, 1000).eval()
    seen = {}
    net.head.register_forward_hook(lambda m, args, out: seen.update(head_in=args[0].shape, head_out=out.shape))
    with torch.no_grad():
        logits = net(torch.zeros(1, 3, 224, 224))
    assert seen["head_in"] == (1, 352, 7, 7) and seen["head_out"] == (1, 1984, 7, 7)
    assert logits.shape == (1, 1000)


@pytest.mark.parametrize("override, problem", [
    ("stage_channels = [4, 4, 8]", "same, non-zero length"),
    ("stage_channels = [4, 4, 8, 8, 8, 16, 15]", "even numbers"),
    ("stem_channels = 3", "even numbers"),
    ("stage_strides = [1, 1, 3, 2, 1, 2, 1]", "strides must be 1 or 2"),
    ("resolution = 36", "multiple of the layout's total stride 8"),
    ("stem_stride = 2\nresolution = 40", "multiple of the layout's total stride 16"),
])
def test_layout_check_refuses_bad_fbnet_sections(tmp_path, override, problem):
    with pytest.raises(ConfigError, match="fbnet") as err:
        write_protocol(tmp_path, f'base = "smoke"\n\n[fbnet]\n{override}\n')
    assert problem in str(err.value) and len(str(err.value).splitlines()) == 1


def test_layout_override_keeps_the_other_keys_of_the_base(tmp_path):
    protocol = write_protocol(tmp_path, 'base = "smoke"\n[fbnet]\nhead_channels = 48\n')
    assert FbnetSpace.read_layout(protocol) == dataclasses.replace(FbnetSpace.read_layout(load_protocol("smoke")),
                                                                  head_channels=48)


# -- protocol hash and the missing section ----------------------------------------------

def test_fbnet_section_is_not_part_of_the_protocol_hash(tmp_path):
    proxy = load_protocol("proxy")
    assert proxy.hash == "fe20dc00b280"
    other = write_protocol(tmp_path, 'base = "proxy"\n[fbnet]\nhead_channels = 1000\n')
    assert FbnetSpace.read_layout(other).head_channels == 1000 != FbnetSpace.read_layout(proxy).head_channels
    assert other.hash == proxy.hash == "fe20dc00b280"


def test_protocol_without_fbnet_section_gives_one_line_error(tmp_path):
    raw = json.loads(load_protocol("proxy").to_json())
    del raw["fbnet"], raw["name"]  # named after the file
    path = tmp_path / "nofbnet.yaml"
    path.write_text(json.dumps(raw))  # JSON is YAML
    protocol = protocol_from_file(path)
    assert protocol.section("fbnet") is None and protocol.hash == load_protocol("proxy").hash
    with pytest.raises(ConfigError) as err:
        get_space("fbnet", protocol)
    message = str(err.value)
    assert len(message.splitlines()) == 1 and "[fbnet]" in message and "nofbnet" in message
    assert "stage_channels" in message


# -- architectures ----------------------------------------------------------------------

def test_layer_arch_is_a_hashable_value(smoke_space):
    a = smoke_space.sample(random.Random(3))
    b = LayerArch(tuple(list(a.blocks)))
    assert a == b and a is not b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != LayerArch(a.blocks[:-1] + ("skip" if a.blocks[-1] != "skip" else "k3_e1",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.blocks = ()


def test_layer_arch_json_round_trip(smoke_space):
    for seed in range(5):
        arch = smoke_space.sample(random.Random(seed))
        text = json.dumps(smoke_space.to_dict(arch))
        assert smoke_space.from_dict(json.loads(text)) == arch
        assert json.loads(text) == {"blocks": list(arch.blocks)}


def test_from_dict_refuses_wrong_layer_count_and_unknown_block(smoke_space):
    with pytest.raises(ConfigError, match=r"arch\.json: has 6 layers, but .* has 7"):
        smoke_space.from_dict({"blocks": ["skip"] * 6}, where="arch.json")
    with pytest.raises(ConfigError, match=r"unknown block 'k7_e6'"):
        smoke_space.from_dict({"blocks": ["skip"] * 6 + ["k7_e6"]})
    with pytest.raises(ConfigError, match="blocks"):
        smoke_space.from_dict(["skip"] * 7)


def test_str_lists_the_blocks():
    assert str(LayerArch(("k3_e1", "skip", "k5_e6"))) == "k3_e1 skip k5_e6"


# -- blocks -----------------------------------------------------------------------------

def test_nine_blocks_in_table_2_order():
    assert BLOCK_NAMES == ("k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip")


@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_block_keeps_shape_with_residual_at_stride_1(name):
    torch.manual_seed(0)
    block = make_block(name, 8, 8, 1).eval()
    x = torch.randn(2, 8, 16, 16)
    with torch.no_grad():
        y = block(x)
    assert y.shape == x.shape
    if name == "skip":
        assert isinstance(block, nn.Identity) and torch.equal(y, x)
        return
    assert isinstance(block, InvertedResidual) and block.residual
    # the residual really adds the input: with the last batch norm zeroed the block is the identity
    with torch.no_grad():
        block.project[1].weight.zero_()
        block.project[1].bias.zero_()
        assert torch.equal(block(x), x)


@pytest.mark.parametrize("name", BLOCK_NAMES)
@pytest.mark.parametrize("c_out, stride", [(16, 2), (16, 1), (8, 2)])
def test_block_changing_shape_has_no_residual(name, c_out, stride):
    block = make_block(name, 8, c_out, stride).eval()
    with torch.no_grad():
        y = block(torch.randn(2, 8, 16, 16))
    assert y.shape == (2, c_out, 16 // stride, 16 // stride)
    if name == "skip":
        assert not isinstance(block, nn.Identity)
        conv = block[0]
        assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.stride == (stride, stride)
    else:
        assert not block.residual


@pytest.mark.parametrize("name", BLOCK_NAMES)
def test_only_g2_blocks_have_grouped_pointwise_convolutions(name):
    block = make_block(name, 8, 16, 2)
    if name == "skip":
        return
    groups = 2 if name.endswith("_g2") else 1
    assert block.expand[0].groups == groups and block.project[0].groups == groups
    assert block.depthwise[0].groups == block.expand[0].out_channels  # depthwise
    kernel = int(name[1])
    assert block.depthwise[0].kernel_size == (kernel, kernel)
    assert block.expand[0].out_channels == 8 * int(name.split("_")[1][1])


def test_parameter_counts_by_hand():
    def params(module):
        return sum(p.numel() for p in module.parameters())

    # k3_e6, 8 -> 8: expand 8x48 + BN, depthwise 48x3x3 + BN, project 48x8 + BN
    assert params(make_block("k3_e6", 8, 8, 1)) == 8 * 48 + 2 * 48 + 48 * 9 + 2 * 48 + 48 * 8 + 2 * 8 == 1408
    # k5_e1_g2, 8 -> 16: expand 8x8 in 2 groups (8*4) + BN, depthwise 8x5x5 + BN, project 8->16 in 2 groups (16*4) + BN
    assert params(make_block("k5_e1_g2", 8, 16, 2)) == 8 * 4 + 16 + 8 * 25 + 16 + 16 * 4 + 32 == 360
    # strided skip: a 1x1 convolution 8 -> 16 and BN
    assert params(make_block("skip", 8, 16, 2)) == 8 * 16 + 2 * 16
    assert params(make_block("skip", 8, 8, 1)) == 0


def test_grouped_block_shuffles_channels_between_its_groups():
    """Without the shuffle, a 2-group block would never mix the two halves of its channels."""
    torch.manual_seed(0)
    block = make_block("k3_e1_g2", 8, 8, 2).eval()  # stride 2: no residual, the output is the branch alone
    x = torch.zeros(1, 8, 8, 8)
    x2 = x.clone()
    x2[:, :4] = torch.randn(1, 4, 8, 8)  # change only the first group's input
    with torch.no_grad():
        delta = (block(x2) - block(x)).abs().sum(dim=(0, 2, 3))
    assert (delta[:4] > 0).any() and (delta[4:] > 0).any()


# -- sample and mutate -----------------------------------------------------------------

def test_sample_uses_only_the_rng(smoke_space):
    random.seed(1)
    torch.manual_seed(1)
    a = smoke_space.sample(random.Random(42))
    random.seed(2)
    torch.manual_seed(2)
    b = smoke_space.sample(random.Random(42))
    assert a == b and len(a.blocks) == 7 and set(a.blocks) <= set(BLOCK_NAMES)
    assert len({smoke_space.sample(random.Random(s)) for s in range(20)}) > 15


def test_profiled_networks_span_skip_shares_that_uniform_draws_do_not(smoke):
    space = get_space("fbnet", load_protocol("proxy"))
    rng = random.Random(0)
    profiled = [space.skip_share(space.profile_sample(rng))["layers"] for _ in range(200)]
    uniform = [space.skip_share(space.sample(rng))["layers"] for _ in range(200)]
    assert min(profiled) <= 0.05 and max(profiled) >= 0.9
    assert max(uniform) < 0.5 and abs(sum(uniform) / 200 - 1 / 9) < 0.03
    assert [space.profile_sample(random.Random(3)) for _ in range(2)] == [space.profile_sample(random.Random(3))] * 2


def test_mutate_changes_exactly_one_layer(smoke_space):
    rng = random.Random(0)
    arch = smoke_space.sample(rng)
    for _ in range(50):
        child = smoke_space.mutate(arch, rng)
        changed = [i for i, (a, b) in enumerate(zip(arch.blocks, child.blocks)) if a != b]
        assert len(changed) == 1 and len(child.blocks) == len(arch.blocks)
        assert child.blocks[changed[0]] in BLOCK_NAMES
        arch = child
    assert smoke_space.mutate(arch, random.Random(9)) == smoke_space.mutate(arch, random.Random(9))


# -- cost decomposition ------------------------------------------------------------------

@pytest.fixture(scope="module")
def smoke_counts(smoke, smoke_space):
    return counts_table(smoke_space, smoke)


def test_cost_parts_are_stem_layers_head_classifier(smoke, smoke_space):
    arch = smoke_space.sample(random.Random(1))
    parts = smoke_space.cost_parts(arch, final_network(smoke))
    kinds = [p.kind for p in parts]
    assert sorted(kinds) == sorted(["stem", "head", "classifier"] + ["op"] * 7)
    assert [p.name for p in parts if p.kind == "op"] == list(arch.blocks)
    assert [(p.c_in, p.c_out, p.size, p.stride) for p in parts if p.kind == "op"] == [
        (s.c_in, s.c_out, s.size, s.stride) for s in smoke_space.specs]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parts_add_up_to_the_whole_network(smoke, smoke_space, smoke_counts, seed):
    config = final_network(smoke)
    arch = smoke_space.sample(random.Random(seed))
    parts = smoke_space.cost_parts(arch, config)
    torch.manual_seed(0)
    net = smoke_space.build(arch, config)
    image = [torch.zeros(1, 3, 32, 32)]
    assert sum(smoke_counts.entry(p).flops for p in parts) == count_flops(net, image)
    assert sum(smoke_counts.entry(p).params for p in parts) == count_params(net)
    assert sum(smoke_counts.entry(p).mac_elements for p in parts) == count_mac(net, image)
    for metric in ("flops", "params"):
        assert CostModel(smoke_counts, smoke_space, metric).cost(arch) == sum(
            getattr(smoke_counts.entry(p), metric) for p in parts)


def test_expected_cost_with_one_hot_weights_is_the_exact_cost(smoke_space, smoke_counts):
    model = CostModel(smoke_counts, smoke_space, "flops")
    for seed in range(4):
        arch = smoke_space.sample(random.Random(seed))
        weights = smoke_space.arch_weights(arch)
        assert weights["layers"].shape == (7, 9) and torch.equal(weights["layers"].sum(1), torch.ones(7, dtype=torch.float64))
        assert model.expected(weights).item() == pytest.approx(model.cost(arch), rel=1e-12)


def test_expected_cost_under_uniform_weights_lies_between_cheapest_and_largest(smoke_space, smoke_counts):
    model = CostModel(smoke_counts, smoke_space, "flops")
    uniform = model.expected({"layers": torch.full((7, 9), 1 / 9, dtype=torch.float64)}).item()
    all_skip, all_big = model.cost(LayerArch(("skip",) * 7)), model.cost(LayerArch(("k5_e6",) * 7))
    assert all_skip < uniform < all_big
    mean = sum(model.cost(LayerArch((b,) * 7)) for b in BLOCK_NAMES) / 9  # the layers' costs add up
    assert uniform == pytest.approx(mean, rel=1e-12)


def test_expected_cost_is_differentiable(smoke_space, smoke_counts):
    model = CostModel(smoke_counts, smoke_space, "flops")
    alpha = torch.zeros(7, 9, dtype=torch.float64, requires_grad=True)
    model.expected({"layers": alpha.softmax(-1)}).backward()
    big, skip = BLOCK_NAMES.index("k5_e6"), BLOCK_NAMES.index("skip")
    assert (alpha.grad[:, big] > 0).all() and (alpha.grad[:, skip] < 0).all()


def test_cost_model_refuses_a_table_of_another_layout(tmp_path, smoke_counts):
    other = write_protocol(tmp_path, 'base = "smoke"\n[fbnet]\nhead_channels = 48\n')
    assert other.hash == load_protocol("smoke").hash  # the hash cannot tell the layouts apart
    space = get_space("fbnet", other)
    with pytest.raises(NasbenchError, match="another fbnet network") as err:
        CostModel(smoke_counts, space, "flops")
    assert "'head_channels': 32" in str(err.value) and "'head_channels': 48" in str(err.value)


def test_space_for_table_rebuilds_the_layout(smoke_space, smoke_counts):
    rebuilt = space_for_table(smoke_counts)
    assert isinstance(rebuilt, FbnetSpace) and rebuilt.layout == smoke_space.layout
    assert json.loads(json.dumps(smoke_counts.network))["fbnet"]["stage_channels"] == [4, 4, 8, 8, 8, 16, 16]


# -- the supernet ----------------------------------------------------------------------

def _count_block_calls(supernet: LayerSupernet) -> dict[tuple[int, int], int]:
    calls: dict[tuple[int, int], int] = {}
    for l, blocks in enumerate(supernet.layers):
        for i, block in enumerate(blocks):
            calls[(l, i)] = 0
            block.register_forward_hook(lambda m, a, o, key=(l, i): calls.__setitem__(key, calls[key] + 1))
    return calls


def test_supernet_sparse_runs_only_the_chosen_blocks(smoke_space):
    torch.manual_seed(0)
    supernet = LayerSupernet(smoke_space)
    calls = _count_block_calls(supernet)
    arch = smoke_space.sample(random.Random(4))
    weights = smoke_space.arch_weights(arch)
    weights = {k: v.float() for k, v in weights.items()}
    out = supernet(torch.randn(2, 3, 32, 32), weights, sparse=True)
    assert out.shape == (2, 10)
    chosen = {(l, BLOCK_NAMES.index(b)) for l, b in enumerate(arch.blocks)}
    assert {k for k, n in calls.items() if n} == chosen and all(calls[k] == 1 for k in chosen)


def test_supernet_dense_runs_every_block(smoke_space):
    torch.manual_seed(0)
    supernet = LayerSupernet(smoke_space)
    calls = _count_block_calls(supernet)
    weights = {"layers": torch.full((7, 9), 1 / 9)}
    supernet(torch.randn(2, 3, 32, 32), weights, sparse=False)
    assert len(calls) == 7 * 9 and all(n == 1 for n in calls.values())


def test_supernet_with_one_hot_weights_computes_the_chosen_network(smoke, smoke_space):
    torch.manual_seed(0)
    supernet = LayerSupernet(smoke_space).eval()
    arch = smoke_space.sample(random.Random(7))
    net = smoke_space.build(arch, final_network(smoke)).eval()
    state = supernet.state_dict()
    picked = {}
    for key in net.state_dict():
        if key.startswith("layers."):
            _, layer, rest = key.split(".", 2)
            picked[key] = state[f"layers.{layer}.{BLOCK_NAMES.index(arch.blocks[int(layer)])}.{rest}"]
        else:
            picked[key] = state[key]
    net.load_state_dict(picked)
    x = torch.randn(3, 3, 32, 32)
    weights = {k: v.float() for k, v in smoke_space.arch_weights(arch).items()}
    with torch.no_grad():
        assert torch.allclose(supernet(x, weights, sparse=True), net(x), atol=1e-5)


def test_supernet_keeps_alpha_apart_from_the_weights(smoke_space):
    supernet = LayerSupernet(smoke_space, alpha_std=1e-3)
    assert supernet.arch_parameters() == [supernet.alpha] and supernet.alpha.shape == (7, 9)
    weights = supernet.weight_parameters()
    assert all(p is not supernet.alpha for p in weights)
    assert len(weights) == len(list(supernet.parameters())) - 1
    assert sum(p.numel() for p in weights) + 63 == sum(p.numel() for p in supernet.parameters())


# -- profiling for real ------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_profile_and_cost_measure_the_fbnet_space(backend, tmp_path, smoke, smoke_space, request):
    """The torch table is the session's (profiled by the same command in-process); onnxruntime's
    is profiled here, in a subprocess as a user would."""
    env = {**os.environ, **SUBPROCESS_ENV}
    if backend == "torch":
        path = request.getfixturevalue("fbnet_smoke_table")
    else:
        out = tmp_path / "tables"
        done = subprocess.run([sys.executable, "-m", "nasbench", "profile", "--space", "fbnet", "--protocol", "smoke",
                               "--device", "cpu", "--backend", backend, "--threads", "1", "--calibrate", "4",
                               "--validate", "3", "--rounds", "2", "--min-time", "0.001", "--min-reps", "2",
                               "--max-time", "20", "--no-progress", "--out", str(out)],
                              capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        path = out / device_fingerprint(torch.device("cpu")) / f"fbnet-smoke-{backend}-t1-b1.json"
    assert path.parent.name == device_fingerprint(torch.device("cpu")) and path.name == f"fbnet-smoke-{backend}-t1-b1.json"
    assert path.is_file() and path.with_suffix(".validation.json").is_file()

    raw = json.loads(path.read_text())
    smoke_toml = tomllib.loads(resources.files("nasbench.protocols").joinpath("smoke.toml").read_text())
    assert raw["space"] == "fbnet" and raw["protocol_hash"] == smoke.hash
    assert raw["network"]["fbnet"] == smoke_toml["fbnet"]
    table = CostTable.load(path)
    config = final_network(smoke)
    wanted = {smoke_space._block_part(b, s) for s in smoke_space.specs for b in BLOCK_NAMES}
    assert wanted <= set(table.entries)
    assert set(table.entries) == set(smoke_space.all_cost_parts(config))
    assert {p.kind for p in table.entries} == {"stem", "op", "head", "classifier"}
    for entry in table.entries.values():
        assert entry.latency.count >= 2 and entry.latency.p50_ms > 0
    assert table.predictor is not None and table.predictor.fitted_on == 4 and table.harness_ms > 0

    arch = smoke_space.sample(random.Random(11))
    arch_file = tmp_path / "arch.json"
    arch_file.write_text(json.dumps(smoke_space.to_dict(arch)))
    done = subprocess.run([sys.executable, "-m", "nasbench", "cost", str(arch_file), "--table", str(path), "--measure",
                           "--json"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["latency_ms_predicted"] > 0 and result["latency_ms_measured_p50"] > 0
    net = smoke_space.build(arch, config)
    assert result["params"] == count_params(net) and result["flops"] == count_flops(net, [torch.zeros(1, 3, 32, 32)])
    assert result["mac_bytes"] == 4 * result["mac_elements"]
