"""Benchmarks (pytest-benchmark). In the normal suite each runs once as a test; time
them with `python -m pytest tests/test_benchmarks.py --benchmark-enable`.

- batched device-side augmentation against torchvision's per-image transforms, the
  choice the data pipeline rests on;
- cost-table building (counting and a smoke-sized measured build) and lookups;
- a first-order DARTS search step (architecture and weight update) on a small supernet."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from nasbench.bench import random_batch, search_context
from nasbench.data import Augmentation
from nasbench.hardware.cost_model import CostModel
from nasbench.hardware.measure import MeasureSettings, TorchBackend
from nasbench.hardware.profiler import ProfileRequest, counts_table, profile
from nasbench.protocol import SupernetBudget, load_protocol
from nasbench.spaces import get_space
from nasbench.strategies.darts import Darts

BATCH = 256


@pytest.fixture(scope="module")
def images():
    return torch.from_numpy(np.random.default_rng(0).integers(0, 256, (BATCH, 3, 32, 32), dtype=np.uint8))


def test_batched_augmentation(benchmark, images):
    augment = Augmentation(torch.device("cpu"), cutout=16)
    generator = torch.Generator().manual_seed(0)
    out = benchmark(augment, images, generator)
    assert out.shape == (BATCH, 3, 32, 32) and out.dtype == torch.float32


def test_per_image_torchvision_augmentation(benchmark, images):
    """The usual DataLoader-style pipeline, one image at a time, for comparison."""
    from torchvision.transforms import v2

    transform = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True),
                            v2.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))])
    out = benchmark(lambda: torch.stack([transform(image) for image in images]))
    assert out.shape == (BATCH, 3, 32, 32)


@pytest.fixture(scope="module")
def space():
    return get_space("cell")


@pytest.fixture(scope="module")
def flops_model(space):
    return CostModel(counts_table(space, load_protocol("smoke")), space, "flops")


def test_counts_table_building(benchmark, space):
    table = benchmark.pedantic(counts_table, args=(space, load_protocol("smoke")), rounds=1, iterations=1)
    assert len(table.entries) > 50


def test_measured_table_building(benchmark, space, tmp_path):
    backend = TorchBackend(torch.device("cpu"), 1, 1, MeasureSettings(rounds=1, min_time_s=0.002))
    request = ProfileRequest(space, load_protocol("smoke"), backend, calibrate=2, validate=0, progress=False)
    table, path, _ = benchmark.pedantic(profile, args=(request, tmp_path), rounds=1, iterations=1)
    assert path.is_file() and table.measured


def test_exact_cost_lookup(benchmark, space, flops_model):
    genotype = space.sample(random.Random(0))
    assert benchmark(flops_model.cost, genotype) > 0


def test_expected_cost_forward_and_backward(benchmark, flops_model):
    alphas = {g: torch.zeros(14, 8, requires_grad=True) for g in ("normal", "reduce")}

    def step():
        cost = flops_model.expected({g: a.softmax(-1) for g, a in alphas.items()})
        cost.backward()
        return cost

    assert benchmark(step).item() > 0


def test_darts_search_step(benchmark):
    """4 channels, 3 cells, batch 16 (``nasbench bench search-step`` times any size)."""
    strategy = Darts(search_context(SupernetBudget(channels=4, cells=3, epochs=1, batch_size=16), torch.device("cpu"),
                                    get_space("cell")))
    generator = torch.Generator().manual_seed(0)
    train, val = random_batch(16, generator), random_batch(16, generator)
    alphas = [a.detach().clone() for a in strategy.supernet.arch_parameters()]
    val_loss, train_loss = benchmark(strategy.search_step, train, val, 0.025)
    assert val_loss.isfinite() and train_loss.isfinite()
    assert not any(torch.equal(a, b) for a, b in zip(alphas, strategy.supernet.arch_parameters()))
