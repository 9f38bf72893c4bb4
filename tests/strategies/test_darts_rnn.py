"""DARTS' recurrent search, first and second order: the registered methods run it on language
models, each update moves only its own parameters, the weight step lowers the training
loss, the second-order gradient is the official formula (and, unclipped, the derivative
through the unrolled step), a stopped search resumes exactly, and the result is a cell."""
from __future__ import annotations

import dataclasses
import random

import pytest
import torch
import torch.nn.functional as F
from helpers import snapshot, stored

from nasbench.corpus import window
from nasbench.errors import NasbenchError
from nasbench.spaces import get_space
from nasbench.spaces.recurrent_cell.arch import RecurrentCellArch
from nasbench.spaces.recurrent_cell.supernet import OPERATIONS
from nasbench.strategies import get_strategy
from nasbench.strategies.context import SearchContext
from nasbench.strategies.darts import Darts, DartsSecondOrder
from nasbench.strategies.darts_rnn import (
    RecurrentDarts,
    RecurrentDartsSecondOrder,
    Window,
    search_window_length,
)
from nasbench.types import Checkpoint

CLASSES = [RecurrentDarts, RecurrentDartsSecondOrder]


@pytest.fixture(scope="module")
def corpus(ptb_corpus):
    """A few thousand words: two or three training windows of 64 columns an epoch."""
    return dataclasses.replace(ptb_corpus, train=ptb_corpus.train[:3000], valid=ptb_corpus.valid[:1000])


def make_space(smoke, **changes):
    space = get_space("enas-rnn", smoke)
    return type(space)(dataclasses.replace(space.settings, **changes))


def make(cls, smoke, corpus, seed=0, **changes):
    space = make_space(smoke, **changes)
    context = SearchContext(space=space, protocol=smoke, seed=seed, data=corpus, device=torch.device("cpu"),
                            show_progress=False)
    return cls(context)


def first_windows(strategy, length=12, dtype=torch.float32):
    """The first training and search windows, from zero states of ``dtype``."""
    state = tuple(s.to(dtype) for s in strategy.supernet.init_state(strategy.stage.batch_size))
    return (Window(*window(strategy.train_source, 0, length), state),
            Window(*window(strategy.search_source, 0, length), state))


def test_the_registered_darts_methods_search_recurrent_cells_with_these():
    assert get_strategy("darts").for_task("language-model") is RecurrentDarts
    assert get_strategy("darts-2nd").for_task("language-model") is RecurrentDartsSecondOrder
    assert get_strategy("darts").for_task("image") is Darts and "enas-rnn" in Darts.spaces
    for image, recurrent in ((Darts, RecurrentDarts), (DartsSecondOrder, RecurrentDartsSecondOrder)):
        assert (recurrent.name, recurrent.strategy_class, recurrent.summary) == (
            image.name, image.strategy_class, image.summary)


def test_search_windows_are_bptt_or_half_without_noise():
    rng = random.Random(0)
    lengths = [search_window_length(35, rng) for _ in range(2000)]
    assert set(lengths) == {35, 17} and 0.02 < lengths.count(17) / len(lengths) < 0.08


@pytest.mark.parametrize("cls", CLASSES)
def test_each_update_moves_only_its_own_parameters(cls, smoke, corpus):
    strategy = make(cls, smoke, corpus)
    strategy.supernet.train()
    train, val = first_windows(strategy)
    before = snapshot(strategy.supernet)
    strategy.architecture_step(train, val, lr=20.0)
    after_arch = snapshot(strategy.supernet)
    assert {n for n in before if not torch.equal(before[n], after_arch[n])} == {"cell.alpha"}
    strategy.weight_step(train, lr=20.0)
    after = snapshot(strategy.supernet)
    changed = {n for n in before if not torch.equal(after_arch[n], after[n])}
    assert "cell.alpha" not in changed and {"encoder.weight", "cell.w0", "cell.ws.0"} <= changed


def test_weight_steps_lower_the_training_loss(smoke, corpus):
    strategy = make(RecurrentDarts, smoke, corpus)
    stage = strategy.stage
    strategy.stage = dataclasses.replace(stage, dropouts=dataclasses.replace(stage.dropouts, output=0, hidden=0,
                                                                             x=0, input=0))
    strategy.supernet.dropouts = strategy.stage.dropouts
    strategy.supernet.train()
    train, _ = first_windows(strategy, length=20)
    losses = [strategy.weight_step(train, lr=20.0)[0].item() for _ in range(6)]
    assert all(b < a for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0] - 0.5, losses


def test_first_order_gradient_is_the_validation_nll_gradient(smoke, corpus):
    strategy = make(RecurrentDarts, smoke, corpus)
    strategy.supernet.train()
    train, val = first_windows(strategy)
    torch.manual_seed(1)
    loss, grad, _ = strategy.architecture_gradient(train, val, lr=20.0)
    torch.manual_seed(1)
    log_probs = strategy.supernet(val.inputs, val.state)[0]
    expected_loss = F.nll_loss(log_probs.flatten(0, 1), val.targets.flatten())
    (expected,) = torch.autograd.grad(expected_loss, [strategy.supernet.cell.alpha])
    assert loss.item() == pytest.approx(expected_loss.item()) and torch.allclose(grad, expected)


def nll(strategy, w: Window, params=None):
    args = (w.inputs, w.state)
    out = strategy.supernet(*args) if params is None else torch.func.functional_call(strategy.supernet, params, args)
    return F.nll_loss(out[0].flatten(0, 1), w.targets.flatten())


def clip_coefficient(tensors, clip):
    norm = torch.linalg.vector_norm(torch.cat([t.flatten() for t in tensors])).item()
    return min(1.0, clip / (norm + 1e-6)) if clip else 1.0


def second_order_case(smoke, corpus, grad_clip):
    strategy = make(RecurrentDartsSecondOrder, smoke, corpus, grad_clip=grad_clip)
    strategy.supernet.double().train()
    with torch.no_grad():
        strategy.supernet.cell.alpha.normal_(0, 1, generator=torch.Generator().manual_seed(0))
        # relu's weight exactly 0: a finite difference across relu's kinks differs from the
        # Hessian autograd gives (relu'' = 0) by several % whatever the radius
        strategy.supernet.cell.alpha[:, OPERATIONS.index("relu")] = -torch.inf
    strategy.hvp_radius = 1e-4  # the official 1e-2 leaves an O(radius^2) error of ~1% in this tiny model
    return (strategy, *first_windows(strategy, dtype=torch.float64))


def test_second_order_gradient_is_the_official_formula(smoke, corpus):
    """d alpha = grad_alpha L_val(w') - xi * coef * H v, v the clipped grad_w' L_val, H v by
    double backpropagation; the training forwards under one draw of dropout masks (on here)."""
    strategy, train, val = second_order_case(smoke, corpus, grad_clip=0.25)
    model, alpha, lr, wd = strategy.supernet, strategy.supernet.cell.alpha, 20.0, strategy.stage.weight_decay
    named = model.named_weight_parameters()
    torch.manual_seed(7)
    loss, grad, _ = strategy.architecture_gradient(train, val, lr)

    torch.manual_seed(7)
    g = torch.autograd.grad(nll(strategy, train), list(named.values()), create_graph=True)
    coef = clip_coefficient(g, 0.25)
    assert coef < 1  # the training gradient is clipped
    unrolled = {n: (w - lr * (coef * gi + wd * w)).detach().requires_grad_() for (n, w), gi in zip(named.items(), g)}
    val_loss = nll(strategy, val, {**unrolled, **{n: b.clone() for n, b in model.named_buffers()}})
    *dw, dalpha = torch.autograd.grad(val_loss, [*unrolled.values(), alpha])
    assert clip_coefficient(dw, 0.25) < 1  # and so is the validation gradient
    v = [d * clip_coefficient(dw, 0.25) for d in dw]
    (hv,) = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, v)), [alpha])
    expected = dalpha - lr * coef * hv
    assert loss.item() == pytest.approx(val_loss.item(), rel=1e-12)
    assert torch.allclose(grad, expected, rtol=1e-3, atol=1e-4 * expected.abs().max().item())
    assert (grad - dalpha).norm() > 0.01 * dalpha.norm()  # not the first-order gradient


def test_unclipped_second_order_gradient_is_the_derivative_through_the_unrolled_step(smoke, corpus):
    strategy, train, val = second_order_case(smoke, corpus, grad_clip=0.0)
    model, alpha, lr, wd = strategy.supernet, strategy.supernet.cell.alpha, 20.0, strategy.stage.weight_decay
    named = model.named_weight_parameters()
    torch.manual_seed(3)
    _, grad, _ = strategy.architecture_gradient(train, val, lr)
    torch.manual_seed(3)
    g = torch.autograd.grad(nll(strategy, train), list(named.values()), create_graph=True)
    unrolled = {n: w.detach() - lr * (gi + wd * w.detach()) for (n, w), gi in zip(named.items(), g)}
    val_loss = nll(strategy, val, {**unrolled, **{n: b.clone() for n, b in model.named_buffers()}})
    (exact,) = torch.autograd.grad(val_loss, [alpha])  # through w'(alpha) and alpha itself
    (direct,) = torch.autograd.grad(nll(strategy, val, {n: w.detach() for n, w in unrolled.items()}), [alpha])
    assert torch.allclose(grad, exact, rtol=1e-3, atol=1e-4 * exact.abs().max().item())
    assert not torch.allclose(grad, direct, rtol=1e-2)


@pytest.fixture(scope="module", params=CLASSES, ids=["first", "second"])
def resumed(request, smoke, corpus):
    """Two epochs straight, and one epoch, a stored checkpoint, a fresh strategy, one more."""
    straight = make(request.param, smoke, corpus, search_epochs=2)
    result = straight.run()
    first = make(request.param, smoke, corpus, search_epochs=2)
    first.step()
    checkpoint = stored(first.checkpoint())
    torch.rand(100)  # whatever else the process draws in between
    fresh = make(request.param, smoke, corpus, search_epochs=2)
    fresh.restore(checkpoint)
    fresh.run()
    return straight, fresh, result


def test_a_resumed_search_is_the_uninterrupted_one(resumed):
    straight, fresh, result = resumed
    assert fresh.epochs_done == 2 and fresh.history == straight.history
    a, b = snapshot(straight.supernet), snapshot(fresh.supernet)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert torch.equal(straight.supernet.cell.bn.running_var, fresh.supernet.cell.bn.running_var)
    assert fresh.result().arch == result.arch


def test_the_result_is_the_derived_cell_with_its_history(resumed, smoke):
    straight, _, result = resumed
    arch = result.arch
    assert isinstance(arch, RecurrentCellArch) and arch == straight.supernet.genotype()
    assert len(arch.nodes) == 3 and arch.first == "tanh" and arch.average == "intermediate"
    space = make_space(smoke)
    assert space.from_dict(space.to_dict(arch)) == arch
    history = result.details["history"]
    assert [h["epoch"] for h in history] == [1, 2] and history[-1]["genotype"] == arch.to_dict()
    assert result.val_acc is None and result.val_perplexity == history[-1]["valid_perplexity"] > 1
    weights = result.details["weights"]["recurrent"]
    assert len(weights) == 6 and all(abs(sum(row) - 1) < 1e-5 for row in weights)
    assert history[0]["weights"] != history[1]["weights"]  # alpha moved


def test_resuming_without_tensors_is_refused(smoke, corpus):
    strategy = make(RecurrentDarts, smoke, corpus)
    with pytest.raises(NasbenchError, match="no tensors"):
        strategy.restore(Checkpoint(strategy.checkpoint().state, {}))
