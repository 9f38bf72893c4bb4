"""`nasbench run`'s estimate: measured on this machine, positive and finite for every method,
growing with the protocol's epochs and with the seeds, leaving the random-number state alone."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from helpers import CPU, with_supernet

from nasbench.estimate import estimate_runs
from nasbench.strategies import STRATEGIES

CHEAP = ("random", "random-arch", "gdas")
"""One method of each kind: candidates trained, no search, a supernet."""


@pytest.fixture(scope="module")
def measured(smoke):
    """The cheap methods under the smoke protocol, two seeds each, and whether torch's
    random-number state was the same after measuring."""
    before = torch.get_rng_state()
    estimate = estimate_runs([(m, seed) for m in CHEAP for seed in (0, 1)], smoke, CPU)
    return estimate, torch.equal(before, torch.get_rng_state())


def test_the_estimate_is_positive_and_by_kind(measured):
    estimate, _ = measured
    assert list(estimate.methods) == list(CHEAP)
    for name, method in estimate.methods.items():
        assert math.isfinite(method.seconds) and method.final_s > 0, name
        assert (method.search_s == 0) == (name == "random-arch"), name
        assert not method.approximate
    assert 0 < estimate.measuring_s < 120


def test_the_estimate_scales_with_the_seeds(measured):
    estimate, _ = measured
    assert estimate.total_s == pytest.approx(2 * sum(m.seconds for m in estimate.methods.values()))
    header, *rows, total = estimate.lines()
    assert header.startswith("estimated time of 6 run(s), from steps measured here in ")
    assert rows[0].split() == ["method", "search", "final", "per", "seed", "seeds", "total"]
    assert [row.split()[0] for row in rows[1:]] == list(CHEAP)
    assert all(row.split()[-2] == "2" for row in rows[1:])
    assert total.startswith("total ") and " on " in total and "threads" in total
    assert estimate.stages() == {name: (m.search_s, m.final_s) for name, m in estimate.methods.items()}


def test_measuring_leaves_the_random_state_as_it_was(measured):
    _, same_state = measured
    assert same_state


def test_more_epochs_take_longer(smoke, measured):
    """Five times the final, candidate and supernet epochs: every stage that trains is
    estimated longer, measured again (a real measurement, not a product of the first)."""
    longer = with_supernet(smoke, epochs=5 * smoke.search.supernet.epochs)
    longer = dataclasses.replace(longer, final=dataclasses.replace(smoke.final, epochs=5 * smoke.final.epochs),
                                 candidate=dataclasses.replace(smoke.candidate, epochs=5 * smoke.candidate.epochs))
    short, _ = measured
    long = estimate_runs([(m, 0) for m in CHEAP], longer, CPU)
    for name in CHEAP:
        assert long.methods[name].final_s > short.methods[name].final_s, name
        if name != "random-arch":
            assert long.methods[name].search_s > short.methods[name].search_s, name


@pytest.mark.slow
def test_every_method_has_an_estimate(smoke):
    estimate = estimate_runs([(m, 0) for m in STRATEGIES], smoke, CPU)
    assert list(estimate.methods) == list(STRATEGIES)
    for name, method in estimate.methods.items():
        assert method.final_s > 0 and math.isfinite(method.search_s) and method.search_s >= 0, name
        assert (method.search_s > 0) == (name != "random-arch"), name
    assert {name for name, m in estimate.methods.items() if m.approximate} == {"enas"}
    assert "~" in estimate.lines()[-1] and any(row.split()[0] == "enas" and "~" in row for row in estimate.lines())
