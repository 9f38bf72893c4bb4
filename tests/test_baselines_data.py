"""The published baselines: each comparison pairs a registered method, space and setting with
one published row of its strategy class, and a figure only with the setting it was obtained under."""
from __future__ import annotations

from nasbench.store.baselines import compared_row, comparisons, published_row
from nasbench.strategies import STRATEGIES
from nasbench.strategies.random_search import RandomArchitecture, RandomSearch


def test_published_comparisons_name_registered_methods_and_rows():
    """Each row of baselines/comparisons.csv pairs a registered method and one of its spaces
    under a setting (at most once; a setting is a run variant without its space) with exactly
    one published row of the method's strategy class."""
    table = comparisons()
    assert not table.duplicated(["nasbench_method", "space", "setting"]).any()
    for pair in table.itertuples():
        cls = STRATEGIES[pair.nasbench_method]
        assert pair.space in cls.spaces and "space=" not in pair.setting
        row = published_row(pair.method, pair.variant)
        assert row["method"] == pair.method and row["variant"] == pair.variant
        assert row["strategy"] == cls.strategy_class


def test_random_search_published_figures():
    row = compared_row(RandomSearch.name, "cell")
    assert (row["test_error"], row["params_m"], row["search_cost_gpu_days"]) == (3.29, 3.2, 4)
    assert compared_row(RandomArchitecture.name, "cell") is None


def test_snas_published_figure_is_of_the_run_of_its_mild_setting(smoke, cell_space):
    """SNAS' CIFAR-10 figure (2.98%, 2.9M) was obtained under its mild constraint with the
    official code's default --separation all: the run `--constraint resources --snas-setting
    mild`, by the variant that run stores; not an unconstrained search, nor λ 0.01 on params alone."""
    from nasbench.hardware.constraint import build_constraint
    from nasbench.strategies.snas import Snas

    def variant(name: str) -> str:
        return build_constraint(name, None, setting="mild", methods=[Snas], spaces=[cell_space], protocol=smoke,
                                registry=STRATEGIES).variant()

    row = compared_row("snas", "cell", variant("resources"))
    assert (row["variant"], row["test_error"], row["params_m"]) == ("mild constraint + cutout", 2.98, 2.9)
    assert compared_row("snas", "cell") is None and compared_row("snas", "cell", variant("params")) is None
