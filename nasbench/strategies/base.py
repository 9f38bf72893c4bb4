"""The strategy lifecycle every search method follows.

A strategy owns its budget and status: :meth:`Strategy.run` repeats :meth:`step` until
:meth:`finished`, checkpointing after every step. Its whole state, random-number state
included, is a JSON-able dict (:meth:`state_dict` / :meth:`load_state_dict`), so a run
stopped at any step continues exactly where it was.
"""
from __future__ import annotations

import hashlib
import random
import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, ClassVar, Hashable

import torch

from nasbench.data import SplitData
from nasbench.errors import NasbenchError
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
    on_checkpoint: Callable[[dict[str, Any]], None] = lambda state: None
    show_progress: bool = True

    def train_candidate(self, arch: Hashable, index: int) -> float:
        """Train ``arch`` with the protocol's candidate stage on search-train and return
        its search-validation accuracy; the seed depends on the run seed and ``index``."""
        seed = derive_seed(self.seed, "candidate", index)
        stage = self.protocol.candidate
        model = build_model(self.space, arch, stage, self.device, seed)
        result = train_network(model, stage, self.data.search_train, self.data.search_val, seed,
                               description=f"candidate {index}", show_progress=self.show_progress)
        return result.accuracy


class Strategy(ABC):
    """Base of every search method. Subclasses set the class attributes and implement
    :meth:`budget`, :meth:`step` and :meth:`result`; they keep any extra state in
    attributes listed in ``state_fields`` (JSON-able values)."""

    name: ClassVar[str]
    strategy_class: ClassVar[str]
    summary: ClassVar[str]
    spaces: ClassVar[tuple[str, ...]] = ("cell",)
    published: ClassVar[tuple[tuple[str, str], ...]] = ()
    """(method, variant) rows of baselines/published_results.csv this method reproduces."""
    state_fields: ClassVar[tuple[str, ...]] = ()

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

    def steps_done(self) -> int:
        return len(self.trials)

    def finished(self) -> bool:
        return self.steps_done() >= self.budget()

    def run(self) -> SearchResult:
        self.status = "running"
        with progress_bar(total=self.budget(), initial=self.steps_done(), desc=f"search {self.name}",
                          unit="step", enabled=self.context.show_progress) as bar:
            while not self.finished():
                self.step()
                self.context.on_checkpoint(self.state_dict())
                bar.update()
        self.status = "finished"
        return self.result()

    # -- black-box helpers ---------------------------------------------------------
    def evaluate(self, arch: Hashable) -> Trial:
        """Train a candidate and record the trial; a failure becomes a trial with its error."""
        index = len(self.trials)
        start = time.perf_counter()
        try:
            val_acc, error = self.context.train_candidate(arch, index), None
        except NasbenchError:
            raise
        except Exception as err:  # a failed candidate is data, not the end of the search
            val_acc, error = None, "".join(traceback.format_exception_only(err)).strip()
        trial = Trial(index, self.context.space.to_dict(arch), val_acc, time.perf_counter() - start, error)
        self.trials.append(trial)
        self.context.on_trial(trial)
        return trial

    def best_trial(self) -> Trial:
        scored = [t for t in self.trials if t.val_acc is not None]
        if not scored:
            errors = "; ".join(sorted({t.error for t in self.trials if t.error})) or "no candidate was evaluated"
            raise RuntimeError(f"{self.name}: every candidate failed: {errors}")
        return max(scored, key=lambda t: (t.val_acc, -t.index))

    # -- state ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        return {
            "rng": [version, list(internal), gauss],
            "trials": [asdict(t) for t in self.trials],
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
