"""The hardware-aware supernet methods (FBNet, ProxylessNAS) on the shared cell space: they search
cells with the cost model's layout and derive a genotype."""
from __future__ import annotations

import pytest
from helpers import context, with_supernet

from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS, Genotype
from nasbench.strategies.fbnet import Fbnet
from nasbench.strategies.proxylessnas import ProxylessNas


@pytest.fixture(scope="module")
def cell_searching(tiny):
    return with_supernet(tiny, epochs=2, channels=2, batch_size=8)


@pytest.mark.slow
@pytest.mark.parametrize("cls", [Fbnet, ProxylessNas])
def test_the_hardware_aware_methods_search_cells_and_derive_a_genotype(cls, cell_space, cell_searching, tiny_data):
    result = cls(context(cell_space, cell_searching, tiny_data)).run()
    assert isinstance(result.arch, Genotype)
    assert all(op != "none" for op, _ in result.arch.normal + result.arch.reduce)
    assert result.details["operations"] == list(SEARCH_OPERATIONS)
