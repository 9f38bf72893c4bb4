"""Supernet search on the FBNet layer-wise space (FBNet, ProxylessNAS): the shared loop of
:class:`~nasbench.strategies.supernet_search.SupernetSearch` on the space's
:class:`~nasbench.spaces.fbnet.supernet.LayerSupernet`, whose architecture weights are one
row of 9 block weights per layer (``{"layers": (layers, 9)}``, the cost model's layout, so
a latency table's expected cost applies to them directly)."""
from __future__ import annotations

from typing import ClassVar

import torch

from nasbench.errors import NasbenchError
from nasbench.protocol import SupernetBudget
from nasbench.spaces.fbnet.blocks import BLOCK_NAMES
from nasbench.spaces.fbnet.space import LAYERS_GROUP, FbnetSpace, LayerArch
from nasbench.spaces.fbnet.supernet import LayerSupernet, most_likely
from nasbench.strategies.supernet_search import Batch, SupernetSearch


class LayerwiseSearch(SupernetSearch):
    """Base of the FBNet-space supernet methods: the supernet's size comes from the
    protocol's ``[fbnet]`` layout; ``[search.supernet]`` gives its epochs and batch size."""

    spaces = ("fbnet",)
    operation_names = BLOCK_NAMES
    alpha_std: ClassVar[float] = 0.0
    """Standard deviation of the architecture parameters' normal initialisation (0: uniform)."""
    warmup_share: ClassVar[float] = 0.0
    """Share of the epochs that train only the weights before the architecture moves."""

    def make_supernet(self, budget: SupernetBudget) -> LayerSupernet:
        if not isinstance(self.context.space, FbnetSpace):
            raise NasbenchError(f"{self.name} searches the fbnet space, not {self.context.space.name}")
        return LayerSupernet(self.context.space, alpha_std=self.alpha_std)

    def derive(self, weights: dict[str, torch.Tensor]) -> LayerArch:
        return most_likely(weights[LAYERS_GROUP])

    def warmup_epochs(self) -> int:
        return round(self.warmup_share * self.supernet_epochs())

    def architecture_objective(self, batch: Batch, weights: dict[str, torch.Tensor],
                               cost_weights: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(the loss the architecture descends, its cross-entropy): the cross-entropy under
        ``weights``, under the run's constraint, if any, with the expected cost under
        ``cost_weights``. The constraint does not enter the weights' loss, where it would
        only rescale the learning rate (the expected cost does not depend on the weights)."""
        loss = self.loss(batch, weights)
        constraint = self.context.constraint
        return (loss if constraint is None else constraint.apply(loss, cost_weights)), loss
