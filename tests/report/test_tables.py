"""The results tables' order and row names, and where published figures of another data set go."""
from __future__ import annotations

import pandas as pd

from nasbench.report.tables import _sources, ordered, row_names


def rows(*entries: tuple[str, str, float]) -> pd.DataFrame:
    return pd.DataFrame([{"method": m, "label": label, "variant": label, "test_error_mean": e} for m, label, e in entries])


def test_variants_sit_under_their_method_and_methods_go_by_their_best_error():
    table = ordered(rows(("a", "", 30.0), ("b", "", 20.0), ("a", "x ≤ 1", 10.0), ("a", "x ≤ 2", 25.0),
                         ("c", "", float("nan"))))
    assert list(zip(table["method"], table["label"])) == [("a", ""), ("a", "x ≤ 1"), ("a", "x ≤ 2"), ("b", ""), ("c", "")]
    assert row_names(table) == ["a", "↳ x ≤ 1", "↳ x ≤ 2", "b", "c"]


def test_a_variant_without_its_method_names_it_and_alike_labels_are_numbered():
    assert row_names(rows(("a", "x ≤ 1", 10.0), ("a", "x ≤ 1", 12.0))) == ["a: x ≤ 1", "a: x ≤ 1 #2"]


def test_an_imagenet_figure_is_listed_apart_never_beside_a_cifar_row():
    table = pd.DataFrame([
        {"method": "proxylessnas", "published_source": "paper", "published_comparable": False,
         "published_test_error": 24.7, "published_data": "ImageNet"},
        {"method": "darts", "published_source": "DARTS", "published_comparable": True,
         "published_test_error": 3.0, "published_data": "CIFAR-10"}])
    text = "\n".join(_sources(table))
    assert "Published figures:\n\n- darts: DARTS" in text
    assert "Not compared (published on another data set):\n\n- proxylessnas: 24.70% on ImageNet (paper)" in text
