"""How long ``nasbench run`` will take on this machine, said before it starts.

Nothing here is a constant from another machine: every figure comes from step times
measured now, on the run's device, at the protocol's sizes, on random images (up to
:data:`REPEATS` timed calls, fewer once they took :data:`STEP_BUDGET_S`, after a warm-up
call where :func:`warmup_calls` says one is needed):

* a network of each space a run trains, as the protocol's final and candidate stages build
  it, for one random architecture of the space: one training step (:func:`train_network`
  on one batch) and evaluation per image. Final training is ceil(train images / batch)
  steps per epoch for its epochs, then the test images' evaluation; a candidate the same on
  search-train, then search-validation's evaluation.
* each supernet method's own search step, timed as ``nasbench bench search-step`` times it
  (:func:`~nasbench.bench.time_search_step`), at the protocol's ``[search.supernet]``, and
  a forward pass of its supernet per image.

A run's search is then: none for random-arch; ``candidates`` candidates for every other
method that is not a supernet method (it trains them: random, evolution, pnas, nas-rl,
nasnet, metaqnn); for a supernet method its epochs of ceil(search-train / batch) search
steps, plus each epoch search-validation's accuracy under its weights (the epoch record),
plus its own later phase: random-ws scores ``samples`` paths on up to 10 batches and its
``finalists`` on all of search-validation (forward passes), SPOS recalibrates each path of
its evolution on ``recalibration_images`` and scores it on all of search-validation; FBNet trains its sampled
architectures as candidates; P-DARTS' stages are timed each on its own supernet.
ENAS is marked "~": its timed step is a weight step and a
controller update of one sample, counted per batch, plus a forward pass of a batch per
controller sample of its controller phase; the controller's own (LSTM) work is thus taken
to be what the timed steps' updates cost, over by a forward pass per batch.

Not counted: loading the data, checkpoints, a resource constraint's cost term; candidates
are estimated one at a time (``--workers`` is not modelled), and the random architecture
stands for every candidate and found architecture, so spaces whose architectures differ
much in size (metaqnn, nasrl-macro) estimate more roughly.
"""
from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from nasbench.bench import search_context, time_search_step, time_steps, wall_seconds
from nasbench.data import DeviceSplit
from nasbench.images import NUM_CLASSES
from nasbench.progress import duration
from nasbench.protocol import Protocol, TrainStage
from nasbench.provenance import device_name
from nasbench.spaces import get_space
from nasbench.spaces.base import SearchSpace
from nasbench.spaces.cell.supernet import WeightedSupernet
from nasbench.strategies import get_strategy, method_space
from nasbench.strategies.enas import Enas
from nasbench.strategies.fbnet import Fbnet
from nasbench.strategies.pdarts import Pdarts
from nasbench.strategies.random_search import RandomArchitecture
from nasbench.strategies.random_ws import SCORE_BATCHES, RandomWeightSharing
from nasbench.strategies.spos import Spos
from nasbench.strategies.supernet_search import SupernetSearch
from nasbench.training import build_model, evaluate, train_network

REPEATS = 5
"""Timed calls of a step, at most: five consecutive ProxylessNAS steps hold one of its
architecture steps (every 5th), which its fast steps leave time for."""
STEP_BUDGET_S = 0.5
"""Timing of one step stops once its timed calls took this long: a step of seconds is
timed once, keeping the whole estimate to seconds per method."""


def warmup_calls(device: torch.device) -> int:
    """Untimed calls before a supernet's search step is timed. On a GPU one: its first call
    pays cuDNN's autotuning and CUDA's lazy start. On a CPU none, once a network has run in
    the process (each method's final network is timed first, after a warm-up): the first
    search step then costs what later ones do (a 2-core CPU, one thread, the quick protocol:
    SNAS 2.5, 2.0, 2.4 s; DARTS 2.6, 2.6, 2.5 s; FBNet 1.2, 1.1, 1.1 s), and skipping it
    halves the measuring of the slow steps (second-order DARTS: 7 s each)."""
    return 1 if device.type == "cuda" else 0


@dataclass(frozen=True)
class NetworkTiming:
    step_s: float
    """One training step of a batch."""
    image_s: float
    """Evaluation, per image."""

    def seconds(self, stage: TrainStage, train_images: int, eval_images: int) -> float:
        """``stage``'s training on ``train_images`` and the evaluation of ``eval_images``."""
        return stage.epochs * math.ceil(train_images / stage.batch_size) * self.step_s + eval_images * self.image_s


@dataclass(frozen=True)
class MethodEstimate:
    """One (method, seed) run: its search and its final training, in seconds."""

    search_s: float
    final_s: float
    approximate: bool = False
    """Part of the search is counted by a stated approximation (the module's docstring)."""

    @property
    def seconds(self) -> float:
        return self.search_s + self.final_s


@dataclass(frozen=True)
class Estimate:
    methods: dict[str, MethodEstimate]
    """Per method, one seed."""
    runs: tuple[tuple[str, int], ...]
    """The (method, seed) runs estimated."""
    device: str
    measuring_s: float
    """How long measuring took."""

    @property
    def total_s(self) -> float:
        return sum(self.methods[method].seconds for method, _ in self.runs)

    def stages(self) -> dict[str, tuple[float, float]]:
        """Per method the (search, final training) seconds of one run: what the runner's
        overall progress line counts down."""
        return {name: (m.search_s, m.final_s) for name, m in self.methods.items()}

    def lines(self) -> list[str]:
        """The estimate as a table, then the total."""
        seeds = {name: sum(method == name for method, _ in self.runs) for name in self.methods}
        width = max(len("method"), *map(len, self.methods))
        rows = [f"  {'method':<{width}}  {'search':>8}  {'final':>8}  {'per seed':>8}  {'seeds':>5}  {'total':>8}"]
        for name, m in self.methods.items():
            search = ("~" if m.approximate else "") + duration(m.search_s)
            rows.append(f"  {name:<{width}}  {search:>8}  {duration(m.final_s):>8}  {duration(m.seconds):>8}  "
                        f"{seeds[name]:>5}  {duration(m.seconds * seeds[name]):>8}")
        note = "; ~: partly approximated (nasbench/estimate.py says how)" if any(
            m.approximate for m in self.methods.values()) else ""
        header = f"estimated time of {len(self.runs)} run(s), from steps measured here in {duration(self.measuring_s)}:"
        return [header, *rows, f"total {_about(self.total_s)} on {self.device}{note}"]


def estimate_runs(runs: Sequence[tuple[str, int]], protocol: Protocol, device: torch.device,
                  space: str | None = None) -> Estimate:
    """The time of each (method, seed) run in ``runs`` under ``protocol`` on ``device``,
    each method searching ``space`` (None: its first), measured now (the module's docstring
    says how). The random-number state is left as it was."""
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        measure = _Measure(protocol, device)
        methods = {name: measure.method(name, space) for name in dict.fromkeys(method for method, _ in runs)}
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    return Estimate(methods, tuple(runs), f"{device_name(device)}{threads}", time.perf_counter() - start)


class _Measure:
    """The measurements of one estimate, each network (space and stage) timed once."""

    def __init__(self, protocol: Protocol, device: torch.device):
        self.protocol, self.device = protocol, device
        data = protocol.data
        self.search_train, self.search_val = data.search_train_images, data.search_val_images
        self.networks: dict[tuple[str, TrainStage], NetworkTiming] = {}

    def method(self, name: str, space_name: str | None) -> MethodEstimate:
        cls = get_strategy(name)
        space = get_space(method_space(cls.name, cls.spaces, space_name), self.protocol)
        final = self.network(space, self.protocol.final).seconds(
            self.protocol.final, self.protocol.data.train_images, self.protocol.data.test_images)
        if issubclass(cls, SupernetSearch):
            return self.supernet_search(cls, space, final)
        if issubclass(cls, RandomArchitecture):
            return MethodEstimate(0.0, final)
        return MethodEstimate(self.protocol.search.candidates * self.candidate(space), final)

    def network(self, space: SearchSpace, stage: TrainStage) -> NetworkTiming:
        key = (space.name, stage)
        if key not in self.networks:
            self.networks[key] = self._time_network(space, stage)
        return self.networks[key]

    def candidate(self, space: SearchSpace) -> float:
        stage = self.protocol.candidate
        return self.network(space, stage).seconds(stage, self.search_train, self.search_val)

    def _time_network(self, space: SearchSpace, stage: TrainStage) -> NetworkTiming:
        """A training step of one batch: ``train_network`` for one epoch of one batch (after
        a warm-up call, which also takes the process's first-network set-up), less its
        closing evaluation of that batch, timed alone."""
        model = build_model(space, space.sample(random.Random(0)), stage, self.device, seed=0)
        batch = self.images(stage.batch_size, space)
        one_step = dataclasses.replace(stage, epochs=1)
        precision = self.protocol.precision
        trained = time_steps(lambda _train, _val: train_network(model, one_step, batch, batch, seed=0,
                                                                show_progress=False, precision=precision),
                             batch_size=1, device=self.device, warmup=1, repeats=REPEATS,
                             budget_s=STEP_BUDGET_S)["mean_s"]  # time_steps' own random batches go unused
        evaluation = wall_seconds(lambda: evaluate(model, batch, precision), self.device)
        return NetworkTiming(max(trained - evaluation, evaluation), evaluation / len(batch))  # a step >= its forward

    def supernet_search(self, cls: type[SupernetSearch], space: SearchSpace, final: float) -> MethodEstimate:
        """The search of a supernet method (the module's docstring says what it counts)."""
        budget = self.protocol.search.supernet
        strategy = cls(search_context(budget, self.device, space, self.protocol))
        step = time_search_step(strategy, warmup=warmup_calls(self.device), repeats=REPEATS,
                                budget_s=STEP_BUDGET_S)["mean_s"]  # the mean: what a sum of steps takes
        steps = budget.epochs * math.ceil(self.search_train / budget.batch_size)
        if isinstance(strategy, Spos):  # each path: its batch norm recalibrated, then scored on all of search-val
            settings = strategy.settings
            scored = settings.population * (settings.iterations + 1) * (settings.recalibration_images + self.search_val)
            return MethodEstimate(steps * step + scored * self.forward(strategy, strategy.search_weights()), final)
        if isinstance(strategy, RandomWeightSharing):
            settings = strategy.settings
            scored = (settings.samples * min(self.search_val, SCORE_BATCHES * budget.batch_size)
                      + settings.finalists * self.search_val)
            return MethodEstimate(steps * step + scored * self.forward(strategy, strategy.search_weights()), final)
        if isinstance(strategy, Pdarts):  # each stage's epochs at its own (deeper, sparser) supernet's step and record
            seconds = 0.0
            for stage in range(len(strategy.stage_cells)):
                if stage:
                    strategy.epochs_done += strategy.stage_epochs
                    strategy.advance_stage()
                    step = time_search_step(strategy, warmup=warmup_calls(self.device), repeats=REPEATS,
                                            budget_s=STEP_BUDGET_S)["mean_s"]
                with torch.no_grad():
                    record = self.search_val * self.forward(strategy, strategy.edge_weights())
                seconds += strategy.stage_epochs * (steps // budget.epochs * step + record)
            return MethodEstimate(seconds, final)
        if isinstance(strategy, Enas):
            settings = strategy.settings
            samples = (budget.epochs * settings.controller_steps * settings.controller_aggregate
                       + settings.derive_samples)
            forward = self.forward(strategy, strategy.search_weights())
            batch = min(budget.batch_size, self.search_val)
            return MethodEstimate(steps * step + samples * batch * forward, final, approximate=True)
        with torch.no_grad():
            weights = strategy.record_weights(strategy.edge_weights())
        records = budget.epochs * self.search_val * self.forward(strategy, weights)
        sampled = strategy.samples() * self.candidate(space) if isinstance(strategy, Fbnet) else 0.0
        return MethodEstimate(steps * step + records + sampled, final)

    def forward(self, strategy: SupernetSearch, weights: dict[str, torch.Tensor]) -> float:
        """Seconds per image of evaluating the supernet under ``weights`` (one batch)."""
        images = self.images(self.protocol.search.supernet.batch_size, strategy.context.space)
        model = WeightedSupernet(strategy.supernet, weights, strategy.sparse_weights)
        return wall_seconds(lambda: evaluate(model, images), self.device) / len(images)

    def images(self, count: int, space: SearchSpace) -> DeviceSplit:
        """``count`` random images of the space's input size, with random labels."""
        generator = torch.Generator(device=self.device).manual_seed(0)
        size = (count, 3, space.input_size, space.input_size)
        return DeviceSplit(torch.randint(0, 256, size, dtype=torch.uint8, device=self.device, generator=generator),
                           torch.randint(0, NUM_CLASSES, (count,), device=self.device, generator=generator))


def _about(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 1:
        return "under a minute"
    return f"about {round(minutes)} min" if minutes < 120 else f"about {minutes / 60:.1f} h"
