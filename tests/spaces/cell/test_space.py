"""The cell search space: uniform, well-formed, diverse samples, and mutation."""
from __future__ import annotations

import json
import random
from collections import Counter

import pytest

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


def test_mutation_changes_exactly_one_edge_and_keeps_the_genotype_valid(cell_space):
    rng = random.Random(0)
    kinds = {"op": 0, "input": 0}
    for _ in range(300):
        parent = cell_space.sample(rng)
        child = cell_space.mutate(parent, rng)
        changed = [(kind, a, b) for kind, cell, _ in parent.cells()
                   for a, b in zip(cell, getattr(child, kind)) if a != b]
        assert len(changed) == 1
        _, (op_a, src_a), (op_b, src_b) = changed[0]
        kinds["op" if src_a == src_b else "input"] += 1
        assert (op_a == op_b) != (src_a == src_b)  # either the operation or the input changed
        for _, cell, _ in child.cells():
            for node in range(len(cell) // 2):
                assert cell[2 * node][1] != cell[2 * node + 1][1]  # two distinct inputs per node
        assert cell_space.from_dict(json.loads(json.dumps(cell_space.to_dict(child)))) == child
    assert kinds["op"] > 100 and kinds["input"] > 100  # both mutations happen, roughly equally
