"""The contract every search method keeps on every space it searches, parametrised over the
registry (``nasbench.strategies.STRATEGIES``, each method on each of its ``spaces``):

- a search stopped after any step and restored from that step's checkpoint (as the store
  keeps it: JSON text and ``torch.save`` bytes) ends exactly as the uninterrupted search:
  the same result, the same final state and tensors, and no candidate trained twice;
- a search ends with a valid architecture of its space (one that round-trips through JSON
  and builds a network that classifies images, or a language model that predicts words).

A method runs on a language-model space as the class ``for_task`` gives (its own loop), on
a slice of the PTB stand-in.

Budgets are shrunk to the fixtures' tiny data: two supernet epochs of four batches of 8
images on a one-cell, 4-channel supernet, and six candidates scored instantly by a hash of the
architecture and its index (so a resumed search that trained a candidate under another
index, or another candidate, ends differently). Real candidate training, its seeds and its
repeatability are tested in test_random_search.py and, end to end, by ``nasbench run``
(test_runner.py).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch
from helpers import context, stored, with_candidates, with_supernet

from nasbench.spaces import get_space
from nasbench.strategies import STRATEGIES

CANDIDATES = 6

SLOW = {("darts", "cell"), ("darts-2nd", "cell"), ("fbnet", "fbnet"), ("nasnet", "nasnet")}
"""Pairs whose contract takes more than a few seconds on a 2-core CPU (``pytest -m "not slow"`` skips them)."""

PAIRS = [pytest.param(method, space, id=f"{method}-{space}",
                      marks=[pytest.mark.slow] if (method, space) in SLOW else [])
         for method, cls in STRATEGIES.items() for space in cls.spaces]


def hashed_score(space, arch, index: int) -> float:
    """A candidate's stand-in accuracy in [0.1, 0.6) (perplexity in [100, 600) on a
    language-model space): a hash of its architecture and index."""
    text = json.dumps([space.to_dict(arch), index], sort_keys=True)
    score = 0.1 + int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 2 ** 32 / 2
    return 1000 * score if space.task == "language-model" else score


@dataclasses.dataclass
class Run:
    """A search, with every checkpoint as the store would return it and the candidates it trained."""

    strategy: object
    calls: list[int]
    checkpoints: list[tuple[object, int, int]]
    """(checkpoint, steps done, candidates trained so far), the first taken before any step."""
    result: object = None


def start(method: str, space, protocol, data, seed: int = 3) -> Run:
    calls, checkpoints = [], []
    run = Run(None, calls, checkpoints)

    def keep(checkpoint):
        checkpoints.append((stored(checkpoint), run.strategy.steps_done(), len(calls)))

    ctx = context(space, protocol, data, seed=seed, on_checkpoint=keep)
    ctx.train_candidate = lambda arch, index: calls.append(index) or hashed_score(space, arch, index)
    run.strategy = STRATEGIES[method].for_task(space.task)(ctx)
    keep(run.strategy.checkpoint())
    return run


@pytest.fixture(scope="module")
def protocol(tiny):
    return with_candidates(with_supernet(tiny, epochs=2, channels=4, cells=1, batch_size=8), CANDIDATES)


@pytest.fixture(scope="module")
def task_data(tiny_data, ptb_corpus):
    """The data a space's task trains on: the tiny image splits, or 3000 training and 1000
    validation words of the PTB stand-in."""
    corpus = dataclasses.replace(ptb_corpus, train=ptb_corpus.train[:3000], valid=ptb_corpus.valid[:1000])
    return lambda space: corpus if space.task == "language-model" else tiny_data


@pytest.fixture(scope="module")
def uninterrupted(protocol, task_data):
    """The whole search of a (method, space) pair, run once for all the tests here."""
    runs = {}

    def get(method: str, space_name: str) -> Run:
        if (method, space_name) not in runs:
            space = get_space(space_name, protocol)
            run = start(method, space, protocol, task_data(space))
            run.result = run.strategy.run()
            runs[method, space_name] = run
        return runs[method, space_name]

    return get


def without_seconds(state: dict) -> dict:
    """A checkpoint's state without the trials' wall times, the one thing allowed to differ."""
    return {**state, "trials": [{k: v for k, v in t.items() if k != "seconds"} for t in state["trials"]]}


def assert_same_tensors(a, b, where: str = "tensors") -> None:
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_tensors(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_tensors(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def stops(count: int) -> list[int]:
    """The checkpoints to resume from: after every step but the last where there are few
    (before the first where there is one step)."""
    if count <= 2:
        return [0]
    return list(range(1, count - 1)) if count <= 8 else [1, count // 2, count - 2]


@pytest.mark.parametrize("method, space_name", PAIRS)
def test_a_search_stopped_after_any_step_resumes_exactly(method, space_name, uninterrupted, protocol, task_data):
    whole = uninterrupted(method, space_name)
    final, final_steps, _ = whole.checkpoints[-1]
    assert whole.strategy.finished() and final_steps == whole.strategy.budget()
    space = get_space(space_name, protocol)
    for stop in stops(len(whole.checkpoints)):
        checkpoint, steps, trained = whole.checkpoints[stop]
        resumed = start(method, space, protocol, task_data(space))
        resumed.strategy.restore(checkpoint)
        assert resumed.strategy.steps_done() == steps, f"restored after step {stop}"
        assert resumed.strategy.run() == whole.result, f"resumed after step {stop}"
        assert resumed.calls == whole.calls[trained:], f"candidates trained after resuming at step {stop}"
        last, _, _ = resumed.checkpoints[-1]
        assert without_seconds(last.state) == without_seconds(final.state), f"final state, resumed at step {stop}"
        assert_same_tensors(last.tensors, final.tensors, f"final tensors, resumed at step {stop}")


@pytest.mark.parametrize("method, space_name", PAIRS)
def test_a_search_ends_with_a_valid_architecture_of_its_space(method, space_name, uninterrupted, protocol):
    whole = uninterrupted(method, space_name)
    space, arch = get_space(space_name, protocol), whole.result.arch
    assert whole.strategy.status == "finished"
    assert space.from_dict(json.loads(json.dumps(space.to_dict(arch)))) == arch
    assert whole.result.val_acc is None or 0 <= whole.result.val_acc <= 1
    torch.manual_seed(0)
    if space.task == "language-model":
        assert whole.result.val_acc is None and (whole.result.val_perplexity is None or whole.result.val_perplexity > 1)
        model = space.build_language_model(arch, space.settings.stage("final"), 50).eval()
        with torch.no_grad():
            log_probs, _, _ = model(torch.randint(0, 50, (5, 2)), model.init_state(2))
        assert log_probs.shape == (5, 2, 50) and torch.allclose(log_probs.exp().sum(-1), torch.ones(5, 2))
        return
    network = space.build(arch, protocol.final.network).eval()
    with torch.no_grad():
        logits = network(torch.randn(2, 3, space.input_size, space.input_size))
    assert logits.shape == (2, 10) and torch.isfinite(logits).all()
