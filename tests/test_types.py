"""The types several layers share: part ids, derived seeds."""
from __future__ import annotations

import pytest

from nasbench.types import PartKey, derive_seed


def test_part_ids_round_trip():
    key = PartKey("op", "sep_conv_3x3", 16, 16, 32, 2, 1)
    assert key.id == "op:sep_conv_3x3:c16>16:s32:x2:n1"
    assert PartKey.from_id(key.id) == key
    with pytest.raises(ValueError):
        PartKey.from_id("op:sep_conv_3x3")


def test_derive_seed():
    assert derive_seed(0, "candidate", 1) == derive_seed(0, "candidate", 1)
    seeds = {derive_seed(s, purpose, i) for s in range(3) for purpose in ("candidate", "final") for i in range(5)}
    assert len(seeds) == 30 and all(0 <= s < 2 ** 31 for s in seeds)
