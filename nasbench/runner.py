"""Running methods under a protocol: search, final training, storage.

For every (method, seed): skip it if the store already has it finished (unless
``force``), resume it from its checkpoint if an earlier attempt stopped, otherwise start
it; then final-train the chosen architecture with the protocol's shared recipe on all of
the protocol's training images, score it on the test split, and store the outcome.
"""
from __future__ import annotations

import functools
import json
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nasbench.data import Dataset, SplitData
from nasbench.errors import NasbenchError
from nasbench.hardware.constraint import Constraint
from nasbench.hardware.counting import AUXILIARY_PREFIX, count_flops, count_params
from nasbench.hardware.profiler import measure_on_table_device
from nasbench.numerics import configure_numerics
from nasbench.progress import duration
from nasbench.protocol import Protocol
from nasbench.provenance import stored_provenance
from nasbench.spaces import get_space, space_class
from nasbench.store import (
    UNFINISHED,
    Claim,
    ClaimHeld,
    RunKey,
    RunOutcome,
    RunStart,
    Store,
    check_store_path,
    failure_recorded,
)
from nasbench.strategies import check_protocol, get_strategy
from nasbench.strategies.context import SearchContext
from nasbench.training import build_model, train_network
from nasbench.types import Checkpoint, SearchResult, derive_seed


@dataclass(frozen=True)
class RunRequest:
    methods: tuple[str, ...]
    protocol: Protocol
    seeds: tuple[int, ...]
    dataset: Dataset
    device: torch.device
    store_path: Path
    force: bool = False
    show_progress: bool = True
    constraint: Constraint | None = None
    """A resource constraint for every method (each must accept one); its runs are stored
    as their own variant."""
    space: str | None = None
    """The space every method searches (each must support it); None: each method's own
    first space. A method on another space than its first is stored as its own variant."""
    workers: int = 1
    """Candidates trained at once by the methods that train them from scratch (not part of a
    run's identity: the results do not depend on it)."""
    keep_weights: bool = True
    """Store each run's trained final network, so that export and later evaluation need no
    retraining."""


def method_space(cls, space: str | None) -> str:
    """The space ``cls`` searches in a run asking for ``space``."""
    if space is None:
        return cls.spaces[0]
    if space not in cls.spaces:
        raise NasbenchError(f"method {cls.name} does not search the {space} space (it searches: {', '.join(cls.spaces)})")
    return space


def run_variant(cls, space: str, constraint: Constraint | None) -> str:
    """What tells a run apart from the method's default one: another space, a constraint."""
    parts = ([] if space == cls.spaces[0] else [f"space={space}"]) + ([] if constraint is None else [constraint.variant()])
    return ";".join(parts)


def run_record(row: Any) -> dict[str, Any]:
    """The public JSON view of a stored run (what ``nasbench run --json`` prints)."""
    details = json.loads(row["details_json"] or "{}")
    return {
        "run_id": row["id"],
        "method": row["method"],
        "strategy": row["strategy_class"],
        "space": row["space"],
        "protocol": row["protocol"],
        "protocol_hash": row["protocol_hash"],
        "seed": row["seed"],
        "data": row["data"],
        "variant": row["variant"],
        "status": row["status"],
        "genotype": json.loads(row["genotype_json"]) if row["genotype_json"] else None,
        "val_acc": row["val_acc"],
        "test_acc": row["test_acc"],
        "params": row["params"],
        "flops": row["flops"],
        "flops_convention": "fvcore, 1 multiply-add = 1 FLOP",
        "search_seconds": row["search_seconds"],
        "eval_seconds": row["eval_seconds"],
        "device": row["device"],
        "device_fingerprint": row["device_fingerprint"],
        "git_commit": row["git_commit"],
        "error": row["error"],
        **({"details": details} if details else {}),
    }


@dataclass
class Tally:
    """How the (method, seed) runs of one :func:`execute` ended, beyond those it stored."""

    failed: int = 0
    held: int = 0
    """Left to another live process that holds their claim."""


Plan = Callable[[list[tuple[str, int]]], Mapping[str, tuple[float, float]] | None]
"""Given the (method, seed) runs a command is about to do, each method's estimated
(search, final training) seconds per run, or None."""


def execute(request: RunRequest, emit: Callable[[dict[str, Any]], None],
            say: Callable[[str], None] = lambda text: None, plan: Plan = lambda runs: None) -> Tally:
    """Run every requested (method, seed): ``emit`` gets each one's record, ``say`` a line
    where a run resumes or is left to another process and the :class:`Overall` progress
    line; ``plan`` gets the runs to do (all but those stored) before the first, once the
    request is checked, and its estimate makes the progress line say what is left."""
    strategies = [get_strategy(m) for m in request.methods]  # unknown names fail before any work
    check_protocol(request.protocol)
    configure_numerics()
    for cls in strategies:
        if request.constraint is not None and request.constraint.form not in cls.constraint_forms:
            raise NasbenchError(f"method {cls.name} cannot search under a {request.constraint.form} resource constraint")
        method_space(cls, request.space)
    check_store_path(request.store_path, write=True)
    if request.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes per network: let cuDNN pick its kernels once
    data = SplitData.for_config(request.dataset, request.protocol.data, request.device)
    tally = Tally()
    started = time.perf_counter()
    with Store(request.store_path) as store:
        planned = [(cls, RunKey(cls.name, seed, request.protocol.hash, request.dataset.identity,
                                run_variant(cls, method_space(cls, request.space), request.constraint)))
                   for cls in strategies for seed in request.seeds]
        todo = [(key.method, key.seed) for _, key in planned if request.force or store.find(key, ("finished",)) is None]
        overall = Overall(len(planned), plan(todo) if todo else None, todo, say, started)
        for index, (cls, key) in enumerate(planned, start=1):
            stored = _stored_record(store, request, cls, key)
            if stored is not None:
                emit(stored)
                overall.end(key, finished=False)  # where another process finished it since
                continue
            finished = False
            try:
                with store.claimed(key) as claim:
                    stored = _stored_record(store, request, cls, key)  # as it is now: a rival may have finished it
                    if stored is not None:
                        emit(stored)
                        continue
                    run_id = _run_one(store, request, cls, key, data, claim, say,
                                      functools.partial(overall.stage, index, key))
                    finished = True
            except ClaimHeld as held:
                tally.held += 1
                say(f"{key.describe()} is being run by {held.holder.describe()}: left to it; run the same "
                    "command again once it is done for its result")
                emit({"method": cls.name, "seed": key.seed, "variant": key.variant, "status": "held",
                      "holder": held.holder.describe()})
                continue
            except NasbenchError:
                raise
            except Exception:
                tally.failed += 1
                emit({"method": cls.name, "seed": key.seed, "status": "failed",
                      "error": traceback.format_exc().strip().splitlines()[-1]})
                continue
            finally:
                overall.end(key, finished)
            emit({**run_record(store.find(key, ("finished",))), "cached": False, "run_id": run_id})
    return tally


def _stored_record(store: Store, request: RunRequest, cls, key: RunKey) -> dict[str, Any] | None:
    """The record of ``key``'s finished run, to be returned instead of running it (None
    under ``force`` or where there is none), checked against the method's own settings."""
    done = store.find(key, ("finished",))
    if done is None or request.force:
        return None
    check_method_section(cls, done, request.protocol)
    return {**run_record(done), "cached": True}


SEARCH, FINAL = "search", "final training"


class Overall:
    """The progress line of the whole command, said as each run begins a stage:
    ``[3/16] darts seed 0: search (elapsed 4m12s, about 21m left)``: the run's place among
    the command's runs, the time since its work began (measuring included) and, with an
    estimate, what is left: the estimated seconds of the stages not yet done (the one
    beginning included) times the pace so far, the actual seconds of the stages done in
    this command over their estimates (1 before the first; a failed run's last stage and
    a search resumed from a checkpoint do not count)."""

    def __init__(self, runs: int, estimate: Mapping[str, tuple[float, float]] | None,
                 todo: list[tuple[str, int]], say: Callable[[str], None], started: float):
        self.runs, self.estimate, self.say, self.started = runs, estimate, say, started
        self.left = {run: sum(estimate[run[0]]) for run in todo} if estimate else {}
        """Estimated seconds still to come, by (method, seed)."""
        self.spent = self.expected = 0.0
        self.current: tuple[float, float] | None = None
        """(estimated seconds, start) of the stage under way, where it counts for the pace."""

    def stage(self, index: int, key: RunKey, stage: str, counts: bool = True) -> None:
        """Say that the ``index``-th run, ``key``, begins ``stage`` (:data:`SEARCH`,
        :data:`FINAL`); ``counts``: its time is measured against the estimate."""
        self._close(finished=True)
        now = time.perf_counter()
        text = f"[{index}/{self.runs}] {key.method} seed {key.seed}: {stage} (elapsed {duration(now - self.started)}"
        if self.estimate is not None:
            search, final = self.estimate[key.method]
            self.left[key.method, key.seed] = final if stage == FINAL else search + final
            self.current = (final if stage == FINAL else search, now) if counts else None
            text += f", about {duration(sum(self.left.values()) * self.pace())} left"
        self.say(text + ")")

    def end(self, key: RunKey, finished: bool) -> None:
        """The run ``key`` is over; ``finished``: it finished its final training."""
        self._close(finished)
        self.left.pop((key.method, key.seed), None)

    def pace(self) -> float:
        return self.spent / self.expected if self.expected > 0 else 1.0

    def _close(self, finished: bool) -> None:
        if self.current is not None and finished:
            expected, start = self.current
            self.spent += time.perf_counter() - start
            self.expected += expected
        self.current = None


def check_method_section(cls, row: Any, protocol: Protocol) -> None:
    """Refuse to reuse or resume a stored run made under other settings of the method's
    own protocol section or of its space's layout section (which the protocol hash leaves out)."""
    stored, current = json.loads(row["protocol_json"]), protocol.to_dict()
    own = [f"search.{cls.protocol_section}" if cls.protocol_section else None, space_class(row["space"]).protocol_section]
    for label in filter(None, own):
        old, new = _section_of(stored, label), _section_of(current, label)
        if old != new:
            raise NasbenchError(f"stored run {row['id']} of {cls.name} used [{label}] = {old}, but protocol "
                                f"{protocol.name} now says {new}; use another --store, or --force to replace it")


def _section_of(protocol: dict[str, Any], label: str) -> Any:
    """The ``[<label>]`` table of a protocol as a file holds it (None where it has none)."""
    parent, _, name = label.rpartition(".")
    return (protocol.get(parent, {}) if parent else protocol).get(name)


def _run_one(store: Store, request: RunRequest, cls, key: RunKey, data: SplitData, claim: Claim,
             say: Callable[[str], None], stage: Callable[..., None]) -> int:
    space = get_space(method_space(cls, request.space), request.protocol)
    if space.input_size != data.image_size:
        raise NasbenchError(f"the protocol's {space.name} networks take {space.input_size}-pixel images, the data has "
                            f"{data.image_size}-pixel ones; such a layout is for cost tables (`nasbench profile`), "
                            f"not for runs on this data")
    context = SearchContext(space=space, protocol=request.protocol, seed=key.seed, data=data, device=request.device,
                            show_progress=request.show_progress, constraint=request.constraint,
                            workers=request.workers)
    strategy = cls(context)
    run_id, elapsed_before = _attempt(store, request, cls, key, strategy, say)
    started = time.perf_counter()

    def search_seconds() -> float:
        return elapsed_before + time.perf_counter() - started

    context.on_trial = lambda trial: store.add_trial(run_id, trial)
    def keep(checkpoint: Checkpoint) -> None:
        claim.check()
        store.checkpoint(run_id, checkpoint.state, search_seconds(), checkpoint.tensors)

    context.on_checkpoint = keep

    def epochs_kept(label: str, genotype: dict[str, Any], epochs: int) -> StoredEpochs:
        return StoredEpochs(store, run_id, label, genotype, claim,
                            lambda done: say(f"{key.describe()} (run {run_id}): "
                                             f"{'the final training' if label == 'final' else label} resumes from "
                                             f"epoch {done} of {epochs}"))

    context.epoch_checkpoint = lambda label, genotype: epochs_kept(label, genotype, request.protocol.candidate.epochs)
    with failure_recorded(lambda error, status: store.fail(run_id, error, status)):
        if not strategy.finished():
            stage(SEARCH, counts=strategy.steps_done() == 0)
        result = strategy.run()
        searched = search_seconds()
        stage(FINAL, counts="final" not in store.stage_epochs(run_id))
        eval_start = time.perf_counter()
        final = request.protocol.final
        final_seed = derive_seed(key.seed, "final")
        model = build_model(space, result.arch, final, request.device, final_seed)
        trained = train_network(model, final, data.train, data.test, final_seed,
                                description=f"final {cls.name} seed {key.seed}", show_progress=request.show_progress,
                                checkpoint=epochs_kept("final", space.to_dict(result.arch), final.epochs))
        outcome = RunOutcome(
            search_seconds=searched, eval_seconds=time.perf_counter() - eval_start + trained.earlier_seconds,
            genotype=space.to_dict(result.arch), val_acc=result.val_acc, test_acc=trained.accuracy,
            params=count_params(model), flops=count_flops(model), details=_details(result, request.constraint, space))
        weights = {name: value.detach().cpu() for name, value in model.state_dict().items()
                   if not name.startswith(AUXILIARY_PREFIX)} if request.keep_weights else None
        claim.check()
    store.finish(run_id, outcome, weights)
    return run_id


@dataclass(frozen=True)
class StoredEpochs:
    """The :class:`~nasbench.training.EpochCheckpoint` of one of a run's trainings in the
    store (``label``: ``final``, ``candidate <index>``), tagged with the architecture it
    trains so that a checkpoint is only resumed by the same training."""

    store: Store
    run_id: int
    label: str
    genotype: dict[str, Any]
    claim: Claim
    resumes: Callable[[int], None]
    """Told the epochs done where the training resumes from a checkpoint (said as it loads it)."""

    def load(self) -> dict[str, Any] | None:
        state = self.store.stage_state(self.run_id, self.label)
        if state is None or state.get("genotype") != json.dumps(self.genotype):
            return None
        self.resumes(state["epochs"])
        return state

    def save(self, state: dict[str, Any]) -> None:
        self.claim.check()
        self.store.save_stage(self.run_id, self.label, {**state, "genotype": json.dumps(self.genotype)})


def _attempt(store: Store, request: RunRequest, cls, key: RunKey, strategy, say: Callable[[str], None]) -> tuple[int, float]:
    """The stored attempt this run continues (its id and search seconds so far): the
    newest unfinished one, restored from its checkpoint or, stopped before its first one,
    started over in its own row; under ``force`` only one begun after the stored result
    it replaces (a forced rerun that was stopped). Else a new one."""
    previous = store.find(key, UNFINISHED)
    if previous is not None and request.force:
        done = store.find(key, ("finished",))
        previous = None if done is not None and done["id"] > previous["id"] else previous
    provenance = stored_provenance(request.protocol, request.device)
    if previous is None:
        return store.start(RunStart(key=key, strategy_class=cls.strategy_class, space=strategy.context.space.name,
                                    provenance=provenance)), 0.0
    run_id = previous["id"]
    if not previous["state_json"]:
        store.restart(run_id, provenance)
        say(f"restarting {key.describe()} (run {run_id}) from step 0 of {strategy.budget()} (search): it stopped "
            "before its first checkpoint")
        return run_id, 0.0
    check_method_section(cls, previous, request.protocol)
    strategy.restore(Checkpoint(json.loads(previous["state_json"]), store.checkpoint_tensors(run_id)))
    store.resume(run_id)
    done, budget = strategy.steps_done(), strategy.budget()
    final = "; the search is done" if done >= budget else ""
    say(f"resuming {key.describe()} (run {run_id}) from step {done} of {budget} (search){final}")
    return run_id, previous["search_seconds"] or 0.0


def _details(result: SearchResult, constraint: Constraint | None, space) -> dict[str, Any]:
    """The strategy's details and, under a constraint, the target and the exact cost the
    found architecture achieves on the constraint's table; under a latency constraint also
    its latency measured end to end on the table's device (None, with the reason, on another
    machine), so that a table misleading the search shows."""
    if constraint is None:
        return result.details
    described = constraint.describe(result.arch)
    if constraint.metric == "latency_ms":
        try:
            measured = measure_on_table_device(space, result.arch, constraint.cost_model.table)
            described |= {"measured_ms_p50": measured.p50_ms, "measured_ms_p10_p90": [measured.p10_ms, measured.p90_ms]}
        except NasbenchError as err:
            described |= {"measured_ms_p50": None, "not_measured": str(err)}
    return {**result.details, "constraint": described}
