"""Every space draws its architectures (``SearchSpace.graph``): the contract over the registry,
then each space's drawing of a known architecture, node by node and edge by edge."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from nasbench.errors import NasbenchError
from nasbench.spaces import SPACES, get_space
from nasbench.spaces.base import SearchSpace
from nasbench.spaces.cell.genotype import Genotype
from nasbench.spaces.enas_macro.space import MacroArch
from nasbench.types import ArchitectureGraph, GraphEdge, GraphNode


@pytest.mark.parametrize("name", list(SPACES))
def test_every_space_draws_its_samples_and_zoo(name, smoke):
    space = get_space(name, smoke)
    rng = random.Random(0)
    for arch in [space.sample(rng) for _ in range(5)] + [entry.arch for entry in space.zoo().values()]:
        graphs = space.graph(arch)
        assert graphs and all(isinstance(g, ArchitectureGraph) for g in graphs)
        assert len({g.group for g in graphs}) == len(graphs)
        for graph in graphs:
            kinds = Counter(node.kind for node in graph.nodes)
            assert kinds["input"] >= 1 and kinds["output"] == 1
            targets = {edge.dst for edge in graph.edges}
            assert all(node.id in targets for node in graph.nodes if node.kind != "input")  # every node is reached


def test_a_space_without_a_drawing_says_so(cell_space):
    with pytest.raises(NasbenchError, match="the cell space has no drawing of its genotypes"):
        SearchSpace.graph(cell_space, cell_space.zoo()["DARTS_V2"].arch)


def test_graph_values_reject_unknown_kinds_and_dangling_edges():
    node = GraphNode("a", "a", "input")
    with pytest.raises(ValueError, match="edges between unknown nodes"):
        ArchitectureGraph("g", (node,), (GraphEdge("a", "b"),))
    with pytest.raises(ValueError, match="unknown node kinds"):
        ArchitectureGraph("g", (GraphNode("a", "a", "hidden"),), ())
    with pytest.raises(ValueError, match="distinct"):
        ArchitectureGraph("g", (node, node), ())


def edges_by_target(graph: ArchitectureGraph) -> dict[str, list[tuple[str, str]]]:
    targets: dict[str, list[tuple[str, str]]] = {}
    for edge in graph.edges:
        targets.setdefault(edge.dst, []).append((edge.src, edge.label))
    return targets


def test_darts_v2_as_in_the_darts_paper(cell_space):
    genotype = cell_space.zoo()["DARTS_V2"].arch
    normal, reduce = cell_space.graph(genotype)
    assert (normal.group, reduce.group) == ("normal", "reduce")
    for graph, edges in ((normal, genotype.normal), (reduce, genotype.reduce)):
        assert [(n.id, n.label, n.kind) for n in graph.nodes] == [
            ("s0", "c_{k-2}", "input"), ("s1", "c_{k-1}", "input"), ("s2", "0", "intermediate"),
            ("s3", "1", "intermediate"), ("s4", "2", "intermediate"), ("s5", "3", "intermediate"),
            ("out", "c_{k}", "output")]
        operations = [e for e in graph.edges if e.dst != "out"]
        assert len(operations) == 8
        assert [(e.src, e.dst, e.label) for e in operations] == [
            (f"s{source}", f"s{i // 2 + 2}", op) for i, (op, source) in enumerate(edges)]
        assert sorted((e.src, e.label) for e in graph.edges if e.dst == "out") == [(f"s{i}", "") for i in (2, 3, 4, 5)]
    # DARTS_V2's normal cell: node 0 = sep_conv_3x3(c_{k-2}) + sep_conv_3x3(c_{k-1}), node 3 = skip(c_{k-2}) + dil(0)
    assert edges_by_target(normal)["s2"] == [("s0", "sep_conv_3x3"), ("s1", "sep_conv_3x3")]
    assert edges_by_target(normal)["s5"] == [("s0", "skip_connect"), ("s2", "dil_conv_3x3")]
    assert Counter(e.label for e in reduce.edges if e.label) == {"max_pool_3x3": 5, "skip_connect": 3}


def test_a_cell_that_is_not_searched_is_not_drawn(cell_space):
    darts = cell_space.zoo()["DARTS_V2"].arch
    frc = Genotype(darts.normal, darts.normal_concat, None, darts.reduce_concat)
    assert [g.group for g in cell_space.graph(frc)] == ["normal"]


def test_nasnet_a_blocks_with_their_combination_and_output(smoke):
    space = get_space("nasnet", smoke)
    arch = space.zoo()["NASNet-A"].arch
    normal, reduce = space.graph(arch)
    for graph, cell in ((normal, arch.normal), (reduce, arch.reduce)):
        labels = {n.id: n.label for n in graph.nodes}
        assert labels["s0"] == "h_(i-1)" and labels["s1"] == "h_i" and labels["out"] == "h_(i+1)"
        assert [labels[f"s{b + 2}"] for b in range(5)] == [f"n{b + 2}: add" for b in range(5)]
        assert len([e for e in graph.edges if e.dst != "out"]) == 10
        assert sorted(e.src for e in graph.edges if e.dst == "out") == [f"s{i}" for i in cell.concat]
    assert len([e for e in normal.edges if e.dst == "out"]) == 5 and len([e for e in reduce.edges if e.dst == "out"]) == 3


def test_fbnet_is_a_chain_of_the_chosen_blocks(fbnet_space):
    blocks = tuple(["k3_e6", "skip"] * len(fbnet_space.specs))[:len(fbnet_space.specs)]
    (graph,) = fbnet_space.graph(fbnet_space.from_dict({"blocks": list(blocks)}))
    layers = [n for n in graph.nodes if n.kind == "layer"][1:]  # after the stem
    assert [n.label.split(" ")[0] for n in layers] == list(blocks)
    assert [n.label.endswith("/2") for n in layers] == [spec.stride == 2 for spec in fbnet_space.specs]
    assert [(e.src, e.dst) for e in graph.edges] == list(zip([n.id for n in graph.nodes], [n.id for n in graph.nodes][1:]))


def test_enas_macro_layers_and_their_skips(smoke):
    space = get_space("enas-macro", smoke)  # 3 layers, pooling after the first two
    (graph,) = space.graph(MacroArch(("conv_3x3", "max_pool_3x3", "sep_conv_5x5"), ((), (0,), (0, 1))))
    assert [n.label for n in graph.nodes] == ["stem", "0: conv_3x3, pool", "1: max_pool_3x3, pool", "2: sep_conv_5x5",
                                              "pool, fc"]
    chain = [("stem", "l0"), ("l0", "l1"), ("l1", "l2"), ("l2", "head")]
    skips = [("stem", "l1"), ("stem", "l2"), ("l0", "l2")]  # state j is layer j's input: the stem's output for j = 0
    assert [(e.src, e.dst) for e in graph.edges] == chain + skips


def test_metaqnn_sequence_in_the_papers_notation(smoke):
    space = get_space("metaqnn", smoke)
    arch = space.sample(random.Random(3))
    (graph,) = space.graph(arch)
    assert [n.label for n in graph.nodes][1:] == [str(layer) for layer in arch.layers] + [str(arch).split(" - ")[-1]]
    assert len(graph.edges) == len(graph.nodes) - 1


def test_nasrl_layers_take_their_inputs_and_feed_the_classifier_when_unused(smoke):
    space = get_space("nasrl-macro", smoke)
    arch = space.from_dict({"layers": [
        {"kernel": [3, 5], "stride": [1, 1], "filters": space.layout.filter_counts[0], "inputs": []},
        {"kernel": [1, 1], "stride": [1, 1], "filters": space.layout.filter_counts[0], "inputs": []},
        {"kernel": [7, 7], "stride": [1, 1], "filters": space.layout.filter_counts[0], "inputs": [0]}]})
    (graph,) = space.graph(arch)
    assert [n.label for n in graph.nodes][1:4] == [f"0: 3x5, {space.layout.filter_counts[0]}",
                                                   f"1: 1x1, {space.layout.filter_counts[0]}",
                                                   f"2: 7x7, {space.layout.filter_counts[0]}"]
    assert [(e.src, e.dst) for e in graph.edges] == [("image", "l0"), ("image", "l1"), ("l0", "l2"),
                                                     ("l1", "head"), ("l2", "head")]
