"""The strategy lifecycle every search method follows.

A strategy owns its budget and status: :meth:`Strategy.run` repeats :meth:`step` until
:meth:`finished`, checkpointing after every step. Its whole state, random-number state
included, is a :class:`Checkpoint`: a JSON-able dict (:meth:`state_dict` /
:meth:`load_state_dict`) and, for methods that train networks during the search, the
tensors JSON cannot hold (:meth:`tensor_state` / :meth:`load_tensor_state`), so a run
stopped at any step continues exactly where it was.
"""
from __future__ import annotations

import importlib
import random
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Hashable

from nasbench.errors import NasbenchError
from nasbench.progress import progress_bar
from nasbench.protocol import Protocol, read_section
from nasbench.strategies.context import SearchContext
from nasbench.types import Checkpoint, SearchResult, TensorState, Trial


class Strategy(ABC):
    """Base of every search method. Subclasses set the class attributes and implement
    :meth:`budget`, :meth:`step` and :meth:`result`; they keep any extra state in
    attributes listed in ``state_fields`` (JSON-able values) and, if they train networks,
    in :meth:`tensor_state`."""

    name: ClassVar[str]
    strategy_class: ClassVar[str]
    summary: ClassVar[str]
    spaces: ClassVar[tuple[str, ...]] = ("cell",)
    state_fields: ClassVar[tuple[str, ...]] = ()
    constraint_forms: ClassVar[dict[str, tuple[float | None, float]]] = {}
    """The :data:`LOSS_FORMS` the method can search under a resource :class:`Constraint` with,
    the first its default, each with its published (weight, exponent); weight None where
    the run must give one. Empty: the method takes no constraint."""
    constraint_settings: ClassVar[dict[str, float]] = {}
    """Named constraint weights the method's paper or code publishes (``--snas-setting``)."""
    protocol_section: ClassVar[str | None] = None
    """The protocol's ``[search.<section>]`` holding this method's own settings, if any."""
    settings_class: ClassVar[type | None] = None
    """The settings dataclass of that section, defined in the method's own file."""
    shared_stage: ClassVar[str | None] = None
    """The name of a first stage whose outcome does not depend on what follows it (SPOS' and
    random-ws' uniformly trained supernet): runs with the same stage name, space, protocol,
    data and seed compute it identically, so one run's stage serves the others
    (:meth:`stage_checkpoint`, :meth:`start_after_stage`). None: the method has none."""

    task_implementations: ClassVar[dict[str, str]] = {}
    """Per task other than images (``language-model``), the ``module:Class`` under
    ``nasbench.strategies`` that runs the method on that task's spaces (DARTS' recurrent
    search is its own loop); the task's spaces are listed in :attr:`spaces`."""

    @classmethod
    def for_task(cls, task: str) -> type["Strategy"]:
        """The class that runs this method on a space of ``task``."""
        target = cls.task_implementations.get(task)
        if target is None:
            return cls
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(f"nasbench.strategies.{module}"), name)

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

    @classmethod
    def read_settings(cls, protocol: Protocol) -> Any:
        """This method's ``[search.<protocol_section>]`` of ``protocol``, parsed and checked, or
        an error saying how to add it; None for a method without settings of its own."""
        if cls.protocol_section is None:
            return None
        return read_section(protocol, f"search.{cls.protocol_section}", cls.settings_class)

    def method_settings(self) -> Any:
        """:meth:`read_settings` of the run's protocol."""
        return self.read_settings(self.context.protocol)

    def steps_done(self) -> int:
        return len(self.trials)

    def finished(self) -> bool:
        return self.steps_done() >= self.budget()

    def run(self) -> SearchResult:
        self.status = "running"
        with progress_bar(total=self.budget(), initial=self.steps_done(), desc=f"search {self.name}",
                          unit="step", enabled=self.context.show_progress) as bar:
            while not self.finished():
                done = self.steps_done()
                self.step()
                self.context.on_checkpoint(self.checkpoint())
                stage = self.stage_checkpoint()
                if stage is not None:
                    self.context.on_shared_stage(stage)
                bar.update(self.steps_done() - done)
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
        trials = [Trial(index, self.context.space.to_dict(arch), outcome.val_acc, outcome.seconds, outcome.error,
                        outcome.val_perplexity)
                  for index, (arch, outcome) in enumerate(zip(archs, outcomes), start=first)]
        for trial in trials:
            self.trials.append(trial)
            self.context.on_trial(trial)
        return trials

    def best_trial(self) -> Trial:
        scored = [t for t in self.trials if t.score is not None]
        if not scored:
            errors = "; ".join(sorted({t.error for t in self.trials if t.error})) or "no candidate was evaluated"
            raise RuntimeError(f"{self.name}: every candidate failed: {errors}")
        return max(scored, key=lambda t: (t.score, -t.index))

    # -- state ---------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.state_dict(), self.tensor_state())

    def restore(self, checkpoint: Checkpoint) -> None:
        self.load_state_dict(checkpoint.state)
        self.load_tensor_state(checkpoint.tensors)

    def stage_checkpoint(self) -> Checkpoint | None:
        """The :attr:`shared_stage`'s outcome (random state included), at the step that
        completes it; None at every other step and for methods without one."""
        return None

    def start_after_stage(self, checkpoint: Checkpoint) -> bool:
        """Continue from another run's :meth:`stage_checkpoint` instead of computing the
        stage; False (nothing changed) where this run cannot use it."""
        raise NotImplementedError(f"{self.name} has no shared stage")

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


def require_tensors(method: str, tensors: TensorState) -> None:
    """Refuse a checkpoint without the tensors a weight-training search resumes from."""
    if not tensors:
        raise NasbenchError(f"{method}: the checkpoint to resume from has no tensors (supernet, optimisers); "
                            "run again with --force to start the search over")
