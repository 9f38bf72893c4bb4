"""One (method, seed) run as a task: search, then final training, wherever the executor
puts it. It writes nothing: what must be stored (trials, search checkpoints, epoch
checkpoints, the outcome) goes to the driver, which owns the store, as messages."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import torch

from nasbench.corpus import Corpus
from nasbench.data import SplitData
from nasbench.errors import NasbenchError
from nasbench.executor import Executor, Mailbox
from nasbench.hardware.constraint import Constraint
from nasbench.hardware.counting import AUXILIARY_PREFIX, count_flops, count_params
from nasbench.hardware.profiler import measure_on_table_device
from nasbench.language_model import (
    build_seeded_language_model,
    evaluate_perplexity,
    flops_per_token,
    train_language_model,
)
from nasbench.numerics import configure_numerics
from nasbench.precision import Precision
from nasbench.protocol import Protocol
from nasbench.provenance import stored_provenance
from nasbench.spaces import get_space
from nasbench.store import RunOutcome, SharedStage
from nasbench.store.lifecycle import error_line
from nasbench.strategies import get_strategy
from nasbench.strategies.context import SearchContext
from nasbench.training import build_model, train_network
from nasbench.types import (
    Checkpoint,
    Provenance,
    SearchResult,
    TensorState,
    Trial,
    derive_seed,
)

SEARCH, FINAL = "search", "final training"


# -- messages to the driver -----------------------------------------------------------
@dataclass(frozen=True)
class TrialDone:
    run_id: int
    trial: Trial


@dataclass(frozen=True)
class SearchSaved:
    """The search's checkpoint after a step (its tensors serialised on the way)."""

    run_id: int
    checkpoint: Checkpoint
    search_seconds: float
    steps: int
    budget: int


@dataclass(frozen=True)
class StageShared:
    """The method's shared stage, just completed (``Strategy.shared_stage``), to keep under ``key``."""

    run_id: int
    key: str
    checkpoint: Checkpoint
    seconds: float


@dataclass(frozen=True)
class StageSaved:
    """A training's epoch checkpoint (``label``: ``final``, ``candidate <index>``)."""

    run_id: int
    label: str
    state: dict[str, Any]
    epochs: int


@dataclass(frozen=True)
class StageBegins:
    run_id: int
    stage: str
    counts: bool
    """Its time is measured against the estimate (not where it resumes from a checkpoint)."""


@dataclass(frozen=True)
class Said:
    run_id: int
    text: str


# -- the task -----------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """Everything a run's task needs, read from the store by the driver: which run, and
    where an earlier attempt left it (search checkpoint, epoch checkpoints)."""

    run_id: int
    method: str
    space: str
    describe: str
    protocol: Protocol
    seed: int
    constraint: Constraint | None
    keep_weights: bool
    show_progress: bool
    saved: Checkpoint | None
    """The search checkpoint to restore (None: start the search)."""
    elapsed_before: float
    stage_states: dict[str, dict[str, Any]]
    """Epoch checkpoints the store holds, by label."""
    resumed: str | None = None
    """``resume`` (from ``saved``), ``restart`` (stopped before its first checkpoint), None (new)."""
    shared_key: str | None = None
    """Where the method's shared stage is kept (None: the method has none)."""
    shared: SharedStage | None = None
    """Another run's shared stage to start from instead of computing it (only without ``saved``)."""
    compile: bool = False
    """torch.compile the final and candidate training (:attr:`RunRequest.compile`)."""


@dataclass(frozen=True)
class RunDone:
    outcome: RunOutcome
    weights: TensorState | None
    provenance: Provenance | None = None
    """Where the task ran (another machine than the driver's on a cluster)."""


@dataclass(frozen=True)
class RunFailed:
    error: str
    stop: bool = False
    """A :class:`NasbenchError` (bad input, missing data): it ends the command."""


def run_task(spec: RunSpec, data: SplitData | Corpus, device: str | None, mailbox: Mailbox,
             executor: Executor) -> RunDone | RunFailed:
    """Run ``spec`` on ``device`` (None: this worker's GPU if it was given one, else the
    CPU); a failure is returned, not raised, so that it reaches the driver whole."""
    configure_numerics()
    where = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if where.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes per network: let cuDNN pick its kernels once
    try:
        return _run(spec, data.to(where), where, mailbox, executor)
    except NasbenchError as err:
        return RunFailed(str(err), stop=True)
    except Exception as err:
        return RunFailed(error_line(err))


def _run(spec: RunSpec, data: SplitData | Corpus, device: torch.device, mailbox: Mailbox, executor: Executor) -> RunDone:
    space = get_space(spec.space, spec.protocol)
    cls = get_strategy(spec.method).for_task(space.task)
    candidates = executor if device.type == "cpu" else None  # on a GPU: its candidates on the same GPU, here
    context = SearchContext(space=space, protocol=spec.protocol, seed=spec.seed, data=data, device=device,
                            show_progress=spec.show_progress, constraint=spec.constraint, compile=spec.compile,
                            **({"executor": candidates} if candidates is not None else {}))
    strategy = cls(context)
    if spec.saved is not None:
        strategy.restore(spec.saved)
    reused = spec.saved is None and _start_after_shared(spec, strategy, device, mailbox)
    _say_resumed(spec, strategy, mailbox)
    started = time.perf_counter()
    elapsed_before = spec.elapsed_before + (spec.shared.seconds if reused else 0.0)

    def search_seconds() -> float:
        return elapsed_before + time.perf_counter() - started

    context.on_trial = lambda trial: mailbox.post(TrialDone(spec.run_id, trial))
    context.on_checkpoint = lambda checkpoint: mailbox.post(
        SearchSaved(spec.run_id, checkpoint, search_seconds(), strategy.steps_done(), strategy.budget()))
    context.epoch_checkpoint = lambda label, genotype: MailedEpochs.of(spec, mailbox, label, genotype)
    if spec.shared_key is not None:
        context.on_shared_stage = lambda checkpoint: mailbox.post(
            StageShared(spec.run_id, spec.shared_key, checkpoint, search_seconds()))
    if not strategy.finished():
        mailbox.post(StageBegins(spec.run_id, SEARCH, counts=strategy.steps_done() == 0))
    result = strategy.run()
    searched = search_seconds()
    mailbox.post(StageBegins(spec.run_id, FINAL, counts="final" not in spec.stage_states))
    eval_start = time.perf_counter()
    final = final_training(spec, space, result.arch, data, device, mailbox)
    model = final.model
    shared_stage = {"shared_stage": {"stage": cls.shared_stage, "run_id": spec.shared.run_id,
                                     "seconds": spec.shared.seconds}} if reused else {}
    outcome = RunOutcome(
        search_seconds=searched, eval_seconds=time.perf_counter() - eval_start + final.earlier_seconds,
        genotype=space.to_dict(result.arch), val_acc=result.val_acc, test_acc=final.test_acc,
        params=count_params(model), flops=final.flops, val_perplexity=result.val_perplexity,
        test_perplexity=final.test_perplexity,
        details=_details(result, spec.constraint, space) | final.details | _precision(spec.protocol) | shared_stage)
    weights = {name: value.detach().cpu() for name, value in model.state_dict().items()
               if not name.startswith(AUXILIARY_PREFIX)} if spec.keep_weights else None
    return RunDone(outcome, weights, stored_provenance(spec.protocol, device))


@dataclass(frozen=True)
class FinalTraining:
    """The found architecture trained by the protocol's final recipe and scored on test."""

    model: Any
    test_acc: float | None
    test_perplexity: float | None
    flops: int
    earlier_seconds: float
    """Seconds of earlier attempts, restored from the final training's checkpoint."""
    details: dict[str, Any]


def final_training(spec: RunSpec, space, arch, data: SplitData | Corpus, device: torch.device,
                   mailbox: Mailbox) -> FinalTraining:
    """Train ``arch`` from scratch by the final recipe of ``space``'s task: an image network
    on train, scored by test accuracy; a language model on the corpus' training split,
    keeping its best validation epoch (DARTS rnn/train.py), scored by test perplexity."""
    seed = derive_seed(spec.seed, "final")
    description = f"final {spec.method} seed {spec.seed}"
    checkpoint = MailedEpochs.of(spec, mailbox, "final", space.to_dict(arch))
    if space.task == "language-model":
        stage = space.settings.stage("final")
        model = build_seeded_language_model(space, arch, stage, data.vocab_size, device, seed)
        trained = train_language_model(model, data.train, data.valid, stage, seed, description, spec.show_progress,
                                       checkpoint)
        test = evaluate_perplexity(model, data.test, space.settings.test_batch_size, stage.bptt)
        switched = next((r.epoch for r in trained.records if r.optimizer == "asgd"), None)
        return FinalTraining(model, None, test, flops_per_token(model), trained.earlier_seconds, {"final_training": {
            "valid_perplexity": trained.best_perplexity, "epochs": len(trained.records), "asgd_from_epoch": switched,
            "corpus_stand_in": data.stand_in}})
    stage = spec.protocol.final
    model = build_model(space, arch, stage, device, seed)
    trained = train_network(model, stage, data.train, data.test, seed, description=description,
                            show_progress=spec.show_progress, checkpoint=checkpoint,
                            precision=spec.protocol.precision, compile=spec.compile)
    return FinalTraining(model, trained.accuracy, None, count_flops(model), trained.earlier_seconds, {})


def _start_after_shared(spec: RunSpec, strategy, device: torch.device, mailbox: Mailbox) -> bool:
    """Start ``strategy`` from the shared stage ``spec`` brings, saying so; whether it did."""
    if spec.shared is None:
        return False
    where, stage = f"{spec.describe} (run {spec.run_id})", strategy.shared_stage
    if not strategy.start_after_stage(spec.shared.checkpoint):
        mailbox.post(Said(spec.run_id, f"{where}: the stored {stage} of run {spec.shared.run_id} was computed on another "
                                       f"kind of device than {device.type}: computing its own"))
        return False
    mailbox.post(Said(spec.run_id, f"{where}: starts from the {stage} run {spec.shared.run_id} computed "
                                   f"({strategy.steps_done()} steps, {spec.shared.seconds:.0f} s), not computing it again"))
    return True


def _say_resumed(spec: RunSpec, strategy, mailbox: Mailbox) -> None:
    done, budget = strategy.steps_done(), strategy.budget()
    where = f"{spec.describe} (run {spec.run_id})"
    if spec.resumed == "restart":
        mailbox.post(Said(spec.run_id, f"restarting {where} from step {done} of {budget} (search): it stopped before its "
                                       "first checkpoint"))
    elif spec.resumed == "resume":
        final = "; the search is done" if done >= budget else ""
        mailbox.post(Said(spec.run_id, f"resuming {where} from step {done} of {budget} (search){final}"))


@dataclass(frozen=True)
class MailedEpochs:
    """The :class:`~nasbench.training.EpochCheckpoint` of one of a run's trainings
    (``label``: ``final``, ``candidate <index>``): it resumes from the newest state this
    command kept (a retried task) or else the store held, and saves by message. A state is
    tagged with the architecture it trains, so that only the same training resumes it."""

    mailbox: Mailbox
    run_id: int
    run: str
    label: str
    genotype: str
    stored: dict[str, Any] | None
    epochs: int

    @classmethod
    def of(cls, spec: RunSpec, mailbox: Mailbox, label: str, genotype: dict[str, Any]) -> "MailedEpochs":
        return cls(mailbox, spec.run_id, spec.describe, label, json.dumps(genotype), spec.stage_states.get(label),
                   stage_epochs(spec, label))

    def load(self) -> dict[str, Any] | None:
        kept = self.mailbox.kept((self.run_id, self.label))
        state = kept.state if kept is not None else self.stored
        if state is None or state.get("genotype") != self.genotype:
            return None
        training = "the final training" if self.label == "final" else self.label
        self.mailbox.post(Said(self.run_id, f"{self.run} (run {self.run_id}): {training} resumes from epoch "
                                            f"{state['epochs']} of {self.epochs}"))
        return state

    def save(self, state: dict[str, Any]) -> None:
        self.mailbox.post(StageSaved(self.run_id, self.label, {**state, "genotype": self.genotype}, self.epochs),
                          keep_as=(self.run_id, self.label))


def stage_epochs(spec: RunSpec, label: str) -> int:
    """Epochs of the training ``label`` names (``final``, ``candidate <index>``) in ``spec``'s run."""
    stage = "final" if label == "final" else "candidate"
    space = get_space(spec.space, spec.protocol)
    if space.task == "language-model":
        return space.settings.stage(stage).epochs
    return (spec.protocol.final if stage == "final" else spec.protocol.candidate).epochs


def _precision(protocol: Protocol) -> dict[str, Any]:
    """Under a low precision, what stayed fp32 in the run (none to record for fp32)."""
    fallbacks = Precision(protocol.precision).fallbacks()
    return {"precision": {"name": protocol.precision, "fp32_operations": fallbacks}} if fallbacks else {}


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
