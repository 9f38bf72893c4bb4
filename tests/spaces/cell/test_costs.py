"""The cell space's cost decomposition: the parts of a genotype's network add up exactly to the
whole network's counts, the table covers every sampled architecture, parts sit where the network
puts them, and genotypes outside the search space have no architecture weights."""
from __future__ import annotations

import random

import pytest
import torch

from nasbench.errors import NasbenchError
from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.counting import count_flops, count_params
from nasbench.hardware.mac import count_mac
from nasbench.hardware.profiler import final_network
from nasbench.types import PartKey


def _genotypes(cell_space, n=6):
    rng = random.Random(11)
    return [cell_space.sample(rng) for _ in range(n)] + [e.arch for e in cell_space.zoo().values()]


@pytest.mark.slow
def test_counts_of_the_parts_add_up_to_the_network_exactly(cell_space, smoke, cell_counts):
    """params (torch), FLOPs (fvcore) and MAC of every genotype's network equal the sums of its parts."""
    config = final_network(smoke)
    for metric, measure in (("params", count_params), ("flops", count_flops),
                            ("mac_elements", lambda net: count_mac(net, [torch.zeros(1, 3, 32, 32)]))):
        model = CostModel(cell_counts, cell_space, metric)
        for genotype in _genotypes(cell_space):
            network = cell_space.build(genotype, config).eval()
            assert model.cost(genotype) == measure(network), (metric, genotype)


def test_the_table_covers_every_sampled_architecture(cell_space, smoke, cell_counts):
    config = final_network(smoke)
    rng = random.Random(5)
    for _ in range(300):
        assert set(cell_space.cost_parts(cell_space.sample(rng), config)) <= set(cell_counts.entries)


def test_parts_sit_where_the_network_puts_them(cell_space, smoke):
    """In the smoke network (4 channels, 3 cells: reductions at cells 1 and 2), a reduction
    cell's edges from its inputs stride from 32 to 16; edges between its nodes run at 16."""
    genotype = cell_space.zoo()["DARTS_V2"].arch
    parts = cell_space.cost_parts(genotype, final_network(smoke))
    ops = [p for p in parts if p.kind == "op"]
    assert PartKey("op", "max_pool_3x3", 8, 8, 32, 2) in ops       # reduce n2 from c_{k-2}
    assert PartKey("op", "skip_connect", 8, 8, 16, 1) in ops        # reduce n4 from n2, at 16x16
    # cell 2 follows a reduction: its c_{k-2} is cell 0's 16-channel output at 32x32
    assert PartKey("preprocess", "factorized_reduce", 16, 16, 32, 2) in parts
    assert PartKey("head", "pool_linear", 64, 10, 8, 1) in parts
    assert sum(p.kind == "combine" and p.name == "add" for p in parts) == 3 * 4


def test_arch_weights_refuse_a_genotype_outside_the_search_space(cell_space):
    with pytest.raises(NasbenchError, match="not in the search space"):
        cell_space.arch_weights(cell_space.zoo()["NASNet"].arch)
