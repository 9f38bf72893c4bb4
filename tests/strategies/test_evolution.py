"""Regularized evolution: aging, selection, and that it beats random sampling on a synthetic
objective; its own protocol section."""
from __future__ import annotations

import json
import statistics

import pytest
import torch
from helpers import run_cli, store_rows, with_candidates, with_section

from nasbench.errors import ConfigError
from nasbench.protocol import protocol_from_file
from nasbench.strategies import check_protocol
from nasbench.strategies.context import SearchContext
from nasbench.strategies.evolution import RegularizedEvolution
from nasbench.strategies.random_search import RandomSearch

TARGET_OP = "sep_conv_3x3"


class SyntheticContext(SearchContext):
    """Candidates scored instantly: the share of the normal cell's 8 edges using TARGET_OP
    (optimum 1.0; a random cell reaches it with probability 7^-8)."""

    def train_candidate(self, arch, index):
        return sum(op == TARGET_OP for op, _ in arch.normal) / len(arch.normal)


def synthetic(cell_space, smoke, seed, candidates, population, sample):
    protocol = with_section(with_candidates(smoke, candidates), "search.evolution", population=population,
                            sample=sample)
    return SyntheticContext(space=cell_space, protocol=protocol, seed=seed, data=None, device=torch.device("cpu"),
                            show_progress=False)


def candidates_to_optimum(strategy) -> int:
    """Candidates trained until the first perfect one (the budget + 1 if none was)."""
    strategy.run()
    perfect = [t.index for t in strategy.trials if t.val_acc == 1.0]
    return perfect[0] + 1 if perfect else len(strategy.trials) + 1


def test_population_ages_out_the_oldest_and_tournaments_pick_the_best(cell_space, smoke):
    strategy = RegularizedEvolution(synthetic(cell_space, smoke, seed=1, candidates=12, population=4, sample=4))
    strategy.run()
    assert len(strategy.trials) == 12
    assert strategy.population == [8, 9, 10, 11]  # the four youngest, whatever their accuracy
    for child in strategy.trials[4:]:
        # with sample == population the parent is the best living member, so no child is
        # worse than one mutation (one edge = 1/8) below it
        living = strategy.trials[child.index - 4:child.index]
        assert child.val_acc >= max(t.val_acc for t in living) - 1 / 8
    assert strategy.result().val_acc == max(t.val_acc for t in strategy.trials)


def test_evolution_reaches_the_optimum_faster_than_random_sampling(cell_space, smoke):
    budget = 600
    evolution = [candidates_to_optimum(RegularizedEvolution(synthetic(cell_space, smoke, seed, budget, 20, 5)))
                 for seed in range(5)]
    random_search = [candidates_to_optimum(RandomSearch(synthetic(cell_space, smoke, seed, budget, 20, 5)))
                     for seed in range(5)]
    assert all(n <= budget for n in evolution)  # every seed finds the optimum
    assert statistics.mean(evolution) < statistics.mean(random_search)


def test_method_sections_stay_out_of_the_hash(smoke):
    assert with_section(smoke, "search.evolution", population=2, sample=2).hash == smoke.hash


def test_a_protocol_without_the_section_fails_when_evolution_needs_it(tmp_path, cell_space, smoke):
    path = tmp_path / "mine.toml"
    path.write_text(_toml_without_evolution(smoke.to_dict()))
    protocol = protocol_from_file(path)
    assert protocol.section("search.evolution") is None and protocol.hash == smoke.hash
    ctx = SearchContext(space=cell_space, protocol=protocol, seed=0, data=None, device=torch.device("cpu"))
    with pytest.raises(ConfigError, match=r"no \[search.evolution\] section \(population, sample\)"):
        RegularizedEvolution(ctx)


def test_bad_evolution_sizes_are_refused(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('base = "smoke"\n[search.evolution]\npopulation = 3\nsample = 1\n')
    with pytest.raises(ConfigError, match=r"population must not exceed \[search\] candidates"):
        check_protocol(protocol_from_file(path))
    path.write_text('base = "smoke"\n[search.evolution]\npopulation = 1\nsample = 2\n')
    with pytest.raises(ConfigError, match="need 1 <= sample <= population"):
        check_protocol(protocol_from_file(path))


@pytest.mark.slow
def test_reusing_a_run_made_under_other_evolution_settings_is_refused(tmp_path, data_path):
    store = tmp_path / "store.sqlite"
    common = ("--method", "evolution", "--store", store, "--data", data_path, "--no-progress")
    assert run_cli("run", "--protocol", "smoke", *common).code == 0
    before = store_rows(store)
    other = tmp_path / "smoke.toml"  # the same shared protocol, another population
    other.write_text('base = "smoke"\nname = "smoke"\n[search.evolution]\npopulation = 2\nsample = 2\n')
    result = run_cli("run", "--protocol", other, *common)
    assert result.code != 0
    assert "used [search.evolution] = {'population': 1, 'sample': 1}" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert store_rows(store) == before


def _toml_without_evolution(raw: dict) -> str:
    """The protocol as a TOML file, without its [search.evolution] section."""
    lines = []

    def value(v):
        return json.dumps(v) if not isinstance(v, bool) else str(v).lower()

    def table(name, content):
        scalars = {k: v for k, v in content.items() if not isinstance(v, dict)}
        lines.append(f"[{name}]" if name else "")
        lines.extend(f"{k} = {value(v)}" for k, v in scalars.items() if v is not None)
        for k, v in content.items():
            if isinstance(v, dict) and k != "evolution":
                table(f"{name}.{k}" if name else k, v)

    table("", raw)
    return "\n".join(lines) + "\n"
