"""What a strategy runs in: the space, protocol, data and device, callbacks into the
store, and the executor its candidates train on."""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Callable, Hashable

import torch

from nasbench.corpus import Corpus
from nasbench.data import SplitData
from nasbench.errors import NasbenchError
from nasbench.executor import Executor
from nasbench.executor.inprocess import InProcessExecutor
from nasbench.hardware.constraint import Constraint
from nasbench.language_model import train_language_model_candidate
from nasbench.numerics import configure_numerics
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
    data: SplitData | Corpus
    """A language-model space's run gets the corpus, an image space's the splits."""
    device: torch.device
    on_trial: Callable[[Trial], None] = lambda trial: None
    on_checkpoint: Callable[[Checkpoint], None] = lambda checkpoint: None
    on_shared_stage: Callable[[Checkpoint], None] = lambda checkpoint: None
    """Where a method's shared stage is kept when it completes (see ``Strategy.shared_stage``)."""
    epoch_checkpoint: Callable[[str, dict], EpochCheckpoint | None] = lambda label, genotype: None
    """Where a training labelled ``label`` (``candidate <index>``) of the architecture
    ``genotype`` keeps its epoch checkpoint (picklable: it travels with a candidate's
    task); None: nowhere."""
    show_progress: bool = True
    compile: bool = False
    """Compile the candidates' training forward (``nasbench run --compile``): opt-in, not
    part of a run's identity."""
    constraint: Constraint | None = None
    """Only for methods with ``accepts_constraint``; the runner refuses it for the others."""
    executor: Executor = field(default_factory=InProcessExecutor)
    """Where :meth:`train_candidates` trains: here, one at a time, or as tasks, as many at
    once as its capacity."""
    shared: object = field(default=None, init=False, repr=False, compare=False)
    """What every candidate task takes (space, protocol, seed, data), shared once."""

    @property
    def workers(self) -> int:
        """Candidates a method may hand :meth:`train_candidates` at once."""
        return self.executor.capacity

    def train_candidate(self, arch: Hashable, index: int) -> float:
        """Train ``arch`` with the protocol's candidate stage on search-train and return its
        search-validation accuracy (a language model: trained on the corpus' training split,
        its validation perplexity, :func:`candidate_metric`); the seed depends on the run
        seed and ``index``."""
        checkpoint = self.epoch_checkpoint(f"candidate {index}", self.space.to_dict(arch))
        return _train_candidate(self.space, self.protocol, self.seed, self.data, self.device, arch, index,
                                checkpoint, self.show_progress, self.compile)

    def train_candidates(self, archs: list[tuple[int, Hashable]]) -> list["CandidateOutcome"]:
        """:meth:`train_candidate` for each ``(index, arch)``: here, or as the executor's
        tasks (each with its resources' threads). Each candidate's seed depends on its
        index alone, so the outcomes do not depend on how many train at once (at the same
        thread count: multi-threaded training rounds differently). A candidate that raises
        is an outcome with its error, except for a :class:`NasbenchError` (bad input,
        missing data), which ends the run."""
        if not self.executor.remote or len(archs) == 1 and self.executor.capacity == 1:
            outcomes = [candidate_outcome(self, arch, index) for index, arch in archs]
        else:
            if self.shared is None:
                self.shared = self.executor.share((self.space, self.protocol, self.seed, self.data))
            checkpoints = [self.epoch_checkpoint(f"candidate {index}", self.space.to_dict(arch)) for index, arch in archs]
            outcomes = self.executor.map(_candidate_task, [(self.shared, arch, index, checkpoint, self.compile)
                                                           for (index, arch), checkpoint in zip(archs, checkpoints)])
        for outcome in outcomes:
            if outcome.stop is not None:
                raise NasbenchError(outcome.stop)
        return outcomes


def _train_candidate(space: SearchSpace, protocol: Protocol, seed: int, data: SplitData | Corpus, device: torch.device,
                     arch: Hashable, index: int, checkpoint: EpochCheckpoint | None,
                     show_progress: bool, compile: bool = False) -> float:
    seed = derive_seed(seed, "candidate", index)
    description = f"candidate {index}"
    if space.task == "language-model":
        return train_language_model_candidate(space, data, arch, seed, device, checkpoint, show_progress, description)
    stage = protocol.candidate
    model = build_model(space, arch, stage, device, seed)
    return train_network(model, stage, data.search_train, data.search_val, seed, description=description,
                         show_progress=show_progress, checkpoint=checkpoint, precision=protocol.precision,
                         compile=compile).accuracy


def candidate_metric(space: SearchSpace) -> str:
    """The validation metric a candidate of ``space`` is scored by: ``val_acc`` or ``val_perplexity``."""
    return "val_perplexity" if space.task == "language-model" else "val_acc"


@dataclass(frozen=True)
class CandidateOutcome:
    """What training one candidate gave: its search-validation accuracy (an image network)
    or perplexity (a language model), or its error."""

    val_acc: float | None
    seconds: float
    error: str | None = None
    stop: str | None = None
    """An error the user must act on (a :class:`NasbenchError`'s message): it ends the run."""
    val_perplexity: float | None = None


def candidate_outcome(context: SearchContext, arch: Hashable, index: int) -> CandidateOutcome:
    """Train one candidate; its failure is an outcome, not an exception, unless it is a
    :class:`NasbenchError`, which propagates."""
    return _outcome(lambda: context.train_candidate(arch, index), candidate_metric(context.space))


def _outcome(train: Callable[[], float], metric: str) -> CandidateOutcome:
    start = time.perf_counter()
    try:
        return CandidateOutcome(**{"val_acc": None, metric: train()}, seconds=time.perf_counter() - start)
    except NasbenchError:
        raise
    except Exception as err:  # a failed candidate is data, not the end of the search
        return CandidateOutcome(None, time.perf_counter() - start,
                                "".join(traceback.format_exception_only(err)).strip())


def _candidate_task(shared: tuple, arch: Hashable, index: int, checkpoint: EpochCheckpoint | None,
                    compile: bool = False) -> CandidateOutcome:
    """One candidate as an executor's task, on the task's device (a GPU where it was given
    one); a :class:`NasbenchError` comes back as the outcome's ``stop`` (its subclasses do
    not all pickle)."""
    configure_numerics()  # a worker process computes as the driver does
    space, protocol, seed, data = shared
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return _outcome(lambda: _train_candidate(space, protocol, seed, data.to(device), device, arch, index,
                                                 checkpoint, show_progress=False, compile=compile),
                        candidate_metric(space))
    except NasbenchError as err:
        return CandidateOutcome(None, 0.0, str(err), stop=str(err))
