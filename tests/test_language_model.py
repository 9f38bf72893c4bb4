"""Training and evaluating recurrent-cell language models: evaluation is exp of the mean NLL,
windows carry the state, training lowers the validation perplexity, the window lengths
follow AWD-LSTM's rule, ASGD's averaged weights are swapped in and out, and a run is
deterministic given its seed."""
from __future__ import annotations

import copy
import dataclasses
import math
import random

import pytest
import torch

from nasbench.corpus import batchify, load_corpus
from nasbench.language_model import (
    MAX_WINDOW_DELTA,
    MIN_WINDOW,
    _averaged_weights,
    evaluate_perplexity,
    train_language_model,
    window_length,
)
from nasbench.spaces import get_space
from nasbench.training import TrainingDiverged


@pytest.fixture(scope="module")
def stand_in(ptb_path):
    return load_corpus(str(ptb_path), stand_in=True)


@pytest.fixture(scope="module")
def space(smoke):
    return get_space("enas-rnn", smoke)


@pytest.fixture(scope="module")
def stage(space):
    """A tiny model without dropout, two short epochs."""
    stage = space.settings.stage("final")
    return dataclasses.replace(stage, hidden_size=16, batch_size=8, epochs=2, bptt=20, eval_batch_size=4,
                               dropouts=dataclasses.replace(stage.dropouts, output=0, hidden=0, x=0, input=0,
                                                            embedding=0))


def _model(space, stage, vocab_size: int, seed: int = 0):
    torch.manual_seed(seed)
    return space.build_language_model(space.zoo()["DARTS_V2"].arch, stage, vocab_size)


def test_evaluation_is_exp_of_the_mean_nll_of_every_predicted_word(space, stage):
    tokens = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5])
    model = _model(space, stage, 10).eval()
    source = batchify(tokens, 2)  # 5 rows of 2 columns: 4 predicted words per column
    with torch.no_grad():
        log_probs = model(source[:-1], model.init_state(2))[0]  # one window over everything
    nll = -log_probs.gather(2, source[1:].unsqueeze(2)).mean().item()
    for bptt in (1, 2, 4):  # windows carry the state: any length gives the same
        assert evaluate_perplexity(model, tokens, 2, bptt) == pytest.approx(math.exp(nll), rel=1e-5)
    assert nll == pytest.approx(math.log(10), abs=0.05)  # an untrained model is nearly uniform


def test_a_perplexity_past_the_float_range_is_a_divergence_not_an_overflow(space, stage):
    """A diverged model can put its mass far from every target: exp of its mean NLL
    overflows, which must stop the training as a divergence that says why."""
    tokens = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5])
    model = _model(space, stage, 10)
    with torch.no_grad():
        model.decoder.bias[0] = 1e4  # word 0 is never a target: every NLL is about 1e4 nats
    with pytest.raises(TrainingDiverged, match=r"perplexity is not finite: mean NLL 1(\.\d+)?e\+04 nats per word"):
        evaluate_perplexity(model, tokens, 2, 2)
    with torch.no_grad():
        model.decoder.bias[0] = 700.0  # just inside the float range: a (huge) perplexity
    assert math.isfinite(evaluate_perplexity(model, tokens, 2, 2))


def test_training_lowers_the_validation_perplexity(space, stage, stand_in):
    train, valid = stand_in.train[:6000], stand_in.valid[:2000]
    model = _model(space, stage, stand_in.vocab_size)
    untrained = evaluate_perplexity(model, valid, stage.eval_batch_size, stage.bptt)
    records = train_language_model(model, train, valid, stage, seed=0).records
    assert [r.epoch for r in records] == [1, 2] and {r.optimizer for r in records} == {"sgd"}
    assert records[-1].valid_perplexity < 0.5 * untrained
    assert math.exp(records[-1].train_nll) < math.exp(records[0].train_nll)
    best = min(r.valid_perplexity for r in records)  # the model keeps its best epoch's weights
    assert evaluate_perplexity(model, valid, stage.eval_batch_size, stage.bptt) == pytest.approx(best, rel=1e-6)


def test_a_run_is_deterministic_given_its_seed(space, stage, stand_in):
    train, valid = stand_in.train[:1500], stand_in.valid[:800]
    noisy = dataclasses.replace(stage, epochs=1, dropouts=space.settings.stage("final").dropouts)

    def run(seed):
        model = _model(space, noisy, stand_in.vocab_size)
        records = train_language_model(model, train, valid, noisy, seed=seed).records
        return [(r.train_nll, r.valid_perplexity) for r in records], model.encoder.weight.detach().clone()

    (first, weights), (again, same) = run(0), run(0)
    assert first == again and torch.equal(weights, same)
    assert run(1)[0] != first


def test_window_lengths_follow_awd_lstm():
    rng = random.Random(0)
    lengths = [window_length(35, rng) for _ in range(4000)]
    assert min(lengths) >= MIN_WINDOW and max(lengths) <= 35 + MAX_WINDOW_DELTA
    short = sum(n < 25 for n in lengths) / len(lengths)  # 5 % drawn around bptt / 2, 2 % of the rest 2 sigma short
    mean = 0.95 * 35 + 0.05 * 17.5 - 0.5  # int() truncates half a word on average
    assert 0.04 < short < 0.1 and abs(sum(lengths) / len(lengths) - mean) < 0.3


def test_asgd_averages_are_evaluated_and_the_weights_restored(space, stage):
    model = _model(space, stage, 10)
    optimizer = torch.optim.ASGD(model.parameters(), lr=1.0, t0=0, lambd=0.0)
    before = [p.detach().clone() for p in model.parameters()]
    for _ in range(3):  # torch's ASGD copies the weights until its second step, then averages
        optimizer.zero_grad()
        model(torch.tensor([[1, 2], [3, 4]]), model.init_state(2))[0].sum().backward()
        optimizer.step()
    after = [p.detach().clone() for p in model.parameters()]
    with _averaged_weights(model, optimizer):
        for p, b, a in zip(model.parameters(), before, after):
            if not torch.equal(a, b):  # moved: the average of the last two steps' weights
                assert torch.allclose(p, optimizer.state[p]["ax"]) and not torch.equal(p, a)
    assert all(torch.equal(p, a) for p, a in zip(model.parameters(), after))


def test_sgd_switches_to_asgd_when_validation_stops_improving(space, stage, stand_in, monkeypatch):
    """DARTS train.py:302: switch once the loss is worse than the best of all but the last
    ``asgd_nonmono`` epochs; here the fourth epoch's 96 is worse than epoch 2's 90."""
    import nasbench.language_model as language_model

    scripted = iter([100.0, 90.0, 95.0, 96.0, 97.0])
    monkeypatch.setattr(language_model, "evaluate_perplexity", lambda *args: next(scripted))
    short = dataclasses.replace(stage, epochs=5, asgd_nonmono=1)
    records = train_language_model(_model(space, short, stand_in.vocab_size), stand_in.train[:400],
                                   stand_in.valid[:200], short, seed=0).records
    assert [r.optimizer for r in records] == ["sgd"] * 4 + ["asgd"]
    never = dataclasses.replace(short, asgd_nonmono=0)
    scripted = iter([100.0, 90.0, 95.0, 96.0, 97.0])
    records = train_language_model(_model(space, never, stand_in.vocab_size), stand_in.train[:400],
                                   stand_in.valid[:200], never, seed=0).records
    assert {r.optimizer for r in records} == {"sgd"}


class _KeptEpochs:
    """An epoch checkpoint in memory that stops the training after ``stop_after`` saves."""

    def __init__(self, stop_after: int | None = None):
        self.state, self.stop_after, self.saves = None, stop_after, 0

    def load(self):
        return self.state

    def save(self, state):
        self.state, self.saves = copy.deepcopy(state), self.saves + 1
        if self.saves == self.stop_after:
            raise KeyboardInterrupt


def test_a_stopped_training_resumes_exactly_through_the_asgd_switch(space, stage, stand_in):
    """Stopped after epoch 5, its first under ASGD (validation worsened in epoch 4), and
    resumed from its checkpoint, it ends with the weights and records of one uninterrupted
    training: the averaged weights and the switch's history survive the stop."""
    noisy = dataclasses.replace(stage, epochs=6, asgd_nonmono=1, lr=40.0, dropouts=space.settings.stage("final").dropouts)
    train, valid = stand_in.train[:1500], stand_in.valid[:600]
    straight = _model(space, noisy, stand_in.vocab_size)
    whole = train_language_model(straight, train, valid, noisy, seed=3)
    kept = _KeptEpochs(stop_after=5)
    with pytest.raises(KeyboardInterrupt):
        train_language_model(_model(space, noisy, stand_in.vocab_size), train, valid, noisy, seed=3, checkpoint=kept)
    kept.stop_after = None
    resumed_model = _model(space, noisy, stand_in.vocab_size)
    resumed = train_language_model(resumed_model, train, valid, noisy, seed=3, checkpoint=kept)
    assert resumed.resumed_epoch == 5 and kept.saves == 6
    assert [r.optimizer for r in whole.records] == ["sgd"] * 4 + ["asgd"] * 2
    assert [(r.train_nll, r.valid_perplexity, r.optimizer) for r in resumed.records] == \
        [(r.train_nll, r.valid_perplexity, r.optimizer) for r in whole.records]
    assert resumed.best_perplexity == whole.best_perplexity
    assert all(torch.equal(a, b) for a, b in zip(resumed_model.state_dict().values(), straight.state_dict().values()))
