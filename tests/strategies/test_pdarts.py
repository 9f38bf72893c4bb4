"""P-DARTS: the stages' depths and kept operations, the skip-connect dropout and its
schedule, the frozen epochs of each stage, the skip limit of the derivation, exact resume
across stages, and `nasbench run` on the smoke protocol."""
from __future__ import annotations

import json
import math

import pytest
import torch
from helpers import (
    context,
    run_cli,
    smoke_args,
    snapshot,
    store_rows,
    stored,
    with_supernet,
)

from nasbench.protocol import load_protocol
from nasbench.spaces.cell.genotype import SEARCH_OPERATIONS
from nasbench.spaces.cell.supernet import EDGES, GROUPS, MixedOp, State
from nasbench.strategies.pdarts import (
    ARCH_GRAD_CLIP,
    PDARTS_ARCHITECTURE,
    PDARTS_WEIGHTS,
    SKIP_DROPOUT,
    STAGE_OPERATIONS,
    Pdarts,
    SkipDropout,
    derive_with_skip_limit,
    skip_dropout_rate,
)

OPS = {name: k for k, name in enumerate(SEARCH_OPERATIONS)}
ALPHAS = {"supernet.alphas.normal", "supernet.alphas.reduce"}


@pytest.fixture(scope="module")
def searching(tiny):
    """The smoke supernet (4 channels, 3 cells: stages of 2, 4 and 6 cells), one batch of 32
    search-train images per epoch."""
    return with_supernet(tiny, channels=4, cells=3, batch_size=32)


def arch_snapshot(strategy) -> dict[str, torch.Tensor]:
    return {f"supernet.{name}": p for name, p in snapshot(strategy.supernet).items()}


# -- settings and stages -----------------------------------------------------------------------

def test_the_settings_are_the_official_codes():
    """train_search.py L24-27, L37-40, L138-139, L288; the README's dropout rates."""
    assert (PDARTS_WEIGHTS.lr, PDARTS_WEIGHTS.lr_min, PDARTS_WEIGHTS.momentum, PDARTS_WEIGHTS.weight_decay,
            PDARTS_WEIGHTS.grad_clip, PDARTS_WEIGHTS.nesterov) == (0.025, 0.0, 0.9, 3e-4, 5.0, False)
    assert (PDARTS_ARCHITECTURE.lr, PDARTS_ARCHITECTURE.betas, PDARTS_ARCHITECTURE.weight_decay) == (
        6e-4, (0.5, 0.999), 1e-3)
    assert ARCH_GRAD_CLIP == 5.0 and SKIP_DROPOUT == (0.1, 0.4, 0.7) and STAGE_OPERATIONS == (8, 5, 3)


@pytest.mark.parametrize("name, cells, epochs, frozen", [
    ("full", (5, 11, 17), 25, 10), ("proxy", (3, 7, 11), 5, 2), ("smoke", (2, 4, 6), 1, 0)])
def test_stage_depths_and_epochs_scale_the_papers_with_the_protocol(name, cells, epochs, frozen, cell_space,
                                                                    searching, tiny_data):
    """`full` (DARTS' 8 cells, 50 epochs) runs the paper's 5, 11, 17 cells of 25 epochs, the
    first 10 weights only; the others scale them."""
    budget = load_protocol(name).search.supernet
    strategy = Pdarts(context(cell_space, with_supernet(searching, cells=budget.cells, epochs=budget.epochs),
                              tiny_data))
    assert (strategy.stage_cells, strategy.stage_epochs, strategy.frozen_epochs) == (cells, epochs, frozen)
    assert strategy.budget() == 3 * epochs and len(strategy.supernet.cells) == cells[0]


def test_stages_grow_the_supernet_and_keep_the_strongest_operations(cell_space, tiny, tiny_data):
    """At the paper's depths (8 protocol cells: 5, 11, 17), hand-made alphas: after stage 1 each
    edge keeps its 5 largest (``none`` too, if large; of equal ones the higher indices), after
    stage 2 its 3 largest of those; each stage on a new supernet with new alphas."""
    strategy = Pdarts(context(cell_space, with_supernet(tiny, channels=2, cells=8, batch_size=32), tiny_data))
    assert len(strategy.supernet.cells) == 5
    first = strategy.supernet
    values = torch.tensor([[(3 * k + e) % 8 for k in range(8)] for e in range(14)], dtype=torch.float32)
    values[0] = 1.0  # all equal: the lower indices go first
    values[1] = torch.tensor([9.0, 0, 1, 2, 3, 4, 5, 6])  # `none` strongest: kept
    with torch.no_grad():
        for group in GROUPS:
            strategy.supernet.alphas[group].copy_(values)
    strategy.advance_stage()
    by_hand = [[k for k in range(8) if (3 * k + e) % 8 >= 3] for e in range(14)]
    by_hand[0], by_hand[1] = [3, 4, 5, 6, 7], [0, 4, 5, 6, 7]
    assert strategy.kept == {group: by_hand for group in GROUPS} and strategy.stage == 1
    assert len(strategy.supernet.cells) == 11 and strategy.supernet is not first
    weights = strategy.edge_weights()
    for group in GROUPS:
        assert [sorted(row.nonzero().flatten().tolist()) for row in weights[group]] == by_hand
        assert torch.allclose(weights[group].sum(-1), torch.ones(14))
    assert strategy.arch_optimizer.param_groups[0]["params"] == strategy.supernet.arch_parameters()
    assert all(alpha.abs().max() < 0.01 for alpha in strategy.supernet.alphas.values())  # new: 1e-3 * N(0, 1)
    second = -torch.arange(8.0).repeat(14, 1)  # the lower index the stronger
    with torch.no_grad():
        for group in GROUPS:
            strategy.supernet.alphas[group].copy_(second)
    strategy.advance_stage()
    assert strategy.kept["normal"] == [ops[:3] for ops in by_hand] == strategy.kept["reduce"]
    assert len(strategy.supernet.cells) == 17 and strategy.stage == 2
    assert all(len(ops) == 3 for ops in strategy.kept["normal"])


# -- skip-connect dropout -------------------------------------------------------------------------

def test_skip_dropout_rate_per_stage_and_its_decay():
    """train_search.py L152-158 at 25 epochs, the first 10 frozen: linear towards 0 over the
    frozen epochs, then the full rate decaying as exp(-0.2 * epochs since)."""
    assert skip_dropout_rate(0.4, 0, 25, 10) == pytest.approx(0.4 * 24 / 25)
    assert skip_dropout_rate(0.4, 9, 25, 10) == pytest.approx(0.4 * 15 / 25)
    assert skip_dropout_rate(0.4, 10, 25, 10) == pytest.approx(0.4)
    assert skip_dropout_rate(0.7, 15, 25, 10) == pytest.approx(0.7 * math.exp(-1.0))
    assert skip_dropout_rate(0.1, 0, 1, 0) == pytest.approx(0.1)


def test_skip_dropout_acts_on_identity_skips_in_training_only():
    """A stride-1 skip-connect's output is dropped element-wise (zeros, the rest times 1 / (1 - p))
    in training; in eval it is the input; a reducing skip (factorized reduce) and other
    operations are untouched."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 6, 6) + 10.0  # no zero of its own
    edge = MixedOp(4, 1)
    edge.skip_dropout = SkipDropout(torch.Generator().manual_seed(0))
    edge.skip_dropout.prob = 0.5
    one_hot = torch.zeros(8).index_fill_(0, torch.tensor([OPS["skip_connect"]]), 1.0)
    edge.train()
    dropped = edge(State(x), one_hot, (OPS["skip_connect"],))
    zeroed = dropped == 0
    assert 0.3 < zeroed.float().mean() < 0.7
    assert torch.allclose(dropped[~zeroed], 2 * x[~zeroed])
    edge.eval()
    assert torch.equal(edge(State(x), one_hot, (OPS["skip_connect"],)), x)
    edge.train()
    pool = torch.zeros(8).index_fill_(0, torch.tensor([OPS["avg_pool_3x3"]]), 1.0)
    with_dropout = edge(State(x), pool, (OPS["avg_pool_3x3"],))
    edge.skip_dropout = None
    assert torch.equal(with_dropout, edge(State(x), pool, (OPS["avg_pool_3x3"],)))
    reducing = MixedOp(4, 2).train()
    plain = reducing(State(x), one_hot, (OPS["skip_connect"],))
    reducing.skip_dropout = edge_dropout = SkipDropout(torch.Generator().manual_seed(0))
    edge_dropout.prob = 0.5
    assert torch.equal(reducing(State(x), one_hot, (OPS["skip_connect"],)), plain)


def test_every_edge_of_every_stage_carries_the_stages_dropout(cell_space, searching, tiny_data):
    strategy = Pdarts(context(cell_space, searching, tiny_data))
    for stage in range(3):
        edges = [m for m in strategy.supernet.modules() if isinstance(m, MixedOp)]
        assert edges and all(m.skip_dropout is strategy.dropout for m in edges)
        strategy.step()
        assert strategy.history[-1]["skip_dropout"] == pytest.approx(SKIP_DROPOUT[stage])


# -- frozen epochs ----------------------------------------------------------------------------

def test_the_architecture_is_frozen_in_each_stages_first_epochs_only(cell_space, searching, tiny_data):
    """Ten protocol epochs: stages of 5, the first 2 weights only. The alphas stay in stage 1's
    first two epochs, move in the third; stage 2 starts frozen again."""
    strategy = Pdarts(context(cell_space, with_supernet(searching, epochs=10), tiny_data))
    assert (strategy.stage_epochs, strategy.frozen_epochs, strategy.budget()) == (5, 2, 15)
    for _ in range(3):
        before = arch_snapshot(strategy)
        strategy.step()
        moved = {name for name, value in arch_snapshot(strategy).items() if not torch.equal(value, before[name])}
        frozen = strategy.history[-1]["architecture_frozen"]
        assert moved and (moved.isdisjoint(ALPHAS) if frozen else ALPHAS <= moved)
    assert [r["architecture_frozen"] for r in strategy.history] == [True, True, False]
    assert [r["val_loss"] is None for r in strategy.history] == [True, True, False]
    strategy.epochs_done = 5
    strategy.advance_stage()
    before = arch_snapshot(strategy)
    strategy.step()
    assert strategy.history[-1]["architecture_frozen"] and all(
        torch.equal(value, before[name]) for name, value in arch_snapshot(strategy).items() if name in ALPHAS)
    assert strategy.history[-1]["skip_dropout"] == pytest.approx(0.4 * 4 / 5)


# -- derivation ---------------------------------------------------------------------------------

def test_the_skip_limit_removes_the_weakest_derived_skips_as_the_official_rule():
    """Four skips derived in the normal cell (edges (2,0) 0.6, (3,0) 0.5, (4,0) 0.9, (5,0) 0.4):
    the weakest, (5,0), then (3,0) lose their skip weight, each edge re-derived with its next
    operation and its node's edges re-ranked ((3,0)'s 0.05 falls below (3,2)'s 0.1); (2,0) and
    (4,0) keep theirs. The reduction cell's skips are not limited."""
    rows = {(2, 0): {"skip_connect": 0.6, "sep_conv_3x3": 0.3}, (2, 1): {"sep_conv_3x3": 0.7},
            (3, 0): {"skip_connect": 0.5, "sep_conv_5x5": 0.05}, (3, 1): {"sep_conv_3x3": 0.8},
            (3, 2): {"dil_conv_3x3": 0.1}, (4, 0): {"skip_connect": 0.9, "dil_conv_5x5": 0.05},
            (4, 1): {"sep_conv_3x3": 0.6}, (4, 2): {"max_pool_3x3": 0.2}, (4, 3): {"avg_pool_3x3": 0.1},
            (5, 0): {"skip_connect": 0.4, "sep_conv_3x3": 0.35}, (5, 1): {"dil_conv_3x3": 0.7},
            (5, 2): {"sep_conv_5x5": 0.3}, (5, 3): {"max_pool_3x3": 0.1}, (5, 4): {"avg_pool_3x3": 0.05}}
    normal = torch.zeros(14, 8)
    for edge, ops in rows.items():
        for name, weight in ops.items():
            normal[EDGES.index(edge), OPS[name]] = weight
    reduce = torch.full((14, 8), 0.1).index_fill_(1, torch.tensor([OPS["skip_connect"]]), 0.5)
    genotype = derive_with_skip_limit({"normal": normal, "reduce": reduce})
    assert genotype.normal == (("sep_conv_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1), ("dil_conv_3x3", 2),
                               ("skip_connect", 0), ("sep_conv_3x3", 1), ("dil_conv_3x3", 1), ("sep_conv_3x3", 0))
    assert [op for op, _ in genotype.reduce] == ["skip_connect"] * 8
    assert sum(op == "skip_connect" for op, _ in derive_with_skip_limit({"normal": normal, "reduce": reduce},
                                                                        limit=0).normal) == 0


# -- resume and the command line ----------------------------------------------------------------

@pytest.mark.slow
def test_a_search_stopped_in_any_stage_resumes_exactly(cell_space, searching, tiny_data):
    """Stopped after stage 1 and after stage 2 (each a new, deeper supernet), restored from the
    stored checkpoint: the same architecture and the same final tensors."""
    checkpoints = []
    whole = Pdarts(context(cell_space, searching, tiny_data, on_checkpoint=lambda c: checkpoints.append(stored(c))))
    result = whole.run()
    expected = whole.tensor_state()["supernet"]
    for stop in (0, 1):
        resumed = Pdarts(context(cell_space, searching, tiny_data))
        resumed.restore(checkpoints[stop])
        assert resumed.stage == stop + 1 and len(resumed.supernet.cells) == (4, 6)[stop]
        assert resumed.run().arch == result.arch
        final = resumed.tensor_state()["supernet"]
        assert final.keys() == expected.keys() and all(torch.equal(final[k], expected[k]) for k in final)


@pytest.mark.slow
def test_smoke_run_searches_three_stages_and_trains_the_cell(tmp_path, data_path):
    store = tmp_path / "results.sqlite"
    result = run_cli(*smoke_args(store, data_path, "--method", "pdarts", "--seeds", "0"))
    assert result.code == 0, result.err
    (row,) = store_rows(store)
    assert row["status"] == "finished" and row["strategy_class"] == "GO" and 0 <= row["test_acc"] <= 1
    epochs = json.loads(row["details_json"])["epochs"]
    assert [(e["stage"], e["cells"]) for e in epochs] == [(1, 2), (2, 4), (3, 6)]
    assert [max(sum(w > 0 for w in r) for r in e["weights"]["normal"]) for e in epochs] == [8, 5, 3]
    genotype = json.loads(row["genotype_json"])
    assert genotype == epochs[-1]["genotype"]
    assert sum(op == "skip_connect" for op, _ in genotype["normal"]) <= 2
