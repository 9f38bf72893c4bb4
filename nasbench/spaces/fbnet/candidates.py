"""The FBNet space's 9 candidate blocks as data (Wu et al., CVPR 2019, Table 2), apart from
the modules that build them (:mod:`nasbench.spaces.fbnet.blocks`), so that the space draws,
checks and costs architectures without torch."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BlockSpec:
    kernel: int
    expansion: int
    groups: int


BLOCKS: dict[str, BlockSpec | None] = {
    "k3_e1": BlockSpec(3, 1, 1),
    "k3_e1_g2": BlockSpec(3, 1, 2),
    "k3_e3": BlockSpec(3, 3, 1),
    "k3_e6": BlockSpec(3, 6, 1),
    "k5_e1": BlockSpec(5, 1, 1),
    "k5_e1_g2": BlockSpec(5, 1, 2),
    "k5_e3": BlockSpec(5, 3, 1),
    "k5_e6": BlockSpec(5, 6, 1),
    "skip": None,
}
"""The 9 candidates of every searchable layer, in the paper's Table 2 order."""
BLOCK_NAMES = tuple(BLOCKS)
