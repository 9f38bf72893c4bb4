"""The NASNet space: architectures as values, the 13 operations, cells and networks,
drop path, sampling and mutation, NASNet-A from the zoo, and a real run on it."""
from __future__ import annotations

import dataclasses
import json
import random

import pytest
import torch
from helpers import run_cli, store_rows, with_candidates, with_section

from nasbench.data import Augmentation
from nasbench.errors import ConfigError
from nasbench.hardware.counting import count_params
from nasbench.spaces import SPACES, get_space
from nasbench.spaces.cell.genotype import Genotype
from nasbench.spaces.nasnet.arch import (
    BLOCKS,
    COMBINATIONS,
    DECISION_NAMES,
    OPERATIONS,
    Block,
    CellArch,
    NasnetArch,
    decision_sizes,
)
from nasbench.spaces.nasnet.network import NasnetCell, NasnetCellSpec
from nasbench.spaces.nasnet.ops import OPERATIONS as OPERATION_MODULES
from nasbench.spaces.nasnet.ops import make_operation
from nasbench.spaces.nasnet.space import PAPER_CIFAR_NETWORK, NasnetSpace, from_genotype
from nasbench.strategies import STRATEGIES
from nasbench.strategies.context import SearchContext
from nasbench.strategies.evolution import RegularizedEvolution
from nasbench.strategies.random_search import RandomSearch
from nasbench.training import train_network
from nasbench.types import NetworkConfig

PAPER_OPERATIONS = ("skip_connect", "conv_3x1_1x3", "conv_7x1_1x7", "dilated_conv_3x3", "avg_pool_3x3",
                    "max_pool_3x3", "max_pool_5x5", "max_pool_7x7", "conv_1x1", "conv_3x3", "sep_conv_3x3",
                    "sep_conv_5x5", "sep_conv_7x7")


@pytest.fixture(scope="module")
def space() -> NasnetSpace:
    return get_space("nasnet")


@pytest.fixture(scope="module")
def samples(space):
    rng = random.Random(0)
    return [space.sample(rng) for _ in range(300)]


def cell_of(op: str, combine: str) -> CellArch:
    """Every block applies ``op`` twice and combines by ``combine``; block n2 reads both
    cell inputs and each later block an input and the block before, so every state but
    the last is read and the operation runs on cell inputs and on block outputs."""
    inputs = [(0, 1), (2, 0), (3, 1), (4, 2), (5, 3)]
    return CellArch(tuple(Block(pair, (op, op), combine) for pair in inputs))


# -- the architecture value -------------------------------------------------------------

def test_registered_with_the_paper_constants(space):
    assert isinstance(space, NasnetSpace) and SPACES["nasnet"] is NasnetSpace
    assert BLOCKS == 5 and OPERATIONS == PAPER_OPERATIONS and COMBINATIONS == ("add", "concat")
    assert DECISION_NAMES == ("input_a", "input_b", "op_a", "op_b", "combine")
    sizes = decision_sizes()
    assert len(sizes) == 2 * 5 * BLOCKS
    assert sizes[:10] == (2, 2, 13, 13, 2, 3, 3, 13, 13, 2) and sizes[25:] == sizes[:25]
    assert "nasnet" in STRATEGIES["random"].spaces and "nasnet" in STRATEGIES["evolution"].spaces
    assert f"cells of {BLOCKS} blocks" in space.description and f"one of {len(OPERATIONS)} NASNet" in space.description


def test_json_round_trip_and_hashing(space, samples):
    for arch in samples[:50]:
        text = json.dumps(space.to_dict(arch))
        again = space.from_dict(json.loads(text))
        assert again == arch and hash(again) == hash(arch) and again.to_json() == arch.to_json()
        assert NasnetArch.from_decisions(arch.decisions()) == arch
    assert len(set(samples)) == len(samples)  # distinct values hash apart
    assert len({space.from_dict(space.to_dict(a)) for a in samples[:20] * 2}) == 20


@pytest.mark.parametrize("mutate, message", [
    (lambda d: [d], "a NASNet-space architecture is a JSON object"),
    (lambda d: {"normal": d["normal"]}, "a NASNet-space architecture is a JSON object"),
    (lambda d: {**d, "normal": d["normal"][:4]}, "normal cell: a cell has 5 blocks, got 4"),
    (lambda d: {**d, "reduce": "none"}, "reduce cell: expected a list of 5 blocks"),
    (lambda d: {**d, "normal": [{"inputs": [0, 1]}] + d["normal"][1:]}, 'normal cell: a block is {"inputs"'),
    (lambda d: _block(d, 0, inputs=[0, 2]), "normal cell: block n2: cannot read state 2 (valid: 0..1"),
    (lambda d: _block(d, 2, inputs=[-1, 0]), "normal cell: block n4: cannot read state -1"),
    (lambda d: _block(d, 1, inputs=[True, 0]), "block n3: cannot read state True"),
    (lambda d: _block(d, 0, inputs=[0, 1, 1]), "block n2: needs two inputs and two operations"),
    (lambda d: _block(d, 0, ops=["conv_9x9", "conv_1x1"]), "unknown operation 'conv_9x9'; known: skip_connect"),
    (lambda d: _block(d, 0, ops=["dil_conv_3x3", "conv_1x1"]), "unknown operation 'dil_conv_3x3'"),
    (lambda d: _block(d, 4, combine="multiply"), "block n6: unknown combination 'multiply'; known: add, concat"),
])
def test_malformed_architectures_are_refused_with_a_clear_error(space, samples, mutate, message):
    data = mutate(json.loads(json.dumps(space.to_dict(samples[0]))))
    with pytest.raises(ConfigError) as info:
        space.from_dict(data, where="arch.json")
    assert str(info.value).startswith("arch.json: ") and message in str(info.value)
    assert "\n" not in str(info.value)


def _block(data, position, **changes):
    data["normal"][position].update(changes)
    return data


def test_malformed_decisions_are_refused():
    with pytest.raises(ConfigError, match="takes 50 decisions .* got 49"):
        NasnetArch.from_decisions([0] * 49)
    with pytest.raises(ConfigError, match=r"decision 5 \(input_a\) must be an integer in 0..2, got 3"):
        NasnetArch.from_decisions([0] * 5 + [3] + [0] * 44)
    with pytest.raises(ConfigError, match=r"decision 2 \(op_a\) must be an integer in 0..12, got 13"):
        NasnetArch.from_decisions([0, 0, 13] + [0] * 47)


def test_the_output_concatenates_the_blocks_no_block_reads():
    cell = CellArch((Block((0, 1), ("conv_1x1", "conv_1x1"), "concat"), Block((1, 1), ("conv_3x3", "skip_connect"), "add"),
                     Block((2, 0), ("avg_pool_3x3", "skip_connect"), "add"), Block((4, 4), ("conv_1x1", "conv_3x3"), "add"),
                     Block((1, 0), ("sep_conv_3x3", "max_pool_5x5"), "concat")))
    assert cell.read_states == {0, 1, 2, 4}
    assert cell.concat == (3, 5, 6)  # the cell inputs never count, read or not
    spec = NasnetCellSpec(False, False, 12, 12, 4, cell)
    assert spec.c_out == 4 * (1 + 1 + 2)  # n6 concatenates: 2C; the read concat n2 is not in the output
    module = NasnetCell(spec)
    assert isinstance(module.to_block_width[0], torch.nn.Sequential)  # n2 is read: brought back to C
    assert [type(m).__name__ for m in module.to_block_width[1:]] == ["Identity"] * 4
    assert module(torch.randn(2, 12, 8, 8), torch.randn(2, 12, 8, 8)).shape == (2, 16, 8, 8)


def test_str_reads_like_the_papers_figure(space):
    text = str(space.zoo()["NASNet-A"].arch)
    assert text.splitlines()[0] == "normal cell -> concat(n2, n3, n4, n5, n6)"
    assert "  n4 = avg_pool_3x3(h_i) + skip_connect(h_(i-1))" in text
    assert "reduce cell -> concat(n4, n5, n6)" in text and "  n5 = skip_connect(n3) + avg_pool_3x3(n2)" in text
    concat_block = str(NasnetArch(cell_of("conv_1x1", "concat"), cell_of("conv_1x1", "add")))
    assert "  n3 = concat(conv_1x1(n2), conv_1x1(h_(i-1)))" in concat_block


# -- sampling, mutation, skip share -------------------------------------------------------

def test_sampling_covers_every_input_operation_and_combination(space, samples):
    for kind in ("normal", "reduce"):
        cells = [getattr(a, kind) for a in samples]
        assert {op for c in cells for b in c.blocks for op in b.ops} == set(OPERATIONS)
        assert {b.combine for c in cells for b in c.blocks} == set(COMBINATIONS)
        for position in range(BLOCKS):
            assert {s for c in cells for s in c.blocks[position].inputs} == set(range(position + 2))
        assert any(b.inputs[0] == b.inputs[1] for c in cells for b in c.blocks)  # repeats are allowed
        concat_share = sum(b.combine == "concat" for c in cells for b in c.blocks) / (len(cells) * BLOCKS)
        assert 0.4 < concat_share < 0.6
    assert space.sample(random.Random(7)) == space.sample(random.Random(7))
    torch.manual_seed(0)
    state = torch.get_rng_state()
    random.seed(0)
    space.sample(random.Random(1))
    assert torch.equal(torch.get_rng_state(), state) and random.random() == random.Random(0).random()


def test_mutation_changes_exactly_one_decision(space, samples):
    rng = random.Random(1)
    changed_kinds = {name: 0 for name in DECISION_NAMES}
    for parent in samples:
        child = space.mutate(parent, rng)
        diffs = [i for i, (a, b) in enumerate(zip(parent.decisions(), child.decisions())) if a != b]
        assert len(diffs) == 1
        changed_kinds[DECISION_NAMES[diffs[0] % len(DECISION_NAMES)]] += 1
        assert space.from_dict(json.loads(json.dumps(space.to_dict(child)))) == child
    # inputs and operations equally likely (AmoebaNet), each decision about 1 in 5
    assert all(35 < n < 85 for n in changed_kinds.values()), changed_kinds


def test_evolution_searches_the_space(space, smoke):
    """Evolution with these mutations climbs a synthetic objective (the share of the 50
    decisions at their first choice) above its random first population and above random
    search's best for the same budget."""

    class Synthetic(SearchContext):
        def train_candidate(self, arch, index):
            return sum(d == 0 for d in arch.decisions()) / len(arch.decisions())

    protocol = with_section(with_candidates(smoke, 150), "search.evolution", population=20, sample=5)

    def context():
        return Synthetic(space=space, protocol=protocol, seed=0, data=None, device=torch.device("cpu"),
                         show_progress=False)

    evolution = RegularizedEvolution(context())
    best = evolution.run().val_acc
    assert best >= max(t.val_acc for t in evolution.trials[:20]) + 0.1
    assert best > RandomSearch(context()).run().val_acc


def test_skip_share_counts_identities_per_cell(space):
    assert space.skip_share(space.zoo()["NASNet-A"].arch) == {"normal": 0.2, "reduce": 0.1}


# -- operations, cells, networks ------------------------------------------------------------

def test_every_operation_has_a_module():
    assert tuple(OPERATION_MODULES) == OPERATIONS


@pytest.mark.parametrize("name", PAPER_OPERATIONS)
def test_every_operation_keeps_or_halves_the_shape(name):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 9, 9)
    assert make_operation(name, 8, 1)(x).shape == (2, 8, 9, 9)
    assert make_operation(name, 8, 2)(x).shape == (2, 8, 5, 5)


@pytest.mark.parametrize("combine", COMBINATIONS)
@pytest.mark.parametrize("name", PAPER_OPERATIONS)
def test_every_operation_in_a_normal_and_a_reduction_cell(name, combine):
    torch.manual_seed(0)
    cell = cell_of(name, combine)
    s0, s1 = torch.randn(2, 6, 8, 8), torch.randn(2, 10, 8, 8)
    normal = NasnetCellSpec(False, False, 6, 10, 4, cell)
    assert normal.c_out == 4 * (2 if combine == "concat" else 1)
    assert NasnetCell(normal)(s0, s1).shape == (2, normal.c_out, 8, 8)
    reduction = NasnetCellSpec(True, False, 6, 10, 8, cell)
    assert NasnetCell(reduction)(s0, s1).shape == (2, reduction.c_out, 4, 4)
    after_reduction = NasnetCellSpec(False, True, 6, 10, 4, cell)  # s0 from before the reduction
    assert NasnetCell(after_reduction)(torch.randn(2, 6, 16, 16), s1).shape == (2, after_reduction.c_out, 8, 8)


def test_the_network_layout(space, samples):
    arch = next(a for a in samples if a.normal.blocks[-1].combine == "concat" and a.reduce.blocks[-1].combine == "add")
    net = space.build(arch, NetworkConfig(channels=4, cells=6, auxiliary=True, num_classes=7))
    seen = []
    for cell in net.cells:
        cell.register_forward_hook(lambda m, args, out: seen.append(out.shape))
    logits, aux = net.forward_train(torch.randn(3, 3, 32, 32))
    assert logits.shape == (3, 7) and aux.shape == (3, 7)
    assert [shape[-1] for shape in seen] == [32, 32, 16, 16, 8, 8]  # reductions at 2 and 4
    width = {kind: sum(2 if cell.blocks[s - 2].combine == "concat" else 1 for s in cell.concat)
             for kind, cell in arch.cells()}
    assert [shape[1] for shape in seen] == [4 * width["normal"]] * 2 + [8 * width["reduce"], 8 * width["normal"],
                                                                         16 * width["reduce"], 16 * width["normal"]]


def test_a_network_trains_on_cifar_images(space, samples, tiny_data, smoke):
    torch.manual_seed(0)
    net = space.build(samples[3], smoke.final.network)
    images = Augmentation(torch.device("cpu")).normalise(tiny_data.search_train.images)
    labels = tiny_data.search_train.labels
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    net.train()
    losses = []
    before = [p.detach().clone() for p in net.parameters()]
    for _ in range(4):
        logits, aux = net.forward_train(images)
        loss = torch.nn.functional.cross_entropy(logits, labels) + 0.4 * torch.nn.functional.cross_entropy(aux, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]  # the same batch, fitted for real
    assert all(not torch.equal(a, p) for a, p in zip(before, net.parameters()) if p.grad is not None)


def test_the_trainer_schedules_drop_path_linearly(space, samples, tiny_data, smoke):
    """ScheduledDropPath (Appendix A.5) is the shared trainer's schedule: the probability
    rises linearly over the epochs, from 0 to drop_path * (epochs - 1) / epochs."""
    net = space.build(samples[4], smoke.candidate.network)
    seen = []  # the probability each cell receives in training, batch by batch
    net.cells[0].register_forward_pre_hook(lambda m, args: seen.append(args[2]) if m.training else None)
    stage = dataclasses.replace(smoke.candidate, epochs=3, drop_path=0.3, batch_size=16)
    train_network(net, stage, tiny_data.search_train, tiny_data.search_val, seed=0, show_progress=False)
    assert seen == pytest.approx([0.0, 0.0, 0.1, 0.1, 0.2, 0.2])  # 32 images: two batches an epoch


def test_drop_path_in_training_only_and_never_on_identities(space, samples):
    torch.manual_seed(0)
    net = space.build(samples[5], NetworkConfig(channels=4, cells=3))
    x = torch.randn(4, 3, 32, 32)
    net.train()
    net.drop_path_prob = 0.0
    plain = net(x)
    net.drop_path_prob = 0.5
    dropped = net(x)
    assert torch.isfinite(dropped).all() and not torch.allclose(dropped, plain)
    net.eval()
    evaluated = net(x)
    net.drop_path_prob = 0.0
    torch.testing.assert_close(net(x), evaluated)  # eval mode: deterministic, no drop path
    torch.testing.assert_close(net(x), evaluated)
    identities = NasnetCell(NasnetCellSpec(False, False, 4, 4, 4, cell_of("skip_connect", "add")))
    s0, s1 = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(identities(s0, s1, 0.9), identities(s0, s1, 0.0))


# -- NASNet-A ---------------------------------------------------------------------------------

# NASNet's official code (tensorflow/models research/slim/nets/nasnet/nasnet_utils.py) lists
# NASNet-A's blocks as operations and state indices where 0 is h_i and 1 is h_(i-1): the
# other way round from this space. Its 'none' is the identity.
OFFICIAL = {
    "normal": (["separable_5x5_2", "separable_3x3_2", "separable_5x5_2", "separable_3x3_2", "avg_pool_3x3", "none",
                "avg_pool_3x3", "avg_pool_3x3", "separable_3x3_2", "none"], [0, 1, 1, 1, 0, 1, 1, 1, 0, 0]),
    "reduce": (["separable_5x5_2", "separable_7x7_2", "max_pool_3x3", "separable_7x7_2", "avg_pool_3x3",
                "separable_5x5_2", "none", "avg_pool_3x3", "separable_3x3_2", "max_pool_3x3"],
               [0, 1, 0, 1, 0, 1, 3, 2, 2, 0]),
}
OFFICIAL_NAMES = {"separable_3x3_2": "sep_conv_3x3", "separable_5x5_2": "sep_conv_5x5", "separable_7x7_2": "sep_conv_7x7",
                  "avg_pool_3x3": "avg_pool_3x3", "max_pool_3x3": "max_pool_3x3", "none": "skip_connect"}


def test_nasnet_a_is_the_official_cell(space):
    arch = space.zoo()["NASNet-A"].arch
    for kind, cell in arch.cells():
        ops, indices = OFFICIAL[kind]
        assert [op for b in cell.blocks for op in b.ops] == [OFFICIAL_NAMES[op] for op in ops]
        assert [s for b in cell.blocks for s in b.inputs] == [{0: 1, 1: 0}.get(i, i) for i in indices]
        assert {b.combine for b in cell.blocks} == {"add"}
    assert arch.normal.concat == (2, 3, 4, 5, 6) and arch.reduce.concat == (4, 5, 6)  # Fig. 4


def test_nasnet_a_parameters_at_the_papers_cifar_size(space, cell_space):
    entry = space.zoo()["NASNet-A"]
    assert (PAPER_CIFAR_NETWORK.channels, PAPER_CIFAR_NETWORK.cells) == (32, 20)
    net = space.build(entry.arch, PAPER_CIFAR_NETWORK)
    params = count_params(net)
    # the cell space builds the same network from DARTS' form of the cell
    assert params == count_params(cell_space.build(cell_space.zoo()["NASNet"].arch, PAPER_CIFAR_NETWORK)) == 3061738
    assert entry.published_params_m == 3.3 and abs(params / 1e6 - 3.3) / 3.3 < 0.10
    assert "3.062M" in entry.params_note and "Table 1" in entry.source
    assert net.head.classifier.in_features == 5 * 4 * 32  # 640: five concatenated states, 4F


def test_genotypes_convert_only_where_the_space_can_hold_them(cell_space):
    with pytest.raises(ConfigError, match="needs 5 searched nodes"):
        from_genotype(cell_space.zoo()["DARTS_V2"].arch)
    nasnet = cell_space.zoo()["NASNet"].arch
    with pytest.raises(ConfigError, match=r"concatenates \[2, 3, 4, 5, 6\], but a NASNet cell concatenates"):
        from_genotype(dataclasses.replace(nasnet, reduce_concat=(2, 3, 4, 5, 6)))
    with pytest.raises(ConfigError, match="unknown operation 'dil_conv_5x5'"):
        from_genotype(Genotype(nasnet.normal[:-1] + (("dil_conv_5x5", 1),), nasnet.normal_concat,
                               nasnet.reduce, nasnet.reduce_concat))


# -- end to end -------------------------------------------------------------------------------

def test_random_search_runs_on_the_space(tmp_path, data_path):
    protocol = tmp_path / "tiny.toml"  # the smoke protocol on fewer images and one candidate
    protocol.write_text('base = "smoke"\n[data]\ntrain_images = 64\nsearch_val_images = 32\ntest_images = 40\n'
                        '[search]\ncandidates = 1\n[search.evolution]\npopulation = 1\nsample = 1\n')
    store = tmp_path / "nasnet.sqlite"
    result = run_cli("run", "--method", "random", "--space", "nasnet", "--protocol", protocol, "--seeds", "0",
                     "--store", store, "--data", data_path, "--no-progress")
    assert result.code == 0, result.err
    (row,) = store_rows(store)
    assert (row["method"], row["space"], row["variant"], row["status"]) == ("random", "nasnet", "space=nasnet", "finished")
    arch = get_space("nasnet").from_dict(json.loads(row["genotype_json"]))
    assert row["params"] == count_params(get_space("nasnet").build(arch, NetworkConfig(channels=4, cells=3)))
    assert 0.0 <= row["test_acc"] <= 1.0
