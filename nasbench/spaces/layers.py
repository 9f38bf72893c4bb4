"""Building blocks that more than one space's networks use."""
from __future__ import annotations

import torch


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's shuffle: view the channels as (groups, C / groups), transpose; channel
    ``g * C / groups + j`` moves to ``j * groups + g``."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)
