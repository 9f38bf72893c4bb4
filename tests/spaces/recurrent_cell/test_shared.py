"""ENAS' shared recurrent weights: a path computes the standalone highway cell on its slices
of the weights (both layouts, inside the language model too), only the path's slices train,
the per-node batch norm evaluates as a column scaling by its moving statistics, and a cell
of another size is refused."""
from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from nasbench.spaces import get_space
from nasbench.spaces.language_model_network import LanguageModel
from nasbench.spaces.recurrent_cell.arch import RecurrentCellArch
from nasbench.spaces.recurrent_cell.cell import HighwayCell
from nasbench.spaces.recurrent_cell.shared import (
    SharedHighwayCell,
    shared_language_model,
)

STEPS, INPUT, HIDDEN, BATCH, TIME = 4, 5, 6, 3, 4


def sample_cells(smoke, count: int, seed: int = 0) -> list[RecurrentCellArch]:
    layout = dataclasses.replace(get_space("enas-rnn", smoke).settings, cell_steps=STEPS, cell_average="loose-ends")
    space = type(get_space("enas-rnn", smoke))(layout)
    rng = random.Random(seed)
    return [space.sample(rng) for _ in range(count)]


def standalone(shared: SharedHighwayCell, arch: RecurrentCellArch, scales: list[torch.Tensor] | None = None
               ) -> HighwayCell:
    """A HighwayCell of ``arch`` holding copies of the path's slices (columns scaled per node
    by ``scales``, if given)."""
    cell = HighwayCell(arch, shared.input_size, shared.hidden_size)
    w0, ws = shared.path_weights(arch)
    scales = scales or [torch.ones(2 * shared.hidden_size)] * (len(ws) + 1)
    with torch.no_grad():
        cell.w0.copy_(w0 * scales[0])
        for target, w, scale in zip(cell.ws, ws, scales[1:]):
            target.copy_(w * scale)
    return cell


def unroll(cell, inputs: torch.Tensor, h_mask: torch.Tensor | None) -> torch.Tensor:
    projected = cell.project(inputs)
    state = (torch.zeros(inputs.shape[1], cell.hidden_size),)
    outputs = []
    for t in range(inputs.shape[0]):
        state = cell.step(projected[t], state, h_mask)
        outputs.append(state[0])
    return torch.stack(outputs)


@pytest.mark.parametrize("per_activation", [False, True])
def test_a_path_computes_the_standalone_cell_on_its_slices(smoke, per_activation):
    torch.manual_seed(0)
    shared = SharedHighwayCell(INPUT, HIDDEN, STEPS, per_activation=per_activation, batch_norm=False)
    inputs, h_mask = torch.randn(TIME, BATCH, INPUT), torch.rand(BATCH, HIDDEN) * 2
    outputs = []
    for arch in sample_cells(smoke, 4):
        shared.use(arch)
        expected = unroll(standalone(shared, arch), inputs, h_mask)
        torch.testing.assert_close(unroll(shared, inputs, h_mask), expected, rtol=0, atol=0)
        outputs.append(expected)
    assert not torch.allclose(outputs[0], outputs[1])  # the cells differ, so the comparison has teeth


def test_inside_the_language_model_the_path_is_the_standalone_model(smoke):
    """Embedding, decoder and the dropout masks (drawn in the same order) shared too."""
    stage = dataclasses.replace(get_space("enas-rnn", smoke).settings.stage("search"), hidden_size=HIDDEN)
    torch.manual_seed(0)
    model = shared_language_model(stage, STEPS, vocab_size=50, batch_norm=False)
    arch = sample_cells(smoke, 1)[0]
    model.cell.use(arch)
    twin = LanguageModel(standalone(model.cell, arch), 50, stage.dropouts)
    twin.encoder.weight.data.copy_(model.encoder.weight)
    tokens = torch.randint(0, 50, (TIME, BATCH))
    for training in (False, True):
        model.train(training)
        twin.train(training)
        torch.manual_seed(1)
        ours = model(tokens, model.init_state(BATCH))[0]
        torch.manual_seed(1)
        torch.testing.assert_close(ours, twin(tokens, twin.init_state(BATCH))[0])


@pytest.mark.parametrize("per_activation", [False, True])
def test_only_the_paths_slices_train(smoke, per_activation):
    """Node i reading node j trains W_{i,j} (of its activation's bank in the official layout);
    two cells that differ only in a node's activation train the same slice in the paper's
    layout and different ones in the official code's."""
    torch.manual_seed(0)
    shared = SharedHighwayCell(INPUT, HIDDEN, STEPS, per_activation=per_activation)
    arch = sample_cells(smoke, 1)[0]
    activation, source = arch.nodes[-1]
    other = next(a for a in ("tanh", "relu", "sigmoid", "identity") if a != activation)
    sibling = dataclasses.replace(arch, nodes=arch.nodes[:-1] + ((other, source),))
    touched = []
    for cell in (arch, sibling):
        shared.zero_grad(set_to_none=True)
        shared.use(cell)
        unroll(shared, torch.randn(TIME, BATCH, INPUT), None).square().sum().backward()
        used = {(i, s, shared.bank(a)) for i, (a, s) in enumerate(cell.nodes)}
        for i, edge in enumerate(shared.edges):
            for s in range(i + 1):
                for bank in range(edge.shape[1]):
                    assert (edge.grad[s, bank].abs().sum() > 0) == ((i, s, bank) in used)
        assert [bool(shared.node0.grad[b].abs().sum() > 0) for b in range(shared.node0.shape[0])] == [
            b == shared.bank(cell.first) for b in range(shared.node0.shape[0])]
        touched.append((STEPS - 1, source, shared.bank(cell.nodes[-1][0])))
    assert (touched[0] == touched[1]) == (not per_activation)


def test_batch_norm_evaluates_as_columns_scaled_by_its_moving_statistics(smoke):
    """In evaluation a node's norm is (v - mean) / sqrt(var + 1) * scale + offset with the
    moving statistics (the official epsilon 1): at zero mean and offset, the standalone cell
    with each node's columns scaled by scale / sqrt(var + 1). Training moves the statistics
    (decay 0.999), evaluation leaves them."""
    torch.manual_seed(0)
    shared = SharedHighwayCell(INPUT, HIDDEN, STEPS)
    arch = sample_cells(smoke, 1)[0]
    shared.use(arch)
    inputs = torch.randn(TIME, BATCH, INPUT)
    shared.train()
    unroll(shared, inputs, None)
    norms = list(shared.node_norms)
    assert all(not torch.equal(n.running_var, torch.ones_like(n.running_var)) for n in norms)
    with torch.no_grad():
        for norm in norms:
            norm.running_mean.zero_()
            norm.bias.zero_()
            norm.running_var.uniform_(0.5, 3)
            norm.weight.uniform_(0.5, 2)
    before = [n.running_var.clone() for n in norms]
    shared.eval()
    scales = [n.weight.detach() / (n.running_var + 1).sqrt() for n in norms]
    torch.testing.assert_close(unroll(shared, inputs, None), unroll(standalone(shared, arch, scales), inputs, None))
    assert all(torch.equal(n.running_var, b) for n, b in zip(norms, before))


def test_a_cell_of_another_size_or_none_is_refused(smoke):
    shared = SharedHighwayCell(INPUT, HIDDEN, STEPS + 1)
    with pytest.raises(RuntimeError, match="use"):
        shared.project(torch.zeros(TIME, BATCH, INPUT))
    with pytest.raises(ValueError, match=f"cells of {STEPS + 1} nodes after node 0, not {STEPS}"):
        shared.use(sample_cells(smoke, 1)[0])
