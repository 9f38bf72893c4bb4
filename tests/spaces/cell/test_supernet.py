"""The weight-sharing supernet: DARTS' layout and size, parameters apart, the shared ReLU,
sparse (one-hot) weights, GDAS' variant of the network, and DARTS' derivation of a genotype."""
from __future__ import annotations

import copy
import random

import pytest
import torch
from torch import nn

from nasbench.errors import ConfigError
from nasbench.spaces.cell.costs import genotype_weights
from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS, Genotype
from nasbench.spaces.cell.ops import make_operation
from nasbench.spaces.cell.plan import reduction_positions
from nasbench.spaces.cell.supernet import (
    EDGES,
    GROUPS,
    NONE,
    POOLINGS,
    MixedOp,
    State,
    Supernet,
    derive_genotype,
    drop_leading_relu,
    sample_genotype,
)

SKIP = SEARCH_OPERATIONS.index("skip_connect")


@pytest.fixture(scope="module")
def supernet():
    torch.manual_seed(0)
    return Supernet(channels=4, cells=3)


def softmax_weights(net: Supernet) -> dict[str, torch.Tensor]:
    return {group: alpha.softmax(-1) for group, alpha in net.alphas.items()}


def test_size_matches_the_darts_search_network():
    """The DARTS code logs "param size = 1.930618MB" for its search network (16 channels,
    8 cells; the architecture parameters are not counted there)."""
    net = Supernet(channels=16, cells=8)
    assert sum(p.numel() for p in net.weight_parameters()) == 1_930_618
    gdas = Supernet(channels=16, cells=8, pool_norm=False, last_act=True)
    assert sum(p.numel() for p in gdas.weight_parameters()) == 1_930_618 + 2 * 256  # the final batch norm's


def test_layout(supernet):
    assert [cell.reduction for cell in supernet.cells] == [i in reduction_positions(3) for i in range(3)]
    assert [cell.group for cell in supernet.cells] == ["normal", "reduce", "reduce"]
    assert all(len(cell.edges) == len(EDGES) == 14 for cell in supernet.cells)
    stem_norm = supernet.stem[1]
    assert stem_norm.affine  # as DARTS: only the stem's batch norm has affine parameters
    cell_norms = [m for m in supernet.cells.modules() if isinstance(m, nn.BatchNorm2d)]
    assert cell_norms and not any(m.affine for m in cell_norms)
    logits = supernet(torch.randn(2, 3, 32, 32), softmax_weights(supernet))
    assert logits.shape == (2, 10)


def pooling_ops(net: Supernet) -> list[nn.Module]:
    return [edge.ops[name] for cell in net.cells for edge in cell.edges for name in POOLINGS]


def last_cell_output(net: Supernet, x: torch.Tensor, weights) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, the last cell's output) of one forward pass."""
    seen = {}
    hook = net.cells[-1].register_forward_hook(lambda m, i, out: seen.setdefault("out", out))
    try:
        logits = net(x, weights)
    finally:
        hook.remove()
    return logits, seen["out"]


def test_darts_pools_then_normalises_and_pools_globally_right_after_the_last_cell(supernet):
    """DARTS' search network (the default): batch norm without affine parameters after every
    pooling, and the head reads the last cell's output as it is."""
    pools = pooling_ops(supernet)
    assert len(pools) == 3 * 14 * 2
    for op in pools:
        assert isinstance(op, nn.Sequential) and isinstance(op[0], (nn.MaxPool2d, nn.AvgPool2d))
        assert isinstance(op[1], nn.BatchNorm2d) and not op[1].affine
    assert not any(p.numel() for p in supernet.last_act.parameters())
    logits, last = last_cell_output(supernet, torch.randn(2, 3, 32, 32), softmax_weights(supernet))
    assert torch.equal(logits, supernet.head(last))


def test_gdas_network_has_bare_pooling_and_a_final_batch_norm_and_relu():
    """GDAS' search network (AutoDL-Projects' NASNetworkGDAS): pooling without batch norm,
    every other operation as DARTS', and an affine batch norm and a ReLU before the head."""
    torch.manual_seed(0)
    darts, gdas = Supernet(channels=4, cells=3), Supernet(channels=4, cells=3, pool_norm=False, last_act=True)
    assert all(isinstance(op, (nn.MaxPool2d, nn.AvgPool2d)) for op in pooling_ops(gdas))
    darts_params = {n: p.shape for n, p in darts.named_parameters()}
    gdas_params = {n: p.shape for n, p in gdas.named_parameters()}
    assert gdas_params == {**darts_params, "last_act.0.weight": (64,), "last_act.0.bias": (64,)}  # 4 * 16 channels
    norm, relu = gdas.last_act
    assert isinstance(norm, nn.BatchNorm2d) and norm.affine and isinstance(relu, nn.ReLU)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1.0, 1.0)  # so that the ReLU cuts something
    logits, last = last_cell_output(gdas, torch.randn(2, 3, 32, 32), softmax_weights(gdas))
    assert torch.allclose(logits, gdas.head(torch.relu(norm(last))))
    assert not torch.allclose(logits, gdas.head(last))
    assert set(gdas.named_weight_parameters()) >= {"last_act.0.weight", "last_act.0.bias"}  # trained as weights


@pytest.mark.parametrize("name", POOLINGS)
def test_a_gdas_pooling_edge_is_the_bare_pooling(name):
    """On a one-hot pooling row an edge gives the pooling of its input, unnormalised in
    GDAS' network and normalised (zero mean per channel in training) in DARTS'."""
    x = torch.randn(4, 4, 8, 8) + 3.0
    row = torch.zeros(len(SEARCH_OPERATIONS))
    k = SEARCH_OPERATIONS.index(name)
    row[k] = 1.0
    pool = (nn.functional.max_pool2d(x, 3, 1, 1) if name.startswith("max")
            else nn.functional.avg_pool2d(x, 3, 1, 1, count_include_pad=False))
    assert torch.equal(MixedOp(4, 1, pool_norm=False)(State(x), row, (k,)), pool)
    normalised = MixedOp(4, 1)(State(x), row, (k,))
    assert torch.allclose(normalised.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5)


def test_architecture_and_weight_parameters_are_apart(supernet):
    arch = supernet.arch_parameters()
    weights = supernet.weight_parameters()
    assert [tuple(a.shape) for a in arch] == [(14, 8), (14, 8)]
    assert {id(p) for p in arch}.isdisjoint(id(p) for p in weights)
    assert {id(p) for p in arch} | {id(p) for p in weights} == {id(p) for p in supernet.parameters()}
    assert set(supernet.named_weight_parameters()) == {n for n, _ in supernet.named_parameters()} - {
        "alphas.normal", "alphas.reduce"}
    for alpha in arch:  # DARTS' initialisation: 1e-3 * N(0, 1)
        assert 0 < alpha.abs().max() < 1e-2 and 1e-4 < alpha.std() < 3e-3


def test_forward_reads_the_given_weights_not_the_parameters(supernet):
    """The forward pass depends on the weights passed in; gradients reach the alphas only
    through them."""
    x = torch.randn(2, 3, 32, 32)
    weights = softmax_weights(supernet)
    logits = supernet(x, weights)
    grads = torch.autograd.grad(logits.sum(), supernet.arch_parameters())
    assert all(g.abs().sum() > 0 for g in grads)
    detached = supernet(x, {g: w.detach() for g, w in weights.items()})
    assert torch.allclose(detached, logits)
    assert torch.autograd.grad(detached.sum(), supernet.arch_parameters(), allow_unused=True) == (None, None)


def test_bad_weights_are_refused(supernet):
    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"need a \(14, 8\) tensor for 'reduce', got nothing"):
        supernet(x, {"normal": torch.zeros(14, 8)})
    with pytest.raises(ValueError, match=r"need a \(14, 8\) tensor for 'normal', got \(14, 7\)"):
        supernet(x, {"normal": torch.zeros(14, 7), "reduce": torch.zeros(14, 8)})


@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("name", SEARCH_OPERATIONS[1:])
def test_an_operation_without_its_leading_relu_takes_the_shared_relu(name, stride):
    torch.manual_seed(0)
    op = make_operation(name, 4, stride, affine=False)
    stripped = copy.deepcopy(op)
    starts_with_relu = drop_leading_relu(stripped)
    x = torch.randn(2, 4, 8, 8)
    if starts_with_relu:
        assert torch.equal(stripped(torch.relu(x)), op(x))
        assert sum(isinstance(m, nn.ReLU) for m in stripped.modules()) == \
            sum(isinstance(m, nn.ReLU) for m in op.modules()) - 1
    else:
        assert torch.equal(stripped(x), op(x))
    convolutional = name.startswith(("sep_conv", "dil_conv")) or (name == "skip_connect" and stride == 2)
    assert starts_with_relu == convolutional


def one_hot(genotype: Genotype) -> dict[str, torch.Tensor]:
    """Each chosen (edge, operation) weighted 1, everything else exactly 0."""
    return {group: w.float() for group, w in genotype_weights(genotype).items()}


@pytest.fixture(scope="module")
def genotype():
    return Genotype(
        normal=(("sep_conv_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 0), ("dil_conv_5x5", 2),
                ("avg_pool_3x3", 1), ("sep_conv_5x5", 3), ("dil_conv_3x3", 0), ("skip_connect", 4)),
        normal_concat=(2, 3, 4, 5),
        reduce=(("max_pool_3x3", 0), ("skip_connect", 1), ("sep_conv_3x3", 1), ("avg_pool_3x3", 2),
                ("dil_conv_3x3", 0), ("skip_connect", 2), ("sep_conv_5x5", 1), ("dil_conv_5x5", 4)),
        reduce_concat=(2, 3, 4, 5),
    )


def test_one_hot_weights_run_only_the_chosen_operations(supernet, genotype):
    calls: list[tuple[int, str]] = []
    hooks = [op.register_forward_hook(lambda m, i, o, key=(id(cell), name): calls.append(key))
             for cell in supernet.cells for edge in cell.edges for name, op in edge.ops.items()]
    try:
        supernet(torch.randn(2, 3, 32, 32), one_hot(genotype), sparse=True)
    finally:
        for hook in hooks:
            hook.remove()
    expected = sorted((id(cell), op) for cell in supernet.cells
                      for op, _ in (genotype.reduce if cell.reduction else genotype.normal))
    assert sorted(calls) == expected


def test_sparse_and_dense_give_the_same_logits_and_gradients(supernet, genotype):
    """Skipping the zero-weighted operations changes nothing in the output, nor in the
    gradients of the chosen operations' weights."""
    x = torch.randn(2, 3, 32, 32)
    results = []
    for sparse in (True, False):
        weights = {g: w.requires_grad_() for g, w in one_hot(genotype).items()}
        logits = supernet(x, weights, sparse=sparse)
        grads = torch.autograd.grad(logits.square().sum(), list(weights.values()))
        results.append((logits, grads, weights))
    (sparse_logits, sparse_grads, weights), (dense_logits, dense_grads, _) = results
    assert torch.equal(sparse_logits, dense_logits)
    for group, sparse_grad, dense_grad in zip(GROUPS, sparse_grads, dense_grads):
        chosen = weights[group].detach() != 0
        assert torch.allclose(sparse_grad[chosen], dense_grad[chosen], rtol=1e-5, atol=1e-7)
        assert torch.count_nonzero(sparse_grad[~chosen]) == 0


def test_a_node_with_every_edge_off_is_zero(supernet):
    """A one-hot `none` on every edge: every node is zero, in the right shape."""
    weights = {g: torch.zeros(14, 8) for g in GROUPS}
    for w in weights.values():
        w[:, NONE] = 1
    features = {}
    hook = supernet.cells[1].register_forward_hook(lambda m, i, out: features.setdefault("reduce", out))
    try:
        logits = supernet(torch.randn(2, 3, 32, 32), weights, sparse=True)
    finally:
        hook.remove()
    assert features["reduce"].shape == (2, 4 * 8, 16, 16) and torch.count_nonzero(features["reduce"]) == 0
    assert logits.shape == (2, 10)


# -- deriving the genotype ----------------------------------------------------------------

def darts_parse(weights: list[list[float]]) -> list[tuple[str, int]]:
    """The DARTS code's ``_parse`` (quark0/darts, cnn/model_search.py), restated."""
    gene, start, n = [], 0, 2
    for _ in range(4):
        rows = weights[start:start + n]
        edges = sorted(range(n), key=lambda x: -max(rows[x][k] for k in range(len(rows[x])) if k != NONE))[:2]
        for j in edges:
            k_best = None
            for k in range(len(rows[j])):
                if k != NONE and (k_best is None or rows[j][k] > rows[j][k_best]):
                    k_best = k
            gene.append((SEARCH_OPERATIONS[k_best], j))
        start += n
        n += 1
    return gene


@pytest.mark.parametrize("seed", range(5))
def test_derivation_is_darts(seed):
    torch.manual_seed(seed)
    weights = {g: torch.randn(14, 8).softmax(-1) for g in GROUPS}
    genotype = derive_genotype(weights)
    assert genotype.normal == tuple(darts_parse(weights["normal"].tolist()))
    assert genotype.reduce == tuple(darts_parse(weights["reduce"].tolist()))
    assert genotype.normal_concat == genotype.reduce_concat == (2, 3, 4, 5)


def test_derivation_by_hand():
    """`none` never wins, edges rank by their strongest other operation (strongest first),
    and ties go to the lower index."""
    weights = {g: torch.full((14, 8), 0.1) for g in GROUPS}
    normal = weights["normal"]
    normal[0, NONE] = 0.9                                    # node 2: none on c_{k-2} is ignored ...
    normal[0, SKIP] = 0.2                                    # ... its best other operation is skip
    normal[1, SEARCH_OPERATIONS.index("sep_conv_3x3")] = 0.5
    normal[4, SEARCH_OPERATIONS.index("dil_conv_5x5")] = 0.6  # node 3: n2 strongest, then c_{k-2} (tie with c_{k-1})
    normal[13, SEARCH_OPERATIONS.index("avg_pool_3x3")] = 0.3  # node 5: n4, then the first of four ties
    genotype = derive_genotype(weights)
    assert genotype.normal == (("sep_conv_3x3", 1), ("skip_connect", 0),
                               ("dil_conv_5x5", 2), ("max_pool_3x3", 0),
                               ("max_pool_3x3", 0), ("max_pool_3x3", 1),
                               ("avg_pool_3x3", 4), ("max_pool_3x3", 0))
    assert genotype.reduce == (("max_pool_3x3", 0), ("max_pool_3x3", 1)) * 4


def test_one_hot_weights_of_a_genotype_derive_it_back(cell_space):
    """For every zoo genotype of the search space whose nodes read two different states
    through operations other than `none` (which DARTS' derivation never picks)."""
    derived = 0
    for entry in cell_space.zoo().values():
        try:
            weights = one_hot(entry.arch)
        except ConfigError:
            continue  # not in the search space
        cells = [(entry.arch.normal, "normal"), (entry.arch.reduce, "reduce")]
        if any(edges[i][1] == edges[i + 1][1] or "none" in (edges[i][0], edges[i + 1][0])
               for edges, _ in cells for i in range(0, 8, 2)):
            continue
        genotype = derive_genotype(weights)
        for edges, group in cells:
            got = genotype.normal if group == "normal" else genotype.reduce
            for i in range(0, 8, 2):
                assert sorted(got[i:i + 2]) == sorted(edges[i:i + 2]), (entry.name, group)
        derived += 1
    assert derived >= 5


def test_random_genotypes_round_trip(cell_space):
    rng = random.Random(0)
    for _ in range(20):
        genotype = cell_space.sample(rng)
        derived = derive_genotype(one_hot(genotype))
        for original, got in ((genotype.normal, derived.normal), (genotype.reduce, derived.reduce)):
            assert [sorted(got[i:i + 2]) for i in range(0, 8, 2)] == [sorted(original[i:i + 2]) for i in range(0, 8, 2)]


def test_a_genotype_sampled_from_cell_weights_follows_them(cell_space):
    generator = torch.Generator().manual_seed(0)
    alphas = {g: torch.full((14, 8), -20.0) for g in ("normal", "reduce")}
    for alpha in alphas.values():
        alpha[:, SEARCH_OPERATIONS.index("sep_conv_3x3")] = 0.0
        alpha[:, SEARCH_OPERATIONS.index("none")] = 5.0  # never drawn, however likely
    genotype = sample_genotype(alphas, generator)
    assert {op for op, _ in genotype.normal + genotype.reduce} == {"sep_conv_3x3"}
