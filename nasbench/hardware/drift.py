"""Drift-normalised, precision-driven measurement sessions.

A shared machine's speed moves by ±10% within seconds and differs between processes, so a
latency means little without the machine's speed at the moment it was taken. A session
measures a fixed reference workload between its items, every ``reference_every_s`` seconds;
each round of an item is divided by its speed factor (the median of the reference's
measurements around it, over the session's median one), so that every latency of the session
is stated at one speed, the session's reference speed, and a later session can restate it at
its own.

Rounds go on after the minimum until the watched figures are known to the stated precision
or the time limit would pass, and the session's :class:`Stop` says which.
"""
from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from nasbench.hardware.measure import Backend, Runner, collector_paused
from nasbench.hardware.table import LatencyStats
from nasbench.progress import progress_bar

REFERENCE_WORKLOAD = ("nasbench-reference/2: 8 cells in miniature on a batch of 16x16x16 inputs (each: conv 3x3 16>16, "
                      "batch norm, ReLU, plus depthwise 3x3 and pointwise 1x1 convs), 4x4 average pool, linear 256>64; "
                      "weights from seed 0")
"""What the reference workload is; a table's ``reference_speed`` names it, so a changed workload shows."""
CI_FACTOR = 1.96 * 1.2533 * 1.4826
"""95% confidence half-width of a median from the median absolute deviation: z, the standard
error of a median over that of a mean (normal samples), and the MAD's scale to a standard deviation."""
WATCHED_QUANTILE = 90
"""A session's precision is this percentile of its watched figures' confidence half-widths."""


class _MiniCell(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(16, 16, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(16)
        self.depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
        self.pointwise = nn.Conv2d(16, 16, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.norm(self.conv(x)))
        return y + self.pointwise(self.depthwise(y))


class ReferenceWorkload(nn.Module):
    """The fixed workload whose speed stands for the machine's: a network in miniature, whose
    calls, like the networks', are dispatch as much as arithmetic and last milliseconds (at
    batch 1 on a 2-core VM, 1-2 ms), so that they are slowed down as the networks are, by
    other processes taking the CPU too (a 0.1 ms workload's median call is not: under such
    load here it slowed by 15% while the networks slowed 4x). Weights of 90 KB."""

    CHANNELS, SIZE = 16, 16

    def __init__(self) -> None:
        super().__init__()
        self.cells = nn.Sequential(*(_MiniCell() for _ in range(8)))
        self.linear = nn.Linear(self.CHANNELS * 4 * 4, 64)
        generator = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(0.1 * torch.randn(parameter.shape, generator=generator))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(nn.functional.avg_pool2d(self.cells(x), 4).flatten(1))


@dataclass
class Item:
    """Something timed in every round of a session: a table part, a whole network, the harness."""

    name: str
    run: Runner
    rounds: list[list[float]] = field(default_factory=list)
    """Milliseconds per call, as timed, per round."""
    spans: list[tuple[float, float]] = field(default_factory=list)
    """Start and end of each round's timing, in seconds since the session began."""
    factors: list[float] = field(default_factory=list)
    """Each round's speed factor: the reference's time then over the session's reference time
    (all 1 without drift correction)."""

    def normalised(self) -> list[list[float]]:
        return [[s / f for s in samples] for samples, f in zip(self.rounds, self.factors)]

    def stats(self) -> LatencyStats:
        """At the session's reference speed: the samples of all rounds, each divided by its round's factor."""
        return LatencyStats.of([s for samples in self.normalised() for s in samples])

    def raw_stats(self) -> LatencyStats:
        return LatencyStats.of([s for samples in self.rounds for s in samples])

    def round_p50s(self) -> np.ndarray:
        return np.array([np.median(samples) for samples in self.normalised()])

    def halves(self) -> tuple[float, float] | None:
        """p50 of the even and of the odd rounds (normalised): two independent measurements."""
        if len(self.rounds) < 2:
            return None
        rounds = self.normalised()
        return tuple(float(np.median([s for r in rounds[start::2] for s in r])) for start in (0, 1))


Watch = Sequence[tuple[Item, float]]
"""A figure the precision is judged on: per round, the weighted sum of its items' p50s (a whole
network alone; or its parts, less the harness overhead once per part but one)."""


def relative_ci(values: Sequence[float]) -> float | None:
    """Half-width of the 95% confidence interval of the median of ``values`` as a share of it,
    from their median absolute deviation (robust to the odd disturbed round); None below 3."""
    values = np.asarray(values, dtype=float)
    if len(values) < 3:
        return None
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    return CI_FACTOR * mad / math.sqrt(len(values)) / abs(median)


def precision(watches: Sequence[Watch]) -> float | None:
    """The :data:`WATCHED_QUANTILE` percentile of the watched figures' relative confidence
    half-widths (None before 3 rounds or without watches)."""
    widths = [relative_ci(sum(weight * item.round_p50s() for item, weight in watch)) for watch in watches]
    if not widths or None in widths:
        return None
    return float(np.percentile(widths, WATCHED_QUANTILE))


@dataclass(frozen=True)
class Stop:
    """Why a session stopped measuring, and how far it got."""

    reason: str
    """``precision`` (the target was reached) or ``time limit`` (the next round would have passed it)."""
    rounds: int
    seconds: float
    precision: float | None
    """Reached, as a share (None: fewer than 3 rounds)."""
    precision_target: float
    max_time_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        reached = "not known (fewer than 3 rounds)" if self.precision is None else f"±{100 * self.precision:.1f}%"
        target = f"target ±{100 * self.precision_target:.1f}%"
        if self.reason == "precision":
            return f"precision {reached} reached ({target}) after {self.rounds} rounds in {self.seconds:.0f} s"
        return (f"stopped at the time limit ({self.max_time_s:g} s; the minimum rounds always run) after {self.rounds} "
                f"rounds in {self.seconds:.0f} s, precision {reached} ({target})")


class Session:
    """Items measured round-robin, each round in a fresh random order, with the reference
    workload measured between them where the backend's settings ask for drift correction."""

    def __init__(self, backend: Backend, seed: int = 0, progress: bool = False, desc: str = "measure"):
        self.backend, self.seed, self.progress, self.desc = backend, seed, progress, desc
        settings = backend.settings
        self.reference = None
        if settings.drift_correction:
            shape = (backend.batch_size, ReferenceWorkload.CHANNELS, ReferenceWorkload.SIZE, ReferenceWorkload.SIZE)
            self.reference = backend.prepare(ReferenceWorkload(), backend.inputs([shape], seed=0))
        self.references: list[tuple[float, float]] = []
        """(seconds since the start, p50 ms) of every measurement of the reference."""
        self.round_starts: list[float] = []
        self._started = 0.0

    @property
    def reference_ms(self) -> float | None:
        """The session's reference speed: its median measurement of the reference (None without drift correction)."""
        return float(np.median([ms for _, ms in self.references])) if self.references else None

    def _now(self) -> float:
        return self.backend.seconds() - self._started

    def _reference(self) -> None:
        """Measure the reference workload if it is due (as an item is measured: ``min_reps`` calls and ``min_time_s``)."""
        due = not self.references or self._now() - self.references[-1][0] >= self.backend.settings.reference_every_s
        if self.reference is not None and due:
            begin = self._now()
            samples = self.backend.measure(self.reference, warm=True)
            self.references.append(((begin + self._now()) / 2, float(np.median(samples))))

    def run(self, items: list[Item], watches: Sequence[Watch]) -> Stop:
        """Measure ``items`` until the settings' minimum rounds are done and then the watched
        figures' :func:`precision` reaches its target or the time limit would pass."""
        s, order = self.backend.settings, random.Random(self.seed)
        self._started = self.backend.seconds()
        with progress_bar(total=s.rounds * len(items), desc=self.desc, unit="item", enabled=self.progress) as bar:
            if self.reference is not None:
                self.backend.measure(self.reference)  # warmed up until steady, once
            while True:
                self.round_starts.append(self._now())
                with collector_paused():
                    for item in order.sample(items, len(items)):
                        self._reference()
                        begin = self._now()
                        item.rounds.append(self.backend.measure(item.run, warm=bool(item.rounds)))
                        item.spans.append((begin, self._now()))
                        bar.update()
                    self._reference()
                self._normalise(items)
                done, elapsed, reached = len(self.round_starts), self._now(), precision(watches)
                if done >= s.rounds:
                    if reached is not None and reached <= s.precision:
                        return Stop("precision", done, elapsed, reached, s.precision, s.max_time_s)
                    if elapsed * (done + 1) / done > s.max_time_s:
                        return Stop("time limit", done, elapsed, reached, s.precision, s.max_time_s)
                    bar.total += len(items)
                    bar.refresh()

    def _normalise(self, items: list[Item]) -> None:
        """Every item's round factors: the median measurement of the reference within half the
        window around the round's timing (the nearest one where none is), over the session's median."""
        if self.reference is None:
            for item in items:
                item.factors = [1.0] * len(item.rounds)
            return
        times = np.array([t for t, _ in self.references])
        values = np.array([ms for _, ms in self.references])
        half, overall = self.backend.settings.reference_window_s / 2, self.reference_ms
        for item in items:
            factors = []
            for begin, end in item.spans:
                low, high = np.searchsorted(times, begin - half), np.searchsorted(times, end + half, side="right")
                nearby = values[low:high] if high > low else values[[np.argmin(np.abs(times - begin))]]
                factors.append(float(np.median(nearby)) / overall)
            item.factors = factors

    def reference_record(self) -> dict[str, Any] | None:
        """What a table stores as its ``reference_speed``: the workload and the speed its latencies are stated at."""
        if self.reference is None:
            return None
        s = self.backend.settings
        return {"workload": REFERENCE_WORKLOAD, "ms": self.reference_ms, "batch_size": self.backend.batch_size,
                "every_s": s.reference_every_s, "window_s": s.reference_window_s}

    def drift(self) -> dict[str, Any] | None:
        """The machine's speed over the session, as the reference saw it: the percentiles of its
        measurements, each round's start and median one (rounds without one left out), and how
        far those round medians moved."""
        if self.reference is None:
            return None
        values = np.array([ms for _, ms in self.references])
        ends = self.round_starts[1:] + [math.inf]
        rounds = [(start, [ms for t, ms in self.references if start <= t < end]) for start, end in zip(self.round_starts, ends)]
        starts, medians = [start for start, ms in rounds if ms], [float(np.median(ms)) for _, ms in rounds if ms]
        p10, p50, p90 = np.percentile(values, [10, 50, 90])
        return {"measurements": len(values), "reference_ms_p10": float(p10), "reference_ms_p50": float(p50),
                "reference_ms_p90": float(p90), "round_range_pct": float(100 * (max(medians) / min(medians) - 1)),
                "round_start_s": starts, "round_reference_ms": medians}
