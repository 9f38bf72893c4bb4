"""What a strategy runs in: the space, protocol, data and device, callbacks into the
store, and the worker processes that train candidates in parallel."""
from __future__ import annotations

import multiprocessing
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Hashable

import torch

from nasbench.data import SplitData
from nasbench.errors import NasbenchError
from nasbench.hardware.constraint import Constraint
from nasbench.protocol import Protocol
from nasbench.spaces.base import SearchSpace
from nasbench.training import EpochCheckpoint, build_model, train_network
from nasbench.types import Checkpoint, Trial, derive_seed


@dataclass
class SearchContext:
    """What a strategy may use: the space, the protocol, the data on the device, and
    callbacks into the store. Strategies never touch the store or the CLI directly."""

    space: SearchSpace
    protocol: Protocol
    seed: int
    data: SplitData
    device: torch.device
    on_trial: Callable[[Trial], None] = lambda trial: None
    on_checkpoint: Callable[[Checkpoint], None] = lambda checkpoint: None
    epoch_checkpoint: Callable[[str, dict], EpochCheckpoint | None] = lambda label, genotype: None
    """Where a training labelled ``label`` (``candidate <index>``) of the architecture
    ``genotype`` keeps its epoch checkpoint; None: nowhere. Candidates trained in worker
    processes keep none (the store has one writer): a kill loses their trainings in flight."""
    show_progress: bool = True
    constraint: Constraint | None = None
    """Only for methods with ``accepts_constraint``; the runner refuses it for the others."""
    workers: int = 1
    """Candidates :meth:`train_candidates` may train at once, each in its own process."""
    pool: ProcessPoolExecutor | None = field(default=None, init=False, repr=False, compare=False)
    """The ``workers`` processes, from the first parallel batch until :meth:`close_workers`."""

    def train_candidate(self, arch: Hashable, index: int) -> float:
        """Train ``arch`` with the protocol's candidate stage on search-train and return
        its search-validation accuracy; the seed depends on the run seed and ``index``."""
        seed = derive_seed(self.seed, "candidate", index)
        stage = self.protocol.candidate
        model = build_model(self.space, arch, stage, self.device, seed)
        result = train_network(model, stage, self.data.search_train, self.data.search_val, seed,
                               description=f"candidate {index}", show_progress=self.show_progress,
                               checkpoint=self.epoch_checkpoint(f"candidate {index}", self.space.to_dict(arch)))
        return result.accuracy

    def train_candidates(self, archs: list[tuple[int, Hashable]]) -> list["CandidateOutcome"]:
        """:meth:`train_candidate` for each ``(index, arch)``, up to ``workers`` at once in
        processes (torch's threads shared out among them). Each candidate's seed depends on
        its index alone, so the outcomes do not depend on ``workers`` where every worker has
        this process's threads (one thread: multi-threaded training rounds differently). A
        candidate that raises is an outcome with its error, except for a
        :class:`NasbenchError` (bad input, missing data), which ends the run."""
        if self.workers == 1 or len(archs) == 1:
            outcomes = [candidate_outcome(self, arch, index) for index, arch in archs]
        else:
            outcomes = list(self.worker_pool().map(_outcome_in_worker, [arch for _, arch in archs],
                                                   [index for index, _ in archs]))
        for outcome in outcomes:
            if outcome.stop is not None:
                raise NasbenchError(outcome.stop)
        return outcomes

    def worker_pool(self) -> ProcessPoolExecutor:
        """The worker processes, started at the first call and kept until :meth:`close_workers`:
        starting them (torch's import, the context's data) took about 4 s, once per batch
        when each batch started its own (``nasbench bench candidates``)."""
        if self.pool is None:
            portable = (self.space, self.protocol, self.seed, self.data, self.device)
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_start_worker,
                                            initargs=(self.threads_per_worker(), portable))
        return self.pool

    def threads_per_worker(self) -> int:
        """torch's threads shared out among the workers (all of them with one worker, which
        trains in this process)."""
        return max(1, torch.get_num_threads() // self.workers)

    def close_workers(self) -> None:
        """Stop the worker processes, if any were started."""
        if self.pool is not None:
            self.pool.shutdown()
            self.pool = None


@dataclass(frozen=True)
class CandidateOutcome:
    """What training one candidate gave: its search-validation accuracy, or its error."""

    val_acc: float | None
    seconds: float
    error: str | None = None
    stop: str | None = None
    """An error the user must act on (a :class:`NasbenchError`'s message): it ends the run."""


def candidate_outcome(context: SearchContext, arch: Hashable, index: int) -> CandidateOutcome:
    """Train one candidate; its failure is an outcome, not an exception, unless it is a
    :class:`NasbenchError`, which propagates."""
    start = time.perf_counter()
    try:
        return CandidateOutcome(context.train_candidate(arch, index), time.perf_counter() - start)
    except NasbenchError:
        raise
    except Exception as err:  # a failed candidate is data, not the end of the search
        return CandidateOutcome(None, time.perf_counter() - start,
                                "".join(traceback.format_exception_only(err)).strip())


_WORKER_CONTEXT: SearchContext | None = None
"""In a worker process: the search context its candidates train in."""


def _start_worker(threads: int, portable: tuple) -> None:
    """Set up a worker process: its share of torch's threads and the context, rebuilt from
    its picklable part (space, protocol, seed, data, device), once for all its candidates."""
    global _WORKER_CONTEXT
    torch.set_num_threads(threads)
    space, protocol, seed, data, device = portable
    _WORKER_CONTEXT = SearchContext(space=space, protocol=protocol, seed=seed, data=data, device=device,
                                    show_progress=False)


def _outcome_in_worker(arch: Hashable, index: int) -> CandidateOutcome:
    """:func:`candidate_outcome` in a worker process; a :class:`NasbenchError` comes back as
    the outcome's ``stop`` (its subclasses do not pickle)."""
    try:
        return candidate_outcome(_WORKER_CONTEXT, arch, index)
    except NasbenchError as err:
        return CandidateOutcome(None, 0.0, str(err), stop=str(err))
