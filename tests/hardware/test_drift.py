"""Drift-normalised, precision-driven measurement on a simulated machine: the production
sessions, profiler and later measurement, timed by a clock whose speed the test controls and
a backend whose calls cost fixed work on that clock. A build through a mid-build slowdown
gives a normalised table that predicts a later session within 1% and a raw one that is 25%
off; rounds stop at the stated precision or at the time limit, saying which; a noisy build's
table carries its warning, in its file and in the report."""
from __future__ import annotations

import random
from dataclasses import replace
from typing import Callable

import numpy as np
import pytest
import torch

from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.drift import Item, Session, relative_ci
from nasbench.hardware.later import measure_networks
from nasbench.hardware.measure import MeasureSettings, Runner, TorchBackend
from nasbench.hardware.profiler import ProfileRequest, profile
from nasbench.hardware.table import CostTable

CALL_MS, PARAM_MS = 0.01, 1e-4
"""A simulated call costs 10 µs plus 0.1 µs per parameter of the module (at slowness 1)."""
QUIET = MeasureSettings(warmup_window=2, warmup_max_s=0.5, rewarm_calls=1, min_reps=3, min_time_s=0.0, rounds=6,
                        reference_every_s=0.0, reference_window_s=0.05)
"""Settings for the simulated time scale: an item's round takes well under a millisecond, the
reference's 15 ms, so the reference is measured before every item, its window a few items wide."""
UNSEEN = ("DARTS_V2", "NASNet", "AmoebaNet", "PC_DARTS", "ENAS")


class DriftingClock:
    """Simulated time: a call advances it by its cost times the machine's slowness at that
    moment, times a random factor of standard deviation ``jitter``."""

    def __init__(self, slowness: Callable[[float], float] = lambda t: 1.0, jitter: float = 0.0, seed: int = 0):
        self.ns, self.slowness, self.jitter, self.rng = 0, slowness, jitter, random.Random(seed)

    def now_ns(self) -> int:
        return self.ns

    def work(self, ms: float) -> None:
        noise = max(0.2, 1 + self.rng.gauss(0, self.jitter)) if self.jitter else 1.0
        self.ns += int(1e6 * ms * self.slowness(self.ns / 1e9) * noise)


class SimulatedBackend(TorchBackend):
    """The torch backend with every call replaced by work on the simulated clock: a module
    costs :data:`CALL_MS` plus :data:`PARAM_MS` per parameter, so a network costs exactly its
    parts' sum (each less the call overhead) plus one call."""

    def __init__(self, clock: DriftingClock, settings: MeasureSettings = QUIET):
        super().__init__(torch.device("cpu"), 1, 1, settings, clock)

    def prepare(self, module: torch.nn.Module, inputs) -> Runner:
        cost = CALL_MS + PARAM_MS * sum(p.numel() for p in module.parameters())
        return lambda: self.clock.work(cost)

    def harness(self) -> Runner:
        return lambda: self.clock.work(CALL_MS)


def build(space, smoke, tmp_path, clock: DriftingClock, settings: MeasureSettings = QUIET, **request) -> CostTable:
    backend = SimulatedBackend(clock, settings)
    table, _, _ = profile(ProfileRequest(space, smoke, backend, calibrate=4, progress=False, **request), tmp_path)
    return table


def later_errors(space, table: CostTable, slowness: float) -> np.ndarray:
    """Relative errors of ``table``'s predictions, restated at the later session's speed, of
    unseen networks measured later at a constant ``slowness``."""
    archs = [space.zoo()[name].arch for name in UNSEEN]
    later = measure_networks(space, archs, table, SimulatedBackend(DriftingClock(lambda t: slowness), table_settings(table)))
    model = CostModel(table, space, "latency_ms")
    predicted = np.array([model.cost(arch) * later.speed_factor for arch in archs])
    measured = np.array([stats.p50_ms for stats in later.latencies])
    return (predicted - measured) / measured


def table_settings(table: CostTable) -> MeasureSettings:
    """A later session's settings: the build's, drift correction where the table has a reference."""
    return replace(QUIET, drift_correction=table.reference_speed is not None)


def slowed_down_halfway(space, smoke, tmp_path, settings: MeasureSettings) -> tuple[CostTable, CostTable]:
    """A table built at a steady speed, and one built with the machine 1.5x slower from halfway on."""
    steady = build(space, smoke, tmp_path / "steady", DriftingClock(), settings)
    halfway = steady.measurement_stop["seconds"] / 2
    return steady, build(space, smoke, tmp_path / "drifting", DriftingClock(lambda t: 1.0 if t < halfway else 1.5), settings)


def test_a_normalised_table_holds_through_a_mid_build_slowdown_and_a_raw_one_does_not(cell_space, smoke, tmp_path):
    steady, normalised = slowed_down_halfway(cell_space, smoke, tmp_path / "normalised", QUIET)
    _, raw = slowed_down_halfway(cell_space, smoke, tmp_path / "raw", replace(QUIET, drift_correction=False))

    assert raw.reference_speed is None and raw.drift is None
    assert normalised.drift["round_range_pct"] == pytest.approx(50, abs=1)  # the reference saw the slowdown
    for slowness in (1.0, 1.5, 0.8):  # later: the machine back to its speed, still slow, faster than ever
        errors = later_errors(cell_space, normalised, slowness)
        assert np.abs(errors).max() < 0.01, errors
    errors = later_errors(cell_space, raw, 1.0)
    assert np.abs(errors).min() > 0.10, errors  # the raw table is a mix of both speeds
    # the steady machine's table and the normalised one agree, part by part, up to the one speed factor
    ratios = [normalised.entries[k].latency.p50_ms / e.latency.p50_ms for k, e in steady.entries.items()]
    assert np.ptp(ratios) < 0.01 * np.mean(ratios)


def simulated_items(clock: DriftingClock, n: int = 4) -> list[Item]:
    return [Item(f"item-{i}", lambda: clock.work(1.0)) for i in range(n)]


def test_rounds_go_on_until_the_precision_is_reached():
    clock = DriftingClock(jitter=0.05)
    settings = replace(QUIET, rounds=5, precision=0.02, max_time_s=1e6)
    items = simulated_items(clock)
    stop = Session(SimulatedBackend(clock, settings)).run(items, [[(item, 1.0)] for item in items])
    assert stop.reason == "precision" and stop.precision <= 0.02
    assert stop.rounds > 5  # the minimum rounds were not precise enough
    assert min(relative_ci(item.round_p50s()) for item in items) <= stop.precision
    assert "precision ±" in stop.describe() and "reached" in stop.describe()


def test_rounds_stop_at_the_time_limit_and_say_so():
    clock = DriftingClock(jitter=0.05)
    settings = replace(QUIET, rounds=5, precision=0.0001, max_time_s=1.0)
    items = simulated_items(clock)
    stop = Session(SimulatedBackend(clock, settings)).run(items, [[(item, 1.0)] for item in items])
    assert stop.reason == "time limit" and stop.precision > 0.0001
    assert 0.75 < stop.seconds <= 1.05 and stop.rounds > 5
    assert "time limit (1 s" in stop.describe()
    # the minimum rounds always run, whatever the limit
    stop = Session(SimulatedBackend(clock, replace(settings, max_time_s=0.0))).run(items, [])
    assert stop.rounds == 5 and stop.reason == "time limit" and stop.precision is None


def test_a_noisy_table_carries_its_warning_and_the_report_shows_it(cell_space, smoke, tmp_path):
    from nasbench.report.cost_tables import cost_table_rows, cost_tables_markdown

    quiet = build(cell_space, smoke, tmp_path / "quiet", DriftingClock(jitter=0.002))
    assert quiet.warnings == [] and quiet.noise["precision"] <= 0.10
    noisy = build(cell_space, smoke, tmp_path / "noisy", DriftingClock(jitter=0.6, seed=1),
                  replace(QUIET, rounds=4))
    assert any("noise exceeds the tolerance" in w for w in noisy.warnings), noisy.warnings
    assert noisy.noise["across_rounds"]["p95_abs_error_pct"] > 10
    assert CostTable.load(noisy.path).warnings == noisy.warnings  # in the file
    markdown = cost_tables_markdown(cost_table_rows([CostTable.load(quiet.path), CostTable.load(noisy.path)]), tmp_path)
    noisy_section = markdown.split(f"### `{noisy.path}`")[1]
    assert "**Warning:** noise exceeds the tolerance" in noisy_section.split("| Predictor")[0]
    assert "Warning" not in markdown.split(f"### `{quiet.path}`")[1].split("### ")[0]
