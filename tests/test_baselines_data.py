"""The published baselines: each comparison pairs a registered method and space with one published
row of its strategy class."""
from __future__ import annotations

from nasbench.store.baselines import compared_row, comparisons, published_row
from nasbench.strategies import STRATEGIES
from nasbench.strategies.random_search import RandomArchitecture, RandomSearch


def test_published_comparisons_name_registered_methods_and_rows():
    """Each row of baselines/comparisons.csv pairs a registered method and one of its spaces
    (at most once) with exactly one published row of the method's strategy class."""
    table = comparisons()
    assert not table.duplicated(["nasbench_method", "space"]).any()
    for pair in table.itertuples():
        cls = STRATEGIES[pair.nasbench_method]
        assert pair.space in cls.spaces
        row = published_row(pair.method, pair.variant)
        assert row["method"] == pair.method and row["variant"] == pair.variant
        assert row["strategy"] == cls.strategy_class


def test_random_search_published_figures():
    row = compared_row(RandomSearch.name, "cell")
    assert (row["test_error"], row["params_m"], row["search_cost_gpu_days"]) == (3.29, 3.2, 4)
    assert compared_row(RandomArchitecture.name, "cell") is None
