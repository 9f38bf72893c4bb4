"""Ranking quality of weight sharing (``nasbench rank``): does a method's trained supernet
order architectures the way training each of them alone does?

K architectures are drawn at random from the cell space (the i-th from a seed of its own,
derived from the run seed, so the first K of a larger ranking are the same). Each gets two
accuracies on search-validation: under the method's trained supernet (its single path:
one-hot edge weights, sparse forward, batch norm recalibrated) and after the protocol's
candidate training alone (:meth:`SearchContext.train_candidate`, what random search
measures). Kendall's tau, Spearman's rho and the top-k overlap compare the two orders.

The supernet is the one a finished run of the method left in the store, if its checkpoint
is still there; otherwise the ranking trains it by running the method's search (its
supernet epochs only: no final training, and for random-ws no scoring stage), checkpointed
in the store, from the same seed, so it is the supernet that method's run searches with.
Each accuracy is stored as soon as it is measured, so a rerun after a crash redoes none;
a stand-alone accuracy measured by any ranking for the same architecture, index, seed,
protocol and data is reused, whatever the method.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from scipy import stats

from nasbench.data import SplitData
from nasbench.errors import NasbenchError
from nasbench.images import Dataset
from nasbench.numerics import configure_numerics
from nasbench.progress import progress_bar
from nasbench.protocol import Protocol
from nasbench.provenance import stored_provenance
from nasbench.spaces import get_space
from nasbench.spaces.base import SearchSpace
from nasbench.spaces.cell.genotype import Genotype
from nasbench.spaces.cell.supernet import Supernet, WeightedSupernet, path_weights
from nasbench.store import (
    TOP_FRACTION,
    RankingKey,
    RankingOutcome,
    RankingStart,
    RunKey,
    Store,
    failure_recorded,
    ranking_record,
    shared_stage_key,
)
from nasbench.strategies import STRATEGIES, check_protocol, check_supernet_method
from nasbench.strategies.context import SearchContext
from nasbench.strategies.supernet_search import SupernetSearch
from nasbench.training import evaluate, recalibrated_batch_norm
from nasbench.types import Checkpoint, derive_seed


def check_ranking(method: str, samples: int) -> type[SupernetSearch]:
    """The registered method ``method``, which must train a weight-sharing supernet, if
    ``samples`` architectures can be ranked; else a one-line error."""
    check_supernet_method(method, "--supernet")
    if samples < 2:
        raise NasbenchError(f"--samples must be at least 2 (a ranking orders architectures), got {samples}")
    return STRATEGIES[method]


def top_k_size(samples: int) -> int:
    return max(1, samples // TOP_FRACTION)


@dataclass(frozen=True)
class RankingFigures:
    kendall_tau: float | None
    """Kendall's tau-b; None where one side gives every architecture the same accuracy."""
    spearman_rho: float | None
    top_k: int
    top_k_overlap: float
    """The share of the stand-alone top k that is also in the supernet's top k (ties to
    the earlier architecture)."""


def ranking_figures(supernet: Sequence[float], standalone: Sequence[float]) -> RankingFigures:
    """How well ``supernet`` accuracies order the architectures as ``standalone`` ones do."""
    if len(supernet) != len(standalone) or len(supernet) < 2:
        raise ValueError("a ranking needs two equally long lists of at least 2 accuracies")
    defined = len(set(supernet)) > 1 and len(set(standalone)) > 1
    k = top_k_size(len(supernet))

    def top(accuracies: Sequence[float]) -> set[int]:
        return set(sorted(range(len(accuracies)), key=lambda i: (-accuracies[i], i))[:k])

    return RankingFigures(
        kendall_tau=float(stats.kendalltau(supernet, standalone).statistic) if defined else None,
        spearman_rho=float(stats.spearmanr(supernet, standalone).statistic) if defined else None,
        top_k=k,
        top_k_overlap=len(top(supernet) & top(standalone)) / k,
    )


def ranking_architectures(space: SearchSpace, seed: int, count: int) -> list[Genotype]:
    """The ranking's architectures: the i-th drawn uniformly from a seed of its own."""
    return [space.sample(random.Random(derive_seed(seed, "rank", index))) for index in range(count)]


# -- scoring with the supernet ----------------------------------------------------------

def supernet_accuracy(supernet: Supernet, genotype: Genotype, data: SplitData) -> float:
    """Search-validation accuracy of ``genotype`` under the supernet's shared weights: its
    single path, batch norm recalibrated on search-train (:func:`recalibrated_batch_norm`)."""
    path = WeightedSupernet(supernet, path_weights(genotype, data.search_val.labels.device), sparse=True)
    with recalibrated_batch_norm(path, data.search_train):
        return evaluate(path, data.search_val)


# -- the experiment ---------------------------------------------------------------------

@dataclass(frozen=True)
class RankRequest:
    method: str
    samples: int
    protocol: Protocol
    seed: int
    dataset: Dataset
    device: torch.device
    store_path: Path
    show_progress: bool = True


def rank(request: RankRequest) -> dict[str, Any]:
    """Measure (or finish measuring) the ranking and return its record (``ranking_record``)."""
    cls = check_ranking(request.method, request.samples)
    protocol = check_protocol(request.protocol)
    configure_numerics()
    key = RankingKey(cls.name, request.seed, protocol.hash, request.dataset.identity, request.samples)
    with Store(request.store_path) as store:
        cached = _stored(store, key)
        if cached is not None:
            return cached
        with store.claimed(key):  # another live process measuring it: ClaimHeld, one line and exit 3
            return _rank_claimed(store, request, key, cls, protocol)


def _stored(store: Store, key: RankingKey) -> dict[str, Any] | None:
    """The record of the ranking if the store holds it finished."""
    row = store.find_ranking(key)
    return {**ranking_record(store, row), "cached": True} if row is not None and row["status"] == "finished" else None


def _rank_claimed(store: Store, request: RankRequest, key: RankingKey, cls: type[SupernetSearch],
                  protocol: Protocol) -> dict[str, Any]:
    """:func:`rank`'s work once it holds the ranking's claim."""
    cached = _stored(store, key)  # another process may have finished it meanwhile
    if cached is not None:
        return cached
    row = store.find_ranking(key)
    data = SplitData.for_config(request.dataset, protocol.data, request.device)
    context = SearchContext(space=get_space("cell"), protocol=protocol, seed=request.seed, data=data,
                            device=request.device, show_progress=request.show_progress)
    if row is None:
        ranking_id = store.start_ranking(RankingStart(key=key, top_k=top_k_size(request.samples),
                                                      provenance=stored_provenance(protocol, request.device)))
        elapsed_before = 0.0
    else:
        ranking_id, elapsed_before = row["id"], row["seconds"]
        store.resume_ranking(ranking_id)
    started = time.perf_counter()
    with failure_recorded(lambda error, status: store.fail_ranking(ranking_id, error, status)):
        _measure(store, ranking_id, key, cls, context, lambda: elapsed_before + time.perf_counter() - started)
    return {**ranking_record(store, store.find_ranking(key)), "cached": False}


def _measure(store: Store, ranking_id: int, key: RankingKey, cls: type[SupernetSearch], context: SearchContext,
             seconds: Callable[[], float]) -> None:
    """Every supernet accuracy still missing (the supernet is needed only for those), then
    every stand-alone accuracy still missing, then the figures."""
    architectures = ranking_architectures(context.space, key.seed, key.samples)
    arch_dicts = [context.space.to_dict(genotype) for genotype in architectures]

    def missing(measure: str) -> list[int]:
        done = {row["idx"] for row in store.ranking_pairs(ranking_id) if row[f"{measure}_acc"] is not None}
        return [index for index in range(key.samples) if index not in done]

    unscored = missing("supernet")
    if unscored:
        supernet = trained_supernet(store, ranking_id, key, cls, context)
        for index in _progress(unscored, "supernet scores", context.show_progress):
            start = time.perf_counter()
            accuracy = supernet_accuracy(supernet, architectures[index], context.data)
            store.record_accuracy(ranking_id, index, arch_dicts[index], "supernet", accuracy,
                                  time.perf_counter() - start, seconds())
        store.drop_ranking_supernet(ranking_id)
    for index in _progress(missing("standalone"), "stand-alone trainings", context.show_progress):
        earlier = store.measured_standalone(key.seed, key.protocol_hash, key.data, index, arch_dicts[index])
        if earlier is None:
            start = time.perf_counter()
            accuracy = context.train_candidate(architectures[index], index)
            spent = time.perf_counter() - start
        else:
            accuracy, spent = earlier["standalone_acc"], earlier["standalone_seconds"]
        store.record_accuracy(ranking_id, index, arch_dicts[index], "standalone", accuracy, spent, seconds())
    pairs = store.ranking_pairs(ranking_id)
    figures = ranking_figures([p["supernet_acc"] for p in pairs], [p["standalone_acc"] for p in pairs])
    store.finish_ranking(ranking_id, RankingOutcome(seconds(), figures.kendall_tau, figures.spearman_rho,
                                                    figures.top_k_overlap))


def trained_supernet(store: Store, ranking_id: int, key: RankingKey, cls: type[SupernetSearch],
                     context: SearchContext) -> Supernet:
    """The method's trained supernet for the ranking's seed, protocol and data: a finished
    run's, if the store still holds its checkpoint, else the shared stage a run of any
    variant kept (SPOS' and random-ws' supernet, whatever constraint followed), else
    trained here by the method's own search steps (resumed from the ranking's checkpoint,
    checkpointed after each epoch)."""
    strategy = cls(context)
    run = store.find(RunKey(key.method, key.seed, key.protocol_hash, key.data), ("finished",))
    tensors = store.checkpoint_tensors(run["id"]) if run is not None else {}
    if tensors:
        strategy.load_tensor_state(tensors)
        store.set_ranking_supernet_run(ranking_id, run["id"])
        return strategy.supernet
    if cls.shared_stage is not None:
        shared = store.shared_stage(shared_stage_key(cls.shared_stage, context.space.name, key.protocol_hash, key.data,
                                                     key.seed))
        if shared is not None and strategy.start_after_stage(shared.checkpoint):
            store.set_ranking_supernet_run(ranking_id, shared.run_id)
            return strategy.supernet
    store.set_ranking_supernet_run(ranking_id, None)
    checkpoint = store.ranking_supernet(ranking_id)
    if checkpoint is not None:
        state, tensors = checkpoint
        strategy.restore(Checkpoint(state, tensors))
    with progress_bar(total=strategy.supernet_epochs(), initial=strategy.epochs_done, desc=f"supernet {cls.name}",
                      unit="epoch", enabled=context.show_progress) as bar:
        while strategy.epochs_done < strategy.supernet_epochs():
            strategy.step()
            checkpoint = strategy.checkpoint()
            store.keep_ranking_supernet(ranking_id, checkpoint.state, checkpoint.tensors)
            bar.update()
    return strategy.supernet


def _progress(items: list[int], description: str, enabled: bool) -> Iterator[int]:
    with progress_bar(total=len(items), desc=description, unit="arch", enabled=enabled) as bar:
        for item in items:
            yield item
            bar.update()
