"""The CUDA timing path of the torch backend, driven on a CPU through a fake accelerator whose
events read a simulated clock: small batches are timed as graph replays (captured once per
runner, replayed once per timed call), larger ones as eager calls, both by the events to the
microsecond; a module that cannot be captured runs eagerly and the conditions say so; a drift
session on top of it states every latency at one speed of the machine. On a machine with CUDA,
the real accelerator's graphs compute what eager calls do, and a host sync falls back."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np
import pytest
import torch
from torch import nn

from nasbench.hardware.accelerator import GraphReplay
from nasbench.hardware.drift import Item, Session
from nasbench.hardware.measure import MeasureSettings, TorchBackend

REPLAY_MS = 0.004
"""What a simulated graph replay costs beyond its work: the launch of one graph."""
QUICK = MeasureSettings(warmup_window=2, warmup_max_s=0.01, rewarm_calls=1, min_reps=3, min_time_s=0.0, rounds=6,
                        reference_every_s=0.0, reference_window_s=0.002)
"""Settings for the simulated time scale (items of milliseconds; the reference measured before
every item, an item's speed read from the references within a millisecond of it)."""


class FakeClock:
    """Simulated time: work advances it by its milliseconds times the machine's slowness then."""

    def __init__(self, slowness: Callable[[float], float] = lambda t: 1.0):
        self.ns, self.slowness = 0, slowness

    def now_ns(self) -> int:
        return self.ns

    def work(self, ms: float) -> None:
        self.ns += round(1e6 * ms * self.slowness(self.ns / 1e9))


class FakeEvent:
    def __init__(self, device: "FakeAccelerator"):
        self.device, self.ns, self.done = device, None, False

    def record(self) -> None:
        self.ns = self.device.clock.now_ns()
        self.device.pending.append(self)

    def elapsed_ms(self, end: "FakeEvent") -> float:
        assert self.done and end.done, "an event read before the device was synchronized"
        return (end.ns - self.ns) / 1e6


class FakeAccelerator:
    """A device on a simulated clock: its events complete at a synchronize; a capture runs the
    call once with ``capturing`` set (a module may refuse it, as a host-syncing op does), and a
    replay costs :data:`REPLAY_MS` plus the call's own work."""

    timer = "fake events"

    def __init__(self, clock: FakeClock):
        self.clock, self.pending, self.capturing = clock, [], False
        self.captures = self.replays = 0

    def synchronize(self) -> None:
        for event in self.pending:
            event.done = True
        self.pending.clear()

    def event(self) -> FakeEvent:
        return FakeEvent(self)

    def capture(self, run):
        self.captures += 1
        self.capturing = True
        try:
            run()
        finally:
            self.capturing = False

        def replay() -> object:
            self.replays += 1
            self.clock.work(REPLAY_MS)
            return run()

        return replay

    def conditions(self) -> dict:
        return {"fake_device": True}


class Work(nn.Module):
    """A module whose call costs ``ms`` on the clock; ``host_sync`` ones refuse capture."""

    def __init__(self, device: FakeAccelerator, ms: float, host_sync: bool = False):
        super().__init__()
        self.device, self.ms, self.host_sync, self.calls = device, ms, host_sync, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.host_sync and self.device.capturing:
            raise RuntimeError("operation not permitted when stream is capturing\n(more detail)")
        self.calls += 1
        self.device.clock.work(self.ms)
        return x


def fake_backend(batch_size: int, settings: MeasureSettings = QUICK, clock: FakeClock | None = None) -> TorchBackend:
    clock = clock or FakeClock()
    return TorchBackend(torch.device("cpu"), 1, batch_size, settings, clock, accelerator=FakeAccelerator(clock))


def prepared(backend: TorchBackend, ms: float, host_sync: bool = False):
    work = Work(backend.accelerator, ms, host_sync)
    return work, backend.prepare(work, backend.inputs([(backend.batch_size, 4)]))


@pytest.mark.parametrize("batch_size", [1, 32])
def test_small_batches_are_timed_as_graph_replays_captured_once(batch_size):
    backend = fake_backend(batch_size)
    device = backend.accelerator
    work, run = prepared(backend, 0.123)
    harness = backend.harness()
    assert device.captures == 2 and work.calls == 1  # the part and the harness, each captured once
    assert backend.time_calls(run, 7) == [REPLAY_MS + 0.123] * 7  # the events, to the nanosecond
    assert device.replays == 7 and work.calls == 8
    samples = backend.measure(run)
    assert device.captures == 2 and device.replays == work.calls - 1 > 7 + len(samples)  # warm-up calls replay too
    assert backend.time_calls(harness, 3) == [REPLAY_MS] * 3
    conditions = backend.conditions()
    assert conditions["timer"] == "fake events" and conditions["cuda_graphs"] is True
    assert conditions["cuda_graph_fallbacks"] == [] and conditions["fake_device"] is True
    assert conditions["measurement"]["cuda_graph_max_batch"] == 32
    assert conditions["measurement"]["timer"] == (f"fake events; batch {batch_size} <= cuda_graph_max_batch 32: "
                                                  "each call a CUDA graph replay")


def test_larger_batches_are_timed_eagerly_by_the_events():
    backend = fake_backend(33)
    device = backend.accelerator
    work, run = prepared(backend, 0.2501)
    assert backend.time_calls(run, 5) == [0.2501] * 5 and backend.time_calls(backend.harness(), 2) == [0.0] * 2
    assert device.captures == device.replays == 0 and work.calls == 5
    conditions = backend.conditions()
    assert conditions["cuda_graphs"] is False and conditions["timer"] == "fake events"
    assert conditions["measurement"]["timer"].endswith("batch 33 > cuda_graph_max_batch 32: eager calls")
    assert fake_backend(64, replace(QUICK, cuda_graph_max_batch=64)).graphs  # the limit is a setting


def test_a_module_that_cannot_be_captured_runs_eagerly_and_the_conditions_say_so():
    backend = fake_backend(1)
    device = backend.accelerator
    with pytest.warns(UserWarning, match=r"Work on \[\(1, 4\)\] cannot be captured as a CUDA graph"):
        refusing, eager = prepared(backend, 0.5, host_sync=True)
    work, replayed = prepared(backend, 0.5)
    assert device.captures == 2
    assert backend.time_calls(eager, 4) == [0.5] * 4 and backend.time_calls(replayed, 4) == [REPLAY_MS + 0.5] * 4
    assert device.replays == 4 and refusing.calls == 4
    assert backend.conditions()["cuda_graph_fallbacks"] == [
        {"module": "Work on [(1, 4)]", "error": "RuntimeError: operation not permitted when stream is capturing"}]


def test_a_drift_session_on_graph_replays_states_latencies_at_one_speed():
    """The machine 1.5x slower after 50 ms: each item's raw timings show it, its normalised
    ones do not, and all are stated at the speed of the session's reference (a captured graph too)."""
    backend = fake_backend(1, clock=FakeClock(lambda t: 1.0 if t < 0.05 else 1.5))
    costs = (1.0, 2.0, 3.0)
    items = [Item(f"work-{ms}", prepared(backend, ms)[1]) for ms in costs]
    session = Session(backend)
    stop = session.run(items, [[(item, 1.0)] for item in items])
    assert stop.rounds == 6 and backend.accelerator.captures == len(costs) + 1  # the reference workload too
    for item in items:
        raw = item.raw_stats()
        assert raw.p90_ms / raw.p10_ms == pytest.approx(1.5, rel=0.01)  # the slowdown came mid-session
    # the reference's own time is one replay, so every item is its cost plus a replay, at the session's speed
    speed = session.reference_ms / REPLAY_MS
    assert speed in (pytest.approx(1.0), pytest.approx(1.5))
    normalised = np.array([item.stats().p50_ms for item in items])
    np.testing.assert_allclose(normalised, [(ms + REPLAY_MS) * speed for ms in costs], rtol=1e-6)


class HostSync(nn.Module):
    """Reads a value back to the host mid-call, which CUDA graph capture forbids."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float(x.sum().item())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run by tools/gpu_check.sh on a lent GPU)")
def test_on_cuda_graph_replays_compute_what_eager_calls_do_and_a_host_sync_runs_eagerly():
    backend = TorchBackend(torch.device("cuda"), 1, 1, QUICK)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    inputs = backend.inputs([(1, 3, 32, 32)])
    run, harness = backend.prepare(net, inputs), backend.harness()
    assert isinstance(run, GraphReplay) and isinstance(harness, GraphReplay)
    with torch.inference_mode():
        torch.testing.assert_close(run(), net(inputs[0].cuda()))
    samples, overhead = backend.time_calls(run, 20), backend.time_calls(harness, 20)
    assert all(0 < s < 5 for s in samples) and np.median(overhead) < np.median(samples)
    with pytest.warns(UserWarning, match=r"HostSync on \[\(1, 3, 32, 32\)\] cannot be captured"):
        eager = backend.prepare(HostSync(), inputs)
    assert not isinstance(eager, GraphReplay) and all(s > 0 for s in backend.time_calls(eager, 5))
    assert backend.time_calls(run, 3)  # the device still works after the refused capture
    conditions = backend.conditions()
    assert conditions["cuda_graphs"] is True and conditions["timer"].startswith("CUDA events")
    assert [f["module"] for f in conditions["cuda_graph_fallbacks"]] == ["HostSync on [(1, 3, 32, 32)]"]
