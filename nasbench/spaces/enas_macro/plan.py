"""The ENAS macro network's plan, which the space's description needs without torch: the
operation names and the layers after which the network pools (see
:mod:`nasbench.spaces.enas_macro.network`, which builds it)."""
from __future__ import annotations

OPERATIONS = ("conv_3x3", "sep_conv_3x3", "conv_5x5", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3")
"""The six operations of a layer, in the official code's branch order."""


def reduction_layers(layers: int) -> tuple[int, int]:
    """The (0-based) layers after which every state is halved in resolution: L/3 - 1 and
    2L/3 - 1 (general_child.py's ``pool_layers``; layers 3 and 7 of the paper's 12)."""
    distance = layers // 3
    return distance - 1, 2 * distance - 1
