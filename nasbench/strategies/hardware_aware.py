"""The hardware-aware supernet methods (FBNet, ProxylessNAS) on either space they apply to:
the FBNet layer-wise space (its :class:`~nasbench.spaces.fbnet.supernet.LayerSupernet`, one
row of 9 block weights per layer) or the cell space (DARTS' supernet, one row of 8
operation weights per edge and cell type). Either way the architecture weights are a dict
of groups in the cost model's layout, so a latency table's expected cost applies to them
directly, and the shared loop is :class:`~nasbench.strategies.supernet_search.SupernetSearch`'s.
A constraint enters only the architecture's loss: in the weights' loss it would only rescale
the learning rate, the expected cost not depending on the weights."""
from __future__ import annotations

from typing import ClassVar, Hashable

import torch

from nasbench.protocol import SupernetBudget
from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS
from nasbench.spaces.cell.supernet import Supernet, derive_genotype, sample_genotype
from nasbench.spaces.fbnet.candidates import BLOCK_NAMES
from nasbench.spaces.fbnet.space import FbnetSpace
from nasbench.spaces.fbnet.supernet import LayerSupernet, most_likely, sample_arch
from nasbench.strategies.supernet_search import SupernetSearch


class HardwareAwareSearch(SupernetSearch):
    """Base of FBNet and ProxylessNAS. On the FBNet space the supernet's size comes from
    the protocol's ``[fbnet]`` layout; on the cell space from ``[search.supernet]``, which
    gives the epochs and batch size on both."""

    spaces = ("fbnet", "cell")
    alpha_std: ClassVar[float] = 0.0
    """Standard deviation of the layer-wise architecture parameters' normal initialisation
    (0: uniform); on cells, DARTS' 1e-3."""
    warmup_share: ClassVar[float] = 0.0
    """Share of the epochs that train only the weights before the architecture moves."""

    def __init__(self, context):
        self.layerwise = isinstance(context.space, FbnetSpace)
        super().__init__(context)

    @property
    def operation_names(self) -> tuple[str, ...]:
        return BLOCK_NAMES if self.layerwise else SEARCH_OPERATIONS

    def make_supernet(self, budget: SupernetBudget) -> torch.nn.Module:
        if self.layerwise:
            return LayerSupernet(self.context.space, alpha_std=self.alpha_std)
        return Supernet(budget.channels, budget.cells)

    def derive(self, weights: dict[str, torch.Tensor]) -> Hashable:
        """Per layer the most likely block; on cells DARTS' derivation."""
        return most_likely(weights) if self.layerwise else derive_genotype(weights)

    def sample_architecture(self) -> Hashable:
        """An architecture drawn from the learned distribution, from :attr:`generator`."""
        sample = sample_arch if self.layerwise else sample_genotype
        return sample(dict(self.supernet.alphas.items()), self.generator)

    def warmup_epochs(self) -> int:
        return round(self.warmup_share * self.supernet_epochs())
