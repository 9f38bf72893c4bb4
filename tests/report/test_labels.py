"""Short labels: a constraint in words, a data set's name, which published figures compare."""
from __future__ import annotations

import pytest

from nasbench.report.labels import (
    compares_with,
    constraint_label,
    cost_words,
    data_set_name,
    variant_label,
)

LATENCY = {"metric": "latency_ms", "target": 2.5, "weight": 1.0, "form": "add-linear", "exponent": 0.6}


@pytest.mark.parametrize(("constraint", "words"), [
    (LATENCY, "latency ≤ 2.5 ms, λ 1, add-linear"),
    ({**LATENCY, "form": "mul-log", "weight": 0.2, "exponent": 0.3}, "latency ≤ 2.5 ms, λ 0.2, mul-log β 0.3"),
    ({**LATENCY, "form": "hinge", "target": 5.0, "weight": 0.01}, "latency ≤ 5 ms, λ 0.01"),
    ({"metric": "flops", "target": 3e8, "weight": 0.1, "form": "hinge"}, "FLOPs ≤ 300M, λ 0.1"),
    ({"metric": "params", "target": 1234567.0, "weight": 1.0}, "params ≤ 1.23M, λ 1"),
])
def test_constraint_label(constraint, words):
    assert constraint_label(constraint) == words


def test_variant_label_drops_the_space_and_keeps_what_it_cannot_read():
    assert variant_label("space=enas-macro", None) == ""
    assert variant_label("", None) == ""
    assert variant_label("space=cell;latency_ms<=2.5@x,weight=1", LATENCY) == "latency ≤ 2.5 ms, λ 1, add-linear"
    assert variant_label("some-future-variant", None) == "some-future-variant"


def test_cost_words_rounds_to_three_digits():
    assert cost_words("latency_ms", 6.8991) == "6.9 ms"
    assert cost_words("mac_elements", 2.5e6) == "2.5M elements"


def test_published_figures_compare_only_on_the_same_data_set():
    assert data_set_name("cifar10") == "CIFAR-10" and data_set_name("npz-35ab4cdda3b1") == "CIFAR-10 from an .npz file"
    assert compares_with("CIFAR-10", "npz-35ab4cdda3b1") and compares_with("CIFAR-10", "cifar10")
    assert not compares_with("ImageNet", "cifar10") and not compares_with(None, "cifar10")
