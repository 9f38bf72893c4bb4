"""The published baselines: each comparison pairs a registered method, space and setting with
one published row of its strategy class, and a figure only with the setting it was obtained under."""
from __future__ import annotations

import math

from nasbench.store.baselines import (
    compared_row,
    comparisons,
    published_results,
    published_row,
)
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


def test_language_models_published_ptb_figures():
    """DARTS' Table 2, ENAS' abstract and NAS-RL's 25M cell (the size of the DARTS-sized networks):
    test perplexity, params and search cost beside our enas-rnn and nasrl-rnn runs; random
    architectures have no paper. A PTB row has a perplexity and no error, an image row the reverse."""
    figures = {(method, space): (row["test_perplexity"], row["params_m"], row["search_cost_gpu_days"])
               for method, space in (("random", "enas-rnn"), ("darts", "enas-rnn"), ("darts-2nd", "enas-rnn"),
                                     ("enas", "enas-rnn"), ("nas-rl", "nasrl-rnn"))
               for row in [compared_row(method, space)]}
    assert figures[("random", "enas-rnn")] == (59.4, 23, 2)
    assert figures[("darts", "enas-rnn")] == (57.6, 23, 0.5)
    assert figures[("darts-2nd", "enas-rnn")] == (55.7, 23, 1)
    assert figures[("enas", "enas-rnn")] == (55.8, 24, 0.5)
    assert figures[("nas-rl", "nasrl-rnn")][:2] == (64.0, 25) and math.isnan(figures[("nas-rl", "nasrl-rnn")][2])
    assert compared_row(RandomArchitecture.name, "enas-rnn") is None
    table = published_results()
    ptb = table["dataset"] == "PTB"
    assert table.loc[ptb, "test_perplexity"].notna().all() and table.loc[ptb, "test_error"].isna().all()
    assert table.loc[~ptb, "test_perplexity"].isna().all()
    assert table.loc[ptb, "source"].notna().all()
