"""The driver of a ``nasbench run``: the one process that writes the store.

For every (method, seed): skip it if the store already has it finished (unless
``force``), claim it, find where an earlier attempt stopped, and hand the run to the
executor as a task (:mod:`.task`); store what its messages carry (trials, checkpoints)
as they come and its outcome when it ends. In-process the task runs inline, one run after
another; on Ray every run is submitted at once and Ray runs as many as the resources
hold. A task whose worker dies is resumed from the store, up to :data:`ATTEMPTS` times.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from nasbench.corpus import Corpus
from nasbench.data import SplitData
from nasbench.errors import ConfigError, NasbenchError
from nasbench.executor import Executor, TaskLost, make_executor
from nasbench.progress import duration, progress_bar
from nasbench.protocol import Protocol
from nasbench.provenance import resolve_device, stored_provenance
from nasbench.runner.request import (
    RunRequest,
    check_method_section,
    run_record,
    run_variant,
)
from nasbench.runner.task import (
    FINAL,
    SEARCH,
    RunDone,
    RunFailed,
    RunSpec,
    Said,
    SearchSaved,
    StageBegins,
    StageSaved,
    StageShared,
    TrialDone,
    run_task,
)
from nasbench.spaces import space_class
from nasbench.store import (
    UNFINISHED,
    Claim,
    ClaimHeld,
    RunKey,
    RunStart,
    Store,
    check_store_path,
    shared_stage_key,
)
from nasbench.store.lifecycle import error_line
from nasbench.strategies import check_protocol, get_strategy, method_space
from nasbench.types import Checkpoint

ATTEMPTS = 3
"""Times a run whose worker died is resumed before it is stored as failed."""


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
    for cls in strategies:
        if request.constraint is not None and request.constraint.form not in cls.constraint_forms:
            raise NasbenchError(f"method {cls.name} cannot search under a {request.constraint.form} resource constraint")
        _check_precision(request.protocol, method_space(cls.name, cls.spaces, request.space))
    check_store_path(request.store_path, write=True)
    driver: list[Driver] = []
    executor = make_executor(request.executor, workers=request.workers, address=request.address,
                             resources=request.resources, handle=lambda message: driver[0].handle(message))
    try:
        local = not executor.remote
        where = request.device if local else resolve_device("cpu")
        data = request.dataset.to(where) if isinstance(request.dataset, Corpus) else \
            SplitData.for_config(request.dataset, request.protocol.data, where)
        started = time.perf_counter()
        with Store(request.store_path) as store:
            planned = [(cls, RunKey(cls.name, seed, request.protocol.hash, request.dataset.identity,
                                    run_variant(cls, method_space(cls.name, cls.spaces, request.space), request.constraint)))
                       for cls in strategies for seed in request.seeds]
            todo = [(key.method, key.seed) for _, key in planned
                    if request.force or store.find(key, ("finished",)) is None]
            overall = Overall(len(planned), plan(todo) if todo else None, todo, say, started, concurrent=not local)
            driver.append(Driver(store, request, executor, executor.share(data), str(request.device) if local else None,
                                 emit, say, overall))
            driver[0].run(planned)
            return driver[0].tally
    finally:
        executor.close()


def _check_precision(protocol: Protocol, space: str) -> None:
    """Mixed precision trains image networks only: the language models' AWD-LSTM recipe
    (ASGD, per-window learning rates) has no autocast path."""
    if protocol.precision != "fp32" and space_class(space).task == "language-model":
        raise ConfigError(f"protocol {protocol.name}: precision {protocol.precision} is for image spaces; the "
                          f"{space} space's language models train in fp32 (set precision = \"fp32\")")


@dataclass
class Job:
    """A run the driver has claimed and handed to the executor."""

    index: int
    cls: Any
    key: RunKey
    claim: Claim
    release: ExitStack
    run_id: int = 0
    attempts: int = 1
    bar: Any = None


@dataclass
class Driver:
    store: Store
    request: RunRequest
    executor: Executor
    data: Any
    """The splits as every task takes them (on Ray: a reference into the object store)."""
    device: str | None
    emit: Callable[[dict[str, Any]], None]
    say: Callable[[str], None]
    overall: "Overall"
    tally: Tally = field(default_factory=Tally)
    jobs: dict[int, Job] = field(default_factory=dict)
    """By run id."""
    in_flight: list[tuple[Any, Job]] = field(default_factory=list)

    @property
    def bars(self) -> bool:
        """The driver draws the tasks' progress (on Ray; in-process they draw their own)."""
        return self.executor.remote and self.request.show_progress

    def run(self, planned: list[tuple[Any, RunKey]]) -> None:
        try:
            for index, (cls, key) in enumerate(planned, start=1):
                job = self.open(index, cls, key)
                if job is not None:
                    self.submit(job)
                self.collect(timeout=0)
            while self.in_flight:
                self.collect(timeout=1.0)
        except BaseException as err:
            self.abandon(err)
            raise

    def open(self, index: int, cls, key: RunKey) -> Job | None:
        """Claim ``key`` and find where it stands; None where it needs no task."""
        if self._emit_stored(cls, key):
            return None
        release = ExitStack()
        try:
            claim = release.enter_context(self.store.claimed(key))
        except ClaimHeld as held:
            self.tally.held += 1
            self.say(f"{key.describe()} is being run by {held.holder.describe()}: left to it; run the same "
                     "command again once it is done for its result")
            self.emit({"method": cls.name, "seed": key.seed, "variant": key.variant, "status": "held",
                       "holder": held.holder.describe()})
            self.overall.end(key, finished=False)
            return None
        try:
            if self._emit_stored(cls, key):  # as it is now: a rival may have finished it
                release.close()
                return None
        except BaseException:
            release.close()
            raise
        return Job(index, cls, key, claim, release)

    def _emit_stored(self, cls, key: RunKey) -> bool:
        """Emit ``key``'s finished run, to be returned instead of running it (not under
        ``force``), checked against the method's own settings; whether there was one."""
        done = self.store.find(key, ("finished",))
        if done is None or self.request.force:
            return False
        check_method_section(cls, done, self.request.protocol)
        self.emit({**run_record(done), "cached": True})
        self.overall.end(key, finished=False)
        return True

    def submit(self, job: Job) -> None:
        try:
            spec = self.prepare(job)
        except BaseException:
            job.release.close()
            raise
        self.jobs[job.run_id] = job
        try:
            pending = self.executor.submit(run_task, spec, self.data, self.device, self.executor.mailbox,
                                           self.executor.for_tasks())
        except BaseException:  # Ctrl-C in a task run inline: abandon() leaves the run resumable
            self.in_flight.append((None, job))
            raise
        self.in_flight.append((pending, job))

    def prepare(self, job: Job) -> RunSpec:
        """The task of ``job``: from the stored attempt it continues (the newest unfinished
        one, or, stopped before its first checkpoint, started over in its own row; under
        ``force`` only one begun after the stored result it replaces), else a new one; a new
        one starts from the method's shared stage where another run kept it (not under ``force``)."""
        request, key, cls = self.request, job.key, job.cls
        space = method_space(cls.name, cls.spaces, request.space)
        previous = self.store.find(key, UNFINISHED)
        if previous is not None and request.force:
            done = self.store.find(key, ("finished",))
            previous = None if done is not None and done["id"] > previous["id"] else previous
        provenance = stored_provenance(request.protocol, request.device)
        saved, elapsed, resumed = None, 0.0, None
        if previous is None:
            job.run_id = self.store.start(RunStart(key=key, strategy_class=cls.strategy_class, space=space,
                                                   provenance=provenance))
        elif not previous["state_json"]:
            job.run_id = previous["id"]
            self.store.restart(job.run_id, provenance)
            resumed = "restart"
        else:
            job.run_id = previous["id"]
            check_method_section(cls, previous, request.protocol)
            saved = Checkpoint(json.loads(previous["state_json"]), self.store.checkpoint_tensors(job.run_id))
            self.store.resume(job.run_id)
            elapsed, resumed = previous["search_seconds"] or 0.0, "resume"
        stages = {label: self.store.stage_state(job.run_id, label) for label in self.store.stage_epochs(job.run_id)}
        shared_key = None if cls.shared_stage is None else shared_stage_key(
            cls.shared_stage, space, key.protocol_hash, key.data, key.seed)
        shared = None if shared_key is None or saved is not None or request.force else self.store.shared_stage(shared_key)
        return RunSpec(run_id=job.run_id, method=cls.name, space=space, describe=key.describe(),
                       protocol=request.protocol, seed=key.seed, constraint=request.constraint,
                       keep_weights=request.keep_weights, show_progress=request.show_progress and not self.executor.remote,
                       saved=saved, elapsed_before=elapsed, stage_states=stages, resumed=resumed,
                       shared_key=shared_key, shared=shared, compile=request.compile)

    def collect(self, timeout: float) -> None:
        """Store the outcome of every task that ended (waiting up to ``timeout`` for one)."""
        if not self.in_flight:
            return
        done = self.executor.wait([pending for pending, _ in self.in_flight], timeout)
        for pending in done:
            (job,) = [job for other, job in self.in_flight if other is pending]
            self.in_flight = [(other, j) for other, j in self.in_flight if other is not pending]
            self.finish(job, pending)

    def finish(self, job: Job, pending: Any) -> None:
        try:
            result = self.executor.result(pending)
        except TaskLost as lost:
            if job.attempts < ATTEMPTS:
                job.attempts += 1
                self.say(f"{job.key.describe()} (run {job.run_id}): its worker was lost ({lost}); resuming it "
                         f"from the store (attempt {job.attempts} of {ATTEMPTS})")
                self.submit(job)
                return
            result = RunFailed(f"its worker was lost {ATTEMPTS} times, the last: {lost}")
        try:
            job.claim.check()
            if isinstance(result, RunDone):
                if result.provenance is not None:
                    self.store.record_provenance(job.run_id, result.provenance)
                self.store.finish(job.run_id, result.outcome, result.weights)
                self.overall.end(job.key, finished=True)
                self.emit({**run_record(self.store.find(job.key, ("finished",))), "cached": False,
                           "run_id": job.run_id})
                return
            self.store.fail(job.run_id, result.error, "failed")
            self.overall.end(job.key, finished=False)
            if result.stop:
                raise NasbenchError(result.error)
            self.tally.failed += 1
            self.emit({"method": job.cls.name, "seed": job.key.seed, "status": "failed", "error": result.error})
        finally:
            self.close(job)

    def close(self, job: Job) -> None:
        self.jobs.pop(job.run_id, None)
        self.executor.forget((job.run_id, "final"))
        if job.bar is not None:
            job.bar.close()
        job.release.close()

    def abandon(self, err: BaseException) -> None:
        """Leave every run still in flight as the same command resumes it."""
        interrupted = isinstance(err, KeyboardInterrupt)
        for _, job in self.in_flight:
            if not job.claim.lost:
                self.store.fail(job.run_id, "interrupted by the user" if interrupted else
                                f"stopped with the command: {error_line(err)}", "interrupted" if interrupted else "failed")
            self.close(job)
        self.in_flight = []

    def handle(self, message: Any) -> None:
        """Store what a task sent (the claim checked before each write) and show its progress."""
        job = self.jobs.get(message.run_id)
        if job is None:
            return
        if isinstance(message, TrialDone):
            self.store.add_trial(job.run_id, message.trial)
            self.executor.forget((job.run_id, f"candidate {message.trial.index}"))
        elif isinstance(message, SearchSaved):
            job.claim.check()
            self.store.checkpoint(job.run_id, message.checkpoint.state, message.search_seconds,
                                  message.checkpoint.tensors)
            self.show(job, "search", message.steps, message.budget, "step")
        elif isinstance(message, StageShared):
            job.claim.check()
            self.store.keep_shared_stage(message.key, job.run_id, message.seconds, message.checkpoint)
        elif isinstance(message, StageSaved):
            job.claim.check()
            self.store.save_stage(job.run_id, message.label, message.state)
            self.show(job, message.label, message.state["epochs"], message.epochs, "epoch")
        elif isinstance(message, StageBegins):
            self.overall.stage(job.index, job.key, message.stage, message.counts)
        elif isinstance(message, Said):
            self.say(message.text)

    def show(self, job: Job, what: str, done: int, total: int, unit: str) -> None:
        """The task's own progress line, on Ray (in-process its bars are its own)."""
        if not self.bars:
            return
        desc = f"{job.key.method} seed {job.key.seed}: {what}"
        if job.bar is None or job.bar.total != total or job.bar.desc.rstrip(": ") != desc:
            if job.bar is not None:
                job.bar.close()
            # no rate or bar: the driver hears of each step or epoch only once it is done
            job.bar = progress_bar(total=total, desc=desc, unit=unit,
                                   bar_format=f"{{desc}}: {{n_fmt}}/{{total_fmt}} {unit}s done")
        job.bar.n = done
        job.bar.refresh()


class Overall:
    """The progress line of the whole command, said as each run begins a stage:
    ``[3/16] darts seed 0: search (elapsed 4m12s, about 21m left)``: the run's place among
    the command's runs, the time since its work began (measuring included) and, with an
    estimate, what is left: the estimated seconds of the stages not yet done (the one
    beginning included) times the pace so far, the actual seconds of the stages done in
    this command over their estimates (1 before the first; a failed run's last stage and
    a search resumed from a checkpoint do not count). Runs in flight at once each have
    their stage under way."""

    def __init__(self, runs: int, estimate: Mapping[str, tuple[float, float]] | None,
                 todo: list[tuple[str, int]], say: Callable[[str], None], started: float, concurrent: bool = False):
        self.runs, self.estimate, self.say, self.started, self.concurrent = runs, estimate, say, started, concurrent
        self.left = {run: sum(estimate[run[0]]) for run in todo} if estimate else {}
        """Estimated seconds still to come, by (method, seed)."""
        self.spent = self.expected = 0.0
        self.current: dict[RunKey, tuple[float, float]] = {}
        """(estimated seconds, start) of each run's stage under way, where it counts for the pace."""
        self.ended = 0
        self.active: set[RunKey] = set()
        """Runs begun and not ended (counted where runs go at once)."""

    def stage(self, index: int, key: RunKey, stage: str, counts: bool = True) -> None:
        """Say that the ``index``-th run, ``key``, begins ``stage`` (:data:`SEARCH`,
        :data:`FINAL`); ``counts``: its time is measured against the estimate."""
        self._close(key, finished=True)
        now = time.perf_counter()
        text = f"[{index}/{self.runs}] {key.method} seed {key.seed}: {stage} (elapsed {duration(now - self.started)}"
        if self.concurrent:
            self.active.add(key)
            text += f", {self.ended} of {self.runs} done, {len(self.active)} under way"
        if self.estimate is not None:
            search, final = self.estimate[key.method]
            self.left[key.method, key.seed] = final if stage == FINAL else search + final
            if counts:
                self.current[key] = (final if stage == FINAL else search, now)
            text += f", about {duration(sum(self.left.values()) * self.pace())} left"
        self.say(text + ")")

    def end(self, key: RunKey, finished: bool) -> None:
        """The run ``key`` is over; ``finished``: it finished its final training."""
        self._close(key, finished)
        self.left.pop((key.method, key.seed), None)
        self.active.discard(key)
        self.ended += 1

    def pace(self) -> float:
        return self.spent / self.expected if self.expected > 0 else 1.0

    def _close(self, key: RunKey, finished: bool) -> None:
        expected, start = self.current.pop(key, (0.0, 0.0))
        if expected and finished:
            self.spent += time.perf_counter() - start
            self.expected += expected


__all__ = ["ATTEMPTS", "FINAL", "SEARCH", "Driver", "Overall", "Plan", "Tally", "execute"]
