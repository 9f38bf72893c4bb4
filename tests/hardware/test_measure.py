"""Latency measurement: percentiles, the minimum count and time a measurement meets, a warm-up that
runs until the timings are steady, and onnxruntime on CUDA refused without its GPU package."""
from __future__ import annotations

import time

import pytest
import torch

from nasbench.hardware.measure import (
    MeasureSettings,
    TorchBackend,
    make_backend,
)


def test_measurement_meets_its_minimum_count_and_time():
    settings = MeasureSettings(warmup_window=2, min_reps=6, min_time_s=0.03, warmup_max_s=0.05)
    backend = TorchBackend(torch.device("cpu"), 1, 1, settings)
    samples = backend.measure(lambda: time.sleep(0.002))
    assert len(samples) >= 6 and sum(samples) >= 30
    assert all(1.9 <= s < 50 for s in samples)


def test_warm_up_runs_until_the_timings_are_steady():
    calls = []

    def run():
        calls.append(1)
        time.sleep(max(1, 10 - len(calls)) / 1000)  # 9, 8, ..., 2 ms, then 1 ms for good

    settings = MeasureSettings(warmup_window=3, warmup_tolerance=0.2, warmup_max_s=5, min_reps=4, min_time_s=0)
    samples = TorchBackend(torch.device("cpu"), 1, 1, settings).measure(run)
    # window medians 8, 5, 2, 1, 1 ms: steady only after the fifth window
    assert len(calls) - len(samples) == 15
    assert sorted(samples)[len(samples) // 2] < 1.5


def test_onnxruntime_on_cuda_without_the_gpu_package_is_refused():
    import onnxruntime

    from nasbench.errors import NasbenchError

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    with pytest.raises(NasbenchError, match="no CUDAExecutionProvider") as refused:
        make_backend("onnxruntime", torch.device("cuda"), 1, 1, MeasureSettings())
    assert "pip install onnxruntime-gpu" in str(refused.value) and "\n" not in str(refused.value)
