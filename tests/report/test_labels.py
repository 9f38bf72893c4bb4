"""Short labels: a constraint in words, a data set's name, which published figures compare."""
from __future__ import annotations

import pytest

from nasbench.report.labels import (
    achieved_words,
    compares_with,
    constraint_label,
    cost_words,
    data_set_name,
    same_data_set,
    setting_label,
    variant_label,
    variant_setting,
)

LATENCY = {"metric": "latency_ms", "target": 2.5, "weight": 1.0, "form": "add-linear", "exponent": 0.6}
MILD = {"metric": "resources", "target": None, "weight": 0.01, "form": "per-edge-log", "exponent": 1.0}
"""SNAS' mild setting: its per-edge-log penalty on the mean of params, FLOPs and MAC, without a target."""


@pytest.mark.parametrize(("constraint", "words"), [
    (LATENCY, "latency ≤ 2.5 ms, λ 1, add-linear"),
    ({**LATENCY, "form": "mul-log", "weight": 0.2, "exponent": 0.3}, "latency ≤ 2.5 ms, λ 0.2, mul-log β 0.3"),
    ({**LATENCY, "form": "hinge", "target": 5.0, "weight": 0.01}, "latency ≤ 5 ms, λ 0.01"),
    ({"metric": "flops", "target": 3e8, "weight": 0.1, "form": "hinge"}, "FLOPs ≤ 300M, λ 0.1"),
    ({"metric": "params", "target": 1234567.0, "weight": 1.0}, "params ≤ 1.23M, λ 1"),
    (MILD, "params+FLOPs+MAC, λ 0.01, per-edge-log"),
    ({**MILD, "metric": "params"}, "params, λ 0.01, per-edge-log"),
    ({**MILD, "metric": "latency_ms", "weight": 0.1}, "latency, λ 0.1, per-edge-log"),
])
def test_constraint_label(constraint, words):
    assert constraint_label(constraint) == words


def test_a_setting_is_the_constraint_without_its_target():
    """A figure's series: a sweep of latency targets is one colour, its targets markers."""
    assert setting_label(LATENCY) == "latency, λ 1, add-linear" and setting_label(MILD) == constraint_label(MILD)
    assert setting_label(None) == "unconstrained"


def test_achieved_costs_name_their_metrics_where_there_are_several_and_a_target_where_there_is_one():
    assert achieved_words({"params": 4321.0}, "params", 5000.0) == "0.00432M (target 0.005M)"  # as before costs
    assert achieved_words({"params": 4321.0}, "params", None) == "0.00432M"
    assert achieved_words({"params": 2.66e6, "flops": 4.1e8, "mac_elements": 1.234e7}, "resources", None) == (
        "params 2.66M, FLOPs 410M, MAC 12.3M elements")
    assert achieved_words({"latency_ms": 2.41}, "latency_ms", 2.5) == "2.41 ms (target 2.5 ms)"


def test_variant_label_drops_the_space_and_keeps_what_it_cannot_read():
    assert variant_label("space=enas-macro", None) == ""
    assert variant_label("", None) == ""
    assert variant_label("space=cell;latency_ms<=2.5@x,weight=1", LATENCY) == "latency ≤ 2.5 ms, λ 1, add-linear"
    assert variant_label("some-future-variant", None) == "some-future-variant"
    assert variant_label("space=fbnet;resources,weight=0.01,form=per-edge-log", MILD) == constraint_label(MILD)


def test_a_variants_setting_is_what_it_says_beyond_its_space():
    """What baselines/comparisons.csv pairs a published figure with."""
    assert variant_setting("space=fbnet;resources,weight=0.01,form=per-edge-log") == "resources,weight=0.01,form=per-edge-log"
    assert variant_setting("space=enas-macro") == "" and variant_setting("") == ""


def test_cost_words_rounds_to_three_digits():
    assert cost_words("latency_ms", 6.8991) == "6.9 ms"
    assert cost_words("mac_elements", 2.5e6) == "2.5M elements"


def test_published_figures_compare_only_on_the_same_data_set():
    assert data_set_name("cifar10") == "CIFAR-10" and data_set_name("npz-35ab4cdda3b1") == "CIFAR-10 from an .npz file"
    assert compares_with("CIFAR-10", "npz-35ab4cdda3b1") and compares_with("CIFAR-10", "cifar10")
    assert not compares_with("ImageNet", "cifar10") and not compares_with(None, "cifar10")


def test_a_ptb_stand_in_is_ptb_but_never_a_published_figures_peer():
    """Its test split is PTB's, so a published PTB figure may sit beside it (marked), never as its peer."""
    assert data_set_name("ptb-0123456789ab") == "PTB"
    assert data_set_name("ptb-stand-in-0123456789ab").startswith("PTB stand-in")
    assert compares_with("PTB", "ptb-0123456789ab") and not compares_with("PTB", "ptb-stand-in-0123456789ab")
    assert same_data_set("PTB", "ptb-stand-in-0123456789ab") and not same_data_set("CIFAR-10", "ptb-0123456789ab")
    assert not compares_with("PTB", "cifar10") and not same_data_set(None, "ptb-0123456789ab")
