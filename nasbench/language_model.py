"""Training and evaluating a recurrent-cell language model, as DARTS' rnn/train.py does (from
AWD-LSTM, Merity et al., ICLR 2018): truncated BPTT over windows of random length, the
learning rate scaled with the window, gradient clipping, weight decay, the temporal
activation ("slowness") term, the hidden state carried across windows without its history,
and, in final training, SGD switched to averaged SGD once validation stops improving.

Everything stays on the model's device; the only Python loop inside a window is the RNN's
own over time steps (:class:`nasbench.spaces.language_model_network.LanguageModel`).
"""
from __future__ import annotations

import copy
import math
import random
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from nasbench.corpus import PTB_VOCABULARY, Corpus, batchify, window
from nasbench.hardware.counting import count_flops, count_params, published_fields
from nasbench.progress import progress_bar
from nasbench.spaces.language_model import LanguageModelStage, RecurrentSpace
from nasbench.spaces.language_model_network import LanguageModel
from nasbench.training import (
    EpochCheckpoint,
    TrainingDiverged,
    global_generator_states,
    restore_global_generators,
)

LONG_WINDOW_PROB = 0.95
"""A window's mean length is bptt with this probability, else bptt / 2 (DARTS train.py:169)."""
WINDOW_STD = 5
"""Standard deviation of a window's length (train.py:171)."""
MIN_WINDOW = 5
"""Shortest window (train.py:171)."""
MAX_WINDOW_DELTA = 20
"""Longest window: bptt + 20 (train.py:72, 173)."""
MAX_MEAN_NLL = math.log(sys.float_info.max)
"""Above this mean NLL (about 709.8 nats per word; a uniform guess over PTB's 10,000 words is
9.2) exp overflows: the model has diverged, and says so instead of a bare OverflowError."""


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
    mean_nll = total.item() / ((source.shape[0] - 1) * batch_size)
    if not mean_nll <= MAX_MEAN_NLL:
        raise TrainingDiverged(f"perplexity is not finite: mean NLL {mean_nll:.4g} nats per word")
    return math.exp(mean_nll)


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


@dataclass(frozen=True)
class LanguageModelResult:
    """A training's epochs, its best validation perplexity (whose weights the model ends
    with) and its time, this attempt's and earlier ones' (restored from a checkpoint)."""

    records: tuple[EpochRecord, ...]
    best_perplexity: float
    seconds: float
    resumed_epoch: int = 0
    earlier_seconds: float = 0.0


def train_language_model(model: LanguageModel, train_tokens: torch.Tensor, valid_tokens: torch.Tensor,
                         stage: LanguageModelStage, seed: int, description: str = "train",
                         show_progress: bool = False, checkpoint: EpochCheckpoint | None = None) -> LanguageModelResult:
    """``stage.epochs`` epochs of SGD (switched to ASGD as ``stage.asgd_nonmono`` says), each
    followed by the validation perplexity. The model ends with the weights of its best
    validation epoch (the averaged ones under ASGD), which DARTS keeps and tests
    (train.py:268-305, 313-318). Deterministic on a CPU given ``seed``; with ``checkpoint``
    it continues from the saved state, if any, and saves after every epoch."""
    began = time.perf_counter()
    torch.manual_seed(seed)  # the dropout masks draw from the global generator
    rng = random.Random(seed)
    device = model.encoder.weight.device
    source = batchify(train_tokens.to(device), stage.batch_size)
    progress = _Progress(model, stage)
    saved = None if checkpoint is None else checkpoint.load()
    if saved is not None:
        progress.restore(saved, rng)
    with progress_bar(total=stage.epochs, initial=len(progress.records), desc=description, unit="epoch",
                      enabled=show_progress) as bar:
        for epoch in range(len(progress.records) + 1, stage.epochs + 1):
            epoch_began = time.perf_counter()
            averaged = isinstance(progress.optimizer, torch.optim.ASGD)
            train_nll = train_epoch(model, progress.optimizer, source, stage, rng)
            if not math.isfinite(train_nll):
                raise TrainingDiverged(f"training loss became {train_nll} in epoch {epoch}")
            with _averaged_weights(model, progress.optimizer):
                perplexity = evaluate_perplexity(model, valid_tokens, stage.eval_batch_size, stage.bptt)
                progress.keep_if_best(perplexity)
            progress.records.append(EpochRecord(epoch, train_nll, perplexity, "asgd" if averaged else "sgd",
                                                time.perf_counter() - epoch_began))
            progress.maybe_switch(perplexity)
            if checkpoint is not None:
                checkpoint.save(progress.state(rng, time.perf_counter() - began))
            bar.set_postfix(ppl=f"{perplexity:.1f}")
            bar.update()
    model.load_state_dict(progress.best_state)
    return LanguageModelResult(tuple(progress.records), progress.best, time.perf_counter() - began,
                               progress.resumed_epoch, progress.earlier_seconds)


class _Progress:
    """What the next epoch of :func:`train_language_model` depends on besides the model:
    the optimiser (SGD, or ASGD after the switch), the switch's history, the best epoch's
    perplexity and weights, the epochs so far, and on resume the time spent before."""

    def __init__(self, model: LanguageModel, stage: LanguageModelStage):
        self.model, self.stage = model, stage
        self.optimizer: torch.optim.Optimizer = torch.optim.SGD(model.parameters(), lr=stage.lr,
                                                                weight_decay=stage.weight_decay)
        self.losses: list[float] = []  # validation NLL per SGD epoch: the switch's history
        self.best, self.best_state = math.inf, None
        self.records: list[EpochRecord] = []
        self.resumed_epoch, self.earlier_seconds = 0, 0.0

    def keep_if_best(self, perplexity: float) -> None:
        if perplexity < self.best:
            self.best, self.best_state = perplexity, copy.deepcopy(self.model.state_dict())

    def maybe_switch(self, perplexity: float) -> None:
        """Switch to ASGD once validation stops improving (AWD-LSTM's non-monotone trigger)."""
        if isinstance(self.optimizer, torch.optim.ASGD) or not self.stage.asgd_nonmono:
            return
        loss = math.log(perplexity)
        if len(self.losses) > self.stage.asgd_nonmono and loss > min(self.losses[:-self.stage.asgd_nonmono]):
            self.optimizer = self._asgd()
        self.losses.append(loss)

    def _asgd(self) -> torch.optim.ASGD:
        return torch.optim.ASGD(self.model.parameters(), lr=self.stage.lr, t0=0, lambd=0.0,
                                weight_decay=self.stage.weight_decay)

    def state(self, rng: random.Random, seconds: float) -> dict[str, Any]:
        version, internal, gauss = rng.getstate()
        return {"epochs": len(self.records), "seconds": self.earlier_seconds + seconds,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "asgd": isinstance(self.optimizer, torch.optim.ASGD), "losses": list(self.losses),
                "best": self.best, "best_model": self.best_state, "records": [vars(r) for r in self.records],
                "rng": [version, list(internal), gauss], **global_generator_states(self.model.encoder.weight.device)}

    def restore(self, state: dict[str, Any], rng: random.Random) -> None:
        self.model.load_state_dict(state["model"])
        if state["asgd"]:
            self.optimizer = self._asgd()
        self.optimizer.load_state_dict(state["optimizer"])
        self.losses, self.best, self.best_state = list(state["losses"]), state["best"], state["best_model"]
        self.records = [EpochRecord(**r) for r in state["records"]]
        version, internal, gauss = state["rng"]
        rng.setstate((version, tuple(internal), gauss))
        restore_global_generators(state, self.model.encoder.weight.device)
        self.resumed_epoch, self.earlier_seconds = state["epochs"], state["seconds"]


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


def train_language_model_candidate(space: RecurrentSpace, corpus: Corpus, arch: Any, seed: int, device: torch.device,
                                   checkpoint: EpochCheckpoint | None, show_progress: bool, description: str) -> float:
    """A candidate cell trained from scratch by ``space``'s candidate stage on the corpus'
    training split: its best validation perplexity (how DARTS selects its cells and its
    random baseline's, Liu et al., ICLR 2019, Sect. 3.3)."""
    stage = space.settings.stage("candidate")
    model = build_seeded_language_model(space, arch, stage, corpus.vocab_size, device, seed)
    return train_language_model(model, corpus.train, corpus.valid, stage, seed, description, show_progress,
                                checkpoint).best_perplexity


def build_seeded_language_model(space: RecurrentSpace, arch: Any, stage: LanguageModelStage, vocab_size: int,
                                device: torch.device, seed: int) -> LanguageModel:
    """A freshly initialised language model of ``arch`` at ``stage``'s size, its weights drawn from ``seed``."""
    torch.manual_seed(seed)
    return space.build_language_model(arch, stage, vocab_size).to(device)


def flops_per_token(model: LanguageModel) -> int:
    """fvcore's FLOPs (1 multiply-add = 1 FLOP) of predicting one word: one time step of the
    cell, its input projection, and the decoder over the vocabulary, in eval mode."""
    tokens = torch.zeros(1, 1, dtype=torch.int64, device=model.encoder.weight.device)
    return count_flops(model, (tokens, model.init_state(1)))


def language_model_summary(name: str, arch: Any, space: RecurrentSpace, protocol: Any, entry: Any = None) -> dict[str, Any]:
    """``arch``'s language model at ``protocol``'s final size over PTB's vocabulary (the size
    the papers' parameter counts are of): params and FLOPs per word, beside its zoo ``entry``."""
    stage = space.settings.stage("final")
    model = space.build_language_model(arch, stage, PTB_VOCABULARY)
    summary = {"name": name, "protocol": protocol.name, "hidden_size": stage.hidden_size, "vocab_size": PTB_VOCABULARY,
               "params": count_params(model), "flops": flops_per_token(model),
               "flops_convention": "fvcore, 1 multiply-add = 1 FLOP, per predicted word", "genotype": space.to_dict(arch)}
    return summary | published_fields(entry)
