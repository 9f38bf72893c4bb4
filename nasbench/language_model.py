"""Training and evaluating a recurrent-cell language model, as DARTS' rnn/train.py does (from
AWD-LSTM, Merity et al., ICLR 2018): truncated BPTT over windows of random length, the
learning rate scaled with the window, gradient clipping, weight decay, the temporal
activation ("slowness") term, the hidden state carried across windows without its history,
and, in final training, SGD switched to averaged SGD once validation stops improving.

Everything stays on the model's device; the only Python loop inside a window is the RNN's
own over time steps (:class:`nasbench.spaces.language_model.LanguageModel`).
"""
from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nasbench.corpus import batchify, window
from nasbench.spaces.language_model import LanguageModel, LanguageModelStage

LONG_WINDOW_PROB = 0.95
"""A window's mean length is bptt with this probability, else bptt / 2 (DARTS train.py:169)."""
WINDOW_STD = 5
"""Standard deviation of a window's length (train.py:171)."""
MIN_WINDOW = 5
"""Shortest window (train.py:171)."""
MAX_WINDOW_DELTA = 20
"""Longest window: bptt + 20 (train.py:72, 173)."""


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_nll: float
    """Mean negative log-likelihood per training word, with dropout (nats)."""
    valid_perplexity: float
    """exp(mean NLL per validation word), without dropout; under ASGD with the averaged weights."""
    optimizer: str
    """``sgd`` or ``asgd`` (the optimiser the epoch trained with)."""
    seconds: float


def evaluate_perplexity(model: LanguageModel, tokens: torch.Tensor, batch_size: int, bptt: int) -> float:
    """exp of the mean NLL over every predicted word of ``tokens`` laid out in ``batch_size``
    columns, read in ``bptt`` windows with the state carried (DARTS train.py:140-156, which
    divides by a slightly different count: rows, not predicted words)."""
    source = batchify(tokens.to(model.encoder.weight.device), batch_size)
    model.eval()
    state = model.init_state(batch_size)
    total = torch.zeros((), dtype=torch.float64, device=source.device)
    with torch.no_grad():
        for start in range(0, source.shape[0] - 1, bptt):
            inputs, targets = window(source, start, bptt)
            log_probs, state, _ = model(inputs, state)
            total += F.nll_loss(log_probs.flatten(0, 1), targets.flatten(), reduction="sum")
    return math.exp(total.item() / ((source.shape[0] - 1) * batch_size))


def window_length(bptt: int, rng: random.Random) -> int:
    """AWD-LSTM's random window: ~N(bptt, 5), or ~N(bptt/2, 5) with probability 0.05,
    clipped to [5, bptt + 20]."""
    mean = bptt if rng.random() < LONG_WINDOW_PROB else bptt / 2
    return min(max(MIN_WINDOW, int(rng.gauss(mean, WINDOW_STD))), bptt + MAX_WINDOW_DELTA)


def train_epoch(model: LanguageModel, optimizer: torch.optim.Optimizer, source: torch.Tensor,
                stage: LanguageModelStage, rng: random.Random) -> float:
    """One pass over ``source`` (:func:`batchify`'s columns); the mean training NLL per word."""
    model.train()
    state = model.init_state(source.shape[1])
    total = torch.zeros((), dtype=torch.float64, device=source.device)
    words, start = 0, 0
    group = optimizer.param_groups[0]
    while start < source.shape[0] - 2:
        length = window_length(stage.bptt, rng)
        inputs, targets = window(source, start, length)
        state = tuple(s.detach() for s in state)
        log_probs, state, raw = model(inputs, state)
        nll = F.nll_loss(log_probs.flatten(0, 1), targets.flatten())
        loss = nll + stage.slowness * (raw[1:] - raw[:-1]).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if stage.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), stage.grad_clip)
        lr = group["lr"]
        group["lr"] = lr * length / stage.bptt  # longer windows take larger steps (train.py:175-176, 214)
        optimizer.step()
        group["lr"] = lr
        total += nll.detach() * targets.numel()
        words += targets.numel()
        start += length
    return total.item() / words


def train_language_model(model: LanguageModel, train_tokens: torch.Tensor, valid_tokens: torch.Tensor,
                         stage: LanguageModelStage, seed: int) -> list[EpochRecord]:
    """``stage.epochs`` epochs of SGD (switched to ASGD as ``stage.asgd_nonmono`` says), each
    followed by the validation perplexity. The model ends with the weights of its best
    validation epoch (the averaged ones under ASGD), which DARTS keeps and tests
    (train.py:268-305, 313-318). Deterministic on a CPU given ``seed``."""
    torch.manual_seed(seed)  # the dropout masks draw from the global generator
    rng = random.Random(seed)
    device = model.encoder.weight.device
    source = batchify(train_tokens.to(device), stage.batch_size)
    optimizer: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=stage.lr,
                                                       weight_decay=stage.weight_decay)
    records: list[EpochRecord] = []
    losses: list[float] = []  # validation NLL per SGD epoch: the switch's history
    best, best_state = math.inf, None
    for epoch in range(1, stage.epochs + 1):
        began = time.perf_counter()
        averaged = isinstance(optimizer, torch.optim.ASGD)
        train_nll = train_epoch(model, optimizer, source, stage, rng)
        with _averaged_weights(model, optimizer):
            perplexity = evaluate_perplexity(model, valid_tokens, stage.eval_batch_size, stage.bptt)
            if perplexity < best:
                best, best_state = perplexity, copy.deepcopy(model.state_dict())
        records.append(EpochRecord(epoch, train_nll, perplexity, "asgd" if averaged else "sgd",
                                   time.perf_counter() - began))
        if not averaged and stage.asgd_nonmono:
            loss = math.log(perplexity)
            if len(losses) > stage.asgd_nonmono and loss > min(losses[:-stage.asgd_nonmono]):
                optimizer = torch.optim.ASGD(model.parameters(), lr=stage.lr, t0=0, lambd=0.0,
                                             weight_decay=stage.weight_decay)
            losses.append(loss)
    model.load_state_dict(best_state)
    return records


class _averaged_weights:
    """Within the block, ASGD's averaged weights in place of the model's (train.py:268-287)."""

    def __init__(self, model: LanguageModel, optimizer: torch.optim.Optimizer):
        self.params = [p for p in model.parameters() if "ax" in optimizer.state.get(p, {})]
        self.optimizer, self.saved = optimizer, []

    def __enter__(self) -> None:
        self.saved = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            for p in self.params:
                p.copy_(self.optimizer.state[p]["ax"])

    def __exit__(self, *exc) -> None:
        with torch.no_grad():
            for p, saved in zip(self.params, self.saved):
                p.copy_(saved)
