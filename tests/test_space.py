"""The cell search space: uniform sampling and the space registry."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from nasbench.errors import UnknownNameError
from nasbench.spaces import SPACES, get_space
from nasbench.spaces.cell.genotype import Genotype
from nasbench.spaces.cell.space import CellSpace

SAMPLED = {"max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
           "dil_conv_5x5"}


@pytest.fixture(scope="module")
def samples():
    space = CellSpace()
    rng = random.Random(2024)
    return [space.sample(rng) for _ in range(400)]


def test_sample_is_deterministic_for_a_seed():
    space = CellSpace()
    first = [space.sample(random.Random(7)) for _ in range(3)]
    assert first[0] == first[1] == first[2]
    rng_a, rng_b = random.Random(11), random.Random(11)
    assert [space.sample(rng_a) for _ in range(20)] == [space.sample(rng_b) for _ in range(20)]
    assert space.sample(random.Random(7)) != space.sample(random.Random(8))


def test_sample_uses_only_the_given_rng():
    space = CellSpace()
    random.seed(0)
    a = space.sample(random.Random(3))
    random.seed(1)
    b = space.sample(random.Random(3))
    assert a == b


def test_samples_are_well_formed(samples):
    for g in samples:
        assert isinstance(g, Genotype)
        assert g.normal_concat == g.reduce_concat == (2, 3, 4, 5)
        for edges in (g.normal, g.reduce):
            assert len(edges) == 8
            for node in range(4):
                (op_a, in_a), (op_b, in_b) = edges[2 * node], edges[2 * node + 1]
                assert in_a != in_b, "a node takes two distinct inputs"
                assert 0 <= in_a < node + 2 and 0 <= in_b < node + 2
                assert op_a in SAMPLED and op_b in SAMPLED
        assert Genotype.from_json(g.to_json()) == g


def test_every_operation_and_input_appears(samples):
    ops = Counter(op for g in samples for edges in (g.normal, g.reduce) for op, _ in edges)
    assert set(ops) == SAMPLED  # 'none' never, all seven others
    assert "none" not in ops
    # uniform: 6400 edges over 7 operations, about 914 each
    assert all(800 < count < 1030 for count in ops.values()), ops
    for node in range(4):
        inputs = {frozenset(src for _, src in edges[2 * node:2 * node + 2])
                  for g in samples for edges in (g.normal, g.reduce)}
        expected = {frozenset((a, b)) for a in range(node + 2) for b in range(a + 1, node + 2)}
        assert inputs == expected, f"node n{node + 2}: every pair of distinct inputs is drawn"


def test_samples_are_diverse(samples):
    assert len(set(samples)) == len(samples)


def test_registry():
    assert sorted(SPACES) == ["cell", "enas-macro", "fbnet", "metaqnn", "nasnet", "nasrl-macro"]
    assert isinstance(get_space("cell"), CellSpace)
    with pytest.raises(UnknownNameError) as info:
        get_space("nope")
    assert str(info.value) == "unknown space 'nope'; known: cell, enas-macro, fbnet, metaqnn, nasnet, nasrl-macro"
    assert info.value.known == ["cell", "enas-macro", "fbnet", "metaqnn", "nasnet", "nasrl-macro"]


def test_space_dict_round_trip(samples):
    space = CellSpace()
    for g in samples[:20]:
        assert space.from_dict(space.to_dict(g)) == g
