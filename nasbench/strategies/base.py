"""The strategy lifecycle every search method follows.

A strategy owns its budget and status: :meth:`Strategy.run` repeats :meth:`step` until
:meth:`finished`, checkpointing after every step. Its whole state, random-number state
included, is a :class:`Checkpoint`: a JSON-able dict (:meth:`state_dict` /
:meth:`load_state_dict`) and, for methods that train networks during the search, the
tensors JSON cannot hold (:meth:`tensor_state` / :meth:`load_tensor_state`), so a run
stopped at any step continues exactly where it was.
"""
from __future__ import annotations

import hashlib
import math
import multiprocessing
import random
import time
import traceback
from abc import ABC, abstractmethod
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Hashable

import torch

from nasbench.data import SplitData
from nasbench.errors import NasbenchError
from nasbench.hardware.cost_model import CostModel
from nasbench.progress import progress_bar
from nasbench.protocol import Protocol
from nasbench.spaces.base import SearchSpace
from nasbench.training import build_model, train_network

STRATEGY_CLASSES = ("RL", "EA", "GO", "RS", "SMBO")
"""The survey's strategy classes: reinforcement learning, evolution, gradient
optimisation, random search, sequential model-based optimisation."""


def derive_seed(seed: int, *parts: object) -> int:
    """A 31-bit seed determined by the run seed and a purpose, e.g. ("candidate", 3)."""
    digest = hashlib.sha256(repr((seed,) + parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass(frozen=True)
class Trial:
    """One evaluated candidate; ``error`` is set (and ``val_acc`` None) when it failed."""

    index: int
    arch: dict[str, Any]
    val_acc: float | None
    seconds: float
    error: str | None = None


@dataclass(frozen=True)
class SearchResult:
    arch: Hashable
    val_acc: float | None
    """Search-validation accuracy the strategy chose the architecture by (None if it used none)."""
    details: dict[str, Any] = field(default_factory=dict)


TensorState = dict[str, Any]
"""What ``torch.save`` writes and ``torch.load(weights_only=True)`` reads back: tensors in
(nested) dicts and lists with plain values, e.g. module and optimiser state dicts."""


@dataclass(frozen=True)
class Checkpoint:
    """A strategy's whole state after a step, as the store keeps it (in one transaction)."""

    state: dict[str, Any]
    """JSON-able values: trials, status, random-number state, the strategy's fields."""
    tensors: TensorState = field(default_factory=dict)
    """Network weights, optimiser moments, torch generator states; empty for black-box methods."""


LOSS_FORMS = ("hinge", "add-linear", "mul-log", "mul-log-hinge")
"""How a constraint's expected cost enters a loss (:meth:`Constraint.apply`)."""
LOG_UNIT_SCALE = {"latency_ms": 1000.0}
"""The log form takes latency in microseconds, so that its log is positive for every
network (in milliseconds, a network faster than 1 ms would have a negative log, and a
target of 1 ms a zero denominator); counts are taken as they are."""


@dataclass(frozen=True)
class Constraint:
    """A resource constraint a method may search under (a run parameter, not part of the
    protocol): the cost model's ``metric`` should stay at or below ``target`` (in the
    metric's unit), enforced with strength ``weight`` in the loss ``form``."""

    metric: str
    target: float
    weight: float
    cost_model: CostModel
    form: str = "hinge"
    exponent: float = 1.0
    """beta of the ``mul-log`` form."""

    def __post_init__(self) -> None:
        if self.form not in LOSS_FORMS:
            raise NasbenchError(f"unknown constraint loss form {self.form!r}; known: {', '.join(LOSS_FORMS)}")
        if self.form.startswith("mul-log") and self.target * LOG_UNIT_SCALE.get(self.metric, 1.0) <= 1:
            unit = " us" if self.metric == "latency_ms" else ""
            raise NasbenchError(f"the mul-log constraint needs a target above 1{unit} (its log is the denominator), "
                                f"got {self.target}")

    def apply(self, loss: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
        """``loss`` under the constraint, with ``E[C]`` the expected cost under ``weights``:

        - ``hinge``: ``loss + weight * max(0, E[C] - target) / target`` (zero inside the
          budget, so a constraint the search already meets does not push further; relative
          to the target, so one ``weight`` means the same for milliseconds and for FLOPs; at
          the target its slope is ``weight / target``, that of SNAS' log penalty
          ``weight * log E[C]`` in the official code's ``--log_penalty``, so SNAS' lambdas
          carry over);
        - ``add-linear``: ``loss + weight * (E[C] - target) / target`` (ProxylessNAS' additive
          form: it keeps pushing below the target);
        - ``mul-log``: ``loss * weight * (log E[C] / log target) ** exponent`` (ProxylessNAS'
          multiplicative form, FBNet's ``CE * alpha * log(LAT) ** beta`` divided by a constant;
          latency in microseconds, see :data:`LOG_UNIT_SCALE`). Its weight and target are
          constant factors of the whole loss: under Adam they do not move the trade-off, only
          the exponent does;
        - ``mul-log-hinge``: as ``mul-log`` with ``E[C]`` floored at the target, so that the
          latency term pushes only above the target (how a target enters FBNet's loss here:
          below it the loss is the plain cross-entropy times ``weight``)."""
        expected = self.cost_model.expected(weights)
        if self.form == "hinge":
            return loss + self.weight * torch.relu(expected - self.target) / self.target
        if self.form == "add-linear":
            return loss + self.weight * (expected - self.target) / self.target
        if self.form == "mul-log-hinge":
            expected = torch.clamp(expected, min=self.target)
        scale = LOG_UNIT_SCALE.get(self.metric, 1.0)
        return loss * self.weight * (torch.log(expected * scale) / math.log(self.target * scale)) ** self.exponent

    def variant(self) -> str:
        """What tells the run apart from the unconstrained one (and from other constraints)
        in the store: metric, target, weight and, for latency, the device and conditions
        of the table (counts do not depend on the device)."""
        where = ""
        table = self.cost_model.table
        if self.metric == "latency_ms":
            where = f"@{table.reference()}"
        form = "" if self.form == "hinge" else f",form={self.form}" + (f",beta={self.exponent:g}" if self.form.startswith("mul-log") else "")
        return f"{self.metric}<={self.target:g}{where},weight={self.weight:g}{form}"

    def describe(self, arch: Hashable) -> dict[str, Any]:
        """The constraint and the exact cost of ``arch`` under it, for the run's details."""
        table = self.cost_model.table
        return {"metric": self.metric, "target": self.target, "weight": self.weight, "form": self.form,
                "exponent": self.exponent,
                "table": None if table.path is None else str(table.path),
                "device": table.device_fingerprint, "achieved": self.cost_model.cost(arch)}


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
                               description=f"candidate {index}", show_progress=self.show_progress)
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


class Strategy(ABC):
    """Base of every search method. Subclasses set the class attributes and implement
    :meth:`budget`, :meth:`step` and :meth:`result`; they keep any extra state in
    attributes listed in ``state_fields`` (JSON-able values) and, if they train networks,
    in :meth:`tensor_state`."""

    name: ClassVar[str]
    strategy_class: ClassVar[str]
    summary: ClassVar[str]
    spaces: ClassVar[tuple[str, ...]] = ("cell",)
    published: ClassVar[tuple[tuple[str, str], ...]] = ()
    """(method, variant) rows of baselines/published_results.csv this method reproduces, one
    per space in the order of ``spaces`` (fewer: no published figure on the later spaces)."""
    state_fields: ClassVar[tuple[str, ...]] = ()
    constraint_forms: ClassVar[dict[str, tuple[float | None, float]]] = {}
    """The :data:`LOSS_FORMS` the method can search under a resource :class:`Constraint` with,
    the first its default, each with its published (weight, exponent); weight None where
    the run must give one. Empty: the method takes no constraint."""
    protocol_section: ClassVar[str | None] = None
    """The protocol's ``[search.<section>]`` holding this method's own settings, if any."""

    def __init__(self, context: SearchContext):
        self.context = context
        self.rng = random.Random(context.seed)
        self.trials: list[Trial] = []
        self.status = "created"

    @abstractmethod
    def budget(self) -> int:
        """Number of steps the protocol allows."""

    @abstractmethod
    def step(self) -> None:
        """One unit of search work (e.g. one candidate or one epoch)."""

    @abstractmethod
    def result(self) -> SearchResult:
        """The chosen architecture, once :meth:`finished`."""

    def method_settings(self) -> Any:
        """This method's ``[search.<protocol_section>]`` settings, or an error saying how to add them."""
        return self.context.protocol.method_section(self.protocol_section)

    def steps_done(self) -> int:
        return len(self.trials)

    def finished(self) -> bool:
        return self.steps_done() >= self.budget()

    def run(self) -> SearchResult:
        self.status = "running"
        with progress_bar(total=self.budget(), initial=self.steps_done(), desc=f"search {self.name}",
                          unit="step", enabled=self.context.show_progress) as bar:
            try:
                while not self.finished():
                    done = self.steps_done()
                    self.step()
                    self.context.on_checkpoint(self.checkpoint())
                    bar.update(self.steps_done() - done)
            finally:
                self.context.close_workers()
        self.status = "finished"
        return self.result()

    # -- black-box helpers ---------------------------------------------------------
    def evaluate(self, arch: Hashable) -> Trial:
        """Train a candidate and record the trial; a failure becomes a trial with its error."""
        return self.evaluate_all([arch])[0]

    def evaluate_all(self, archs: list[Hashable]) -> list[Trial]:
        """Train candidates, up to ``context.workers`` at once, and record their trials in order."""
        first = len(self.trials)
        outcomes = self.context.train_candidates(list(enumerate(archs, start=first)))
        trials = [Trial(index, self.context.space.to_dict(arch), outcome.val_acc, outcome.seconds, outcome.error)
                  for index, (arch, outcome) in enumerate(zip(archs, outcomes), start=first)]
        for trial in trials:
            self.trials.append(trial)
            self.context.on_trial(trial)
        return trials

    def best_trial(self) -> Trial:
        scored = [t for t in self.trials if t.val_acc is not None]
        if not scored:
            errors = "; ".join(sorted({t.error for t in self.trials if t.error})) or "no candidate was evaluated"
            raise RuntimeError(f"{self.name}: every candidate failed: {errors}")
        return max(scored, key=lambda t: (t.val_acc, -t.index))

    # -- state ---------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.state_dict(), self.tensor_state())

    def restore(self, checkpoint: Checkpoint) -> None:
        self.load_state_dict(checkpoint.state)
        self.load_tensor_state(checkpoint.tensors)

    def tensor_state(self) -> TensorState:
        """The state JSON cannot hold (references to live tensors: serialise before the
        next step); black-box methods have none."""
        return {}

    def load_tensor_state(self, tensors: TensorState) -> None:
        """Restore what :meth:`tensor_state` returned (nothing for black-box methods)."""

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {
            "rng": [version, list(internal), gauss],
            "trials": [vars(t).copy() for t in self.trials],  # shallow: asdict's deep copy is quadratic in cost
            "status": self.status,
            "fields": {name: getattr(self, name) for name in self.state_fields},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.trials = [Trial(**t) for t in state["trials"]]
        self.status = state["status"]
        for name, value in state["fields"].items():
            setattr(self, name, value)
