"""The cell space's operations, its evaluation network, drop path, and the parameter counts of
the published cells."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from nasbench.errors import UnknownNameError
from nasbench.hardware.counting import count_params
from nasbench.protocol import load_protocol
from nasbench.spaces.cell.genotype import OPERATION_NAMES, SEARCH_OPERATIONS
from nasbench.spaces.cell.network import drop_path
from nasbench.spaces.cell.ops import OPERATIONS, make_operation
from nasbench.spaces.cell.plan import reduction_positions
from nasbench.types import NetworkConfig

ALL_OPERATIONS = ["none", "avg_pool_3x3", "max_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                  "sep_conv_7x7", "dil_conv_3x3", "dil_conv_5x5", "conv_7x1_1x7"]


def test_operation_sets():
    assert sorted(OPERATION_NAMES) == sorted(ALL_OPERATIONS)
    assert tuple(OPERATIONS) == OPERATION_NAMES  # a module for every name a genotype may hold
    assert SEARCH_OPERATIONS == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                                 "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("name", ALL_OPERATIONS)
def test_operation_shapes(name, affine):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 16, 16)
    assert make_operation(name, 8, 1, affine)(x).shape == (2, 8, 16, 16)
    assert make_operation(name, 8, 2, affine)(x).shape == (2, 8, 8, 8)


def test_stride_one_skip_is_identity_and_none_is_zero():
    x = torch.randn(2, 8, 16, 16)
    assert torch.equal(make_operation("skip_connect", 8, 1)(x), x)
    assert torch.count_nonzero(make_operation("none", 8, 1)(x)) == 0
    assert torch.count_nonzero(make_operation("none", 8, 2)(x)) == 0


def test_pooling_has_batch_norm_only_in_supernets():
    def batch_norms(module):
        return sum(isinstance(m, nn.BatchNorm2d) for m in module.modules())

    assert batch_norms(make_operation("avg_pool_3x3", 8, 1, affine=True)) == 0
    assert batch_norms(make_operation("max_pool_3x3", 8, 1, affine=False)) == 1


def test_unknown_operation():
    with pytest.raises(UnknownNameError, match="unknown operation 'conv_9x9'; known: avg_pool_3x3"):
        make_operation("conv_9x9", 8, 1)


def test_reduction_positions():
    assert reduction_positions(20) == (6, 13)
    assert reduction_positions(8) == (2, 5)
    assert reduction_positions(3) == (1, 2)


def test_reduction_cells_sit_where_expected(cell_space):
    genotype = cell_space.zoo()["DARTS_V2"].arch
    net = cell_space.build(genotype, NetworkConfig(channels=4, cells=8))
    strides = [any(getattr(m, "stride", 1) in (2, (2, 2)) for m in cell.ops.modules()) for cell in net.cells]
    assert [i for i, strided in enumerate(strides) if strided] == [2, 5]


def test_eval_network_outputs(cell_space):
    genotype = cell_space.zoo()["DARTS_V2"].arch
    torch.manual_seed(0)
    x = torch.randn(3, 3, 32, 32)
    plain = cell_space.build(genotype, NetworkConfig(channels=4, cells=5, auxiliary=False, num_classes=7))
    assert plain.forward(x).shape == (3, 7)
    logits, aux = plain.forward_train(x)
    assert logits.shape == (3, 7) and aux is None

    with_aux = cell_space.build(genotype, NetworkConfig(channels=4, cells=5, auxiliary=True, num_classes=7))
    with_aux.train()
    logits, aux = with_aux.forward_train(x)
    assert logits.shape == (3, 7) and aux.shape == (3, 7)
    out = with_aux(x)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 7)  # forward: logits only
    with_aux.eval()
    assert with_aux.forward_train(x)[1].shape == (3, 7)


def test_auxiliary_head_is_excluded_from_params(cell_space):
    genotype = cell_space.zoo()["DARTS_V2"].arch
    torch.manual_seed(0)
    plain = cell_space.build(genotype, NetworkConfig(channels=8, cells=5, auxiliary=False))
    with_aux = cell_space.build(genotype, NetworkConfig(channels=8, cells=5, auxiliary=True))
    aux_params = sum(p.numel() for p in with_aux.auxiliary_head.parameters())
    assert aux_params > 0
    assert count_params(with_aux) == count_params(plain) == sum(p.numel() for p in plain.parameters())
    assert sum(p.numel() for p in with_aux.parameters()) == count_params(plain) + aux_params


def test_drop_path_exact_values():
    x = torch.arange(1, 8 * 2 * 3 * 3 + 1, dtype=torch.float32).view(8, 2, 3, 3)
    torch.manual_seed(0)
    out = drop_path(x, 0.25)
    torch.manual_seed(0)
    keep = torch.empty(8, 1, 1, 1).bernoulli_(0.75).view(8)
    assert 0 < keep.sum() < 8  # this seed drops some samples and keeps others
    for i in range(8):
        if keep[i]:
            torch.testing.assert_close(out[i], x[i] / 0.75)
        else:
            assert torch.count_nonzero(out[i]) == 0


def test_drop_path_drops_whole_samples_at_the_right_rate():
    torch.manual_seed(0)
    out = drop_path(torch.ones(4000, 3, 2, 2), 0.3)
    per_sample = out.view(4000, -1)
    dropped = (per_sample == 0).all(1)
    kept = torch.isclose(per_sample, torch.tensor(1 / 0.7)).all(1)
    assert bool((dropped | kept).all())  # every sample is either all zero or all 1/keep
    assert 0.27 < dropped.float().mean().item() < 0.33


def test_drop_path_only_in_training_and_never_on_identity(cell_space):
    from nasbench.spaces.cell.genotype import Genotype

    skips = Genotype.from_dict({
        "normal": [["skip_connect", 0], ["skip_connect", 1], ["skip_connect", 2], ["skip_connect", 1]],
        "normal_concat": [2, 3],
        "reduce": [["max_pool_3x3", 0], ["max_pool_3x3", 1], ["skip_connect", 2], ["max_pool_3x3", 1]],
        "reduce_concat": [2, 3],
    })
    torch.manual_seed(0)
    cell = cell_space.build(skips, NetworkConfig(channels=4, cells=1)).cells[0]  # the only cell: a reduction
    normal = cell_space.build(skips, NetworkConfig(channels=4, cells=4)).cells[0]
    normal.train()
    s = torch.randn(2, 12, 8, 8)
    # a normal cell made of identities only: drop path must leave it unchanged
    torch.testing.assert_close(normal(s, s, 0.9), normal(s, s, 0.0))
    cell.eval()
    torch.testing.assert_close(cell(s, s, 0.9), cell(s, s, 0.0))


# -- parameter counts of the published cells ----------------------------------------------

@pytest.fixture(scope="module")
def full_counts(cell_space):
    config = load_protocol("full").final.network
    assert (config.channels, config.cells, config.auxiliary) == (36, 20, True)
    return {name: count_params(cell_space.build(entry.arch, config)) for name, entry in cell_space.zoo().items()}


def test_darts_v2_matches_the_official_code(full_counts):
    # the official DARTS code (train.py, NetworkCIFAR 36 channels, 20 layers, auxiliary) logs
    # "param size = 3.349342MB" for DARTS_V2, counting without the auxiliary head
    assert full_counts["DARTS_V2"] == 3349342


@pytest.mark.parametrize("name", ["DARTS_V2", "PC_DARTS", "PDARTS", "GDAS", "GDAS_FRC", "SNAS_moderate",
                                  "SNAS_aggressive", "AmoebaNet"])
def test_counts_match_published_figures(cell_space, full_counts, name):
    assert round(full_counts[name] / 1e6, 1) == cell_space.zoo()[name].published_params_m


@pytest.mark.parametrize("name, count, published", [
    ("DARTS_V1", 3169414, 3.3),
    ("NASNet", 3830950, 3.1),
    ("ENAS", 4020166, 4.6),
    ("SNAS_mild", 2661382, 2.9),
    ("SNAS", 2661382, 2.9),
])
def test_known_mismatches_are_pinned(cell_space, full_counts, name, count, published):
    assert cell_space.zoo()[name].published_params_m == published
    assert round(full_counts[name] / 1e6, 1) != published
    assert full_counts[name] == count


def test_nasnet_at_32_channels_matches_its_published_figure(cell_space):
    net = cell_space.build(cell_space.zoo()["NASNet"].arch, NetworkConfig(channels=32, cells=20, auxiliary=True))
    assert count_params(net) == 3061738
    assert round(count_params(net) / 1e6, 1) == 3.1
