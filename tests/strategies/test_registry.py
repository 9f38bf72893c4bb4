"""Adding a method is one file and one registry line: a method written in a file of its own,
with its own protocol section and settings class, runs, stores and fails like the built-in
ones, without touching the protocol module, the CLI or the runner."""
from __future__ import annotations

import importlib.util
import sys

import pytest
from helpers import run_cli, store_rows

from nasbench.errors import UnknownNameError
from nasbench.spaces import SPACES
from nasbench.strategies import STRATEGIES, check_protocol, get_strategy, own_sections
from nasbench.strategies.random_search import RandomArchitecture, RandomSearch
from nasbench.types import STRATEGY_CLASSES

PLUGIN = '''
"""Best of a few random draws: a method with a setting of its own."""
from dataclasses import dataclass

from nasbench.settings import require
from nasbench.strategies.base import Strategy
from nasbench.types import SearchResult


@dataclass(frozen=True)
class DrawsSettings:
    draws: int

    def check(self, where: str) -> None:
        require(self.draws >= 1, where, "draws must be >= 1")


class BestOfDraws(Strategy):
    name = "best-of-draws"
    strategy_class = "RS"
    summary = "the best of a few random architectures"
    protocol_section = "best_of_draws"
    settings_class = DrawsSettings

    def __init__(self, context):
        super().__init__(context)
        self.settings = self.method_settings()

    def budget(self) -> int:
        return self.settings.draws

    def step(self) -> None:
        self.evaluate(self.context.space.sample(self.rng))

    def result(self) -> SearchResult:
        best = self.best_trial()
        return SearchResult(self.context.space.from_dict(best.arch), best.val_acc)
'''

PROTOCOL = '''base = "smoke"
name = "one-file"
[data]
train_images = 64
search_val_images = 32
test_images = 40
[search.best_of_draws]
draws = {draws}
'''


@pytest.fixture
def registered(tmp_path, monkeypatch):
    """The plugin's one file, imported, and its one registry line."""
    path = tmp_path / "best_of_draws.py"
    path.write_text(PLUGIN)
    spec = importlib.util.spec_from_file_location("best_of_draws", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "best_of_draws", module)
    spec.loader.exec_module(module)
    monkeypatch.setitem(STRATEGIES, module.BestOfDraws.name, module.BestOfDraws)
    return module.BestOfDraws


def protocol_file(tmp_path, draws) -> str:
    path = tmp_path / "one-file.toml"
    path.write_text(PROTOCOL.format(draws=draws))
    return str(path)


def test_a_method_from_one_file_runs_and_is_stored(registered, tmp_path, data_path):
    store = tmp_path / "results.sqlite"
    result = run_cli("run", "--method", "best-of-draws", "--protocol", protocol_file(tmp_path, 2), "--store", store,
                     "--data", data_path, "--no-progress", "--json")
    assert result.code == 0, result.err
    [row] = store_rows(store)
    assert (row["method"], row["strategy_class"], row["space"], row["status"]) == ("best-of-draws", "RS", "cell", "finished")
    assert '"best_of_draws": {"draws": 2}' in row["protocol_json"]
    listed = run_cli("list", "methods")
    assert "best-of-draws" in listed.out


def test_its_settings_are_checked_by_its_own_class_before_any_work(registered, tmp_path, data_path):
    store = tmp_path / "results.sqlite"
    result = run_cli("run", "--method", "best-of-draws", "--protocol", protocol_file(tmp_path, 0), "--store", store,
                     "--data", data_path, "--no-progress")
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        "nasbench: error: protocol one-file: [search.best_of_draws]: draws must be >= 1"]
    assert not store.exists()


def test_a_section_nobody_owns_is_refused(tmp_path, smoke):
    with pytest.raises(Exception, match=r"unknown section \[search.best_of_draws\]"):
        check_protocol(smoke.with_section("search.best_of_draws", {"draws": 2}))


def test_every_registered_section_reads_the_built_in_protocols(smoke):
    for label, read in own_sections().items():
        assert read(smoke) is not None, label


def test_registry():
    assert sorted(STRATEGIES) == ["darts", "darts-2nd", "eas", "enas", "evolution", "fbnet", "gdas", "metaqnn", "nas-rl",
                                  "nasnet", "pc-darts", "pdarts", "pnas", "proxylessnas", "random", "random-arch",
                                  "random-ws",
                                  "snas", "spos"]
    assert get_strategy("random") is RandomSearch and get_strategy("random-arch") is RandomArchitecture
    with pytest.raises(UnknownNameError) as info:
        get_strategy("amoebanet")
    assert str(info.value) == ("unknown method 'amoebanet'; known: darts, darts-2nd, eas, enas, evolution, fbnet, gdas, "
                               "metaqnn, nas-rl, nasnet, pc-darts, pdarts, pnas, proxylessnas, random, random-arch, "
                               "random-ws, "
                               "snas, spos")
    for name, cls in STRATEGIES.items():
        assert cls.name == name and cls.strategy_class in STRATEGY_CLASSES and cls.summary
        assert cls.spaces and set(cls.spaces) <= set(SPACES)  # a method may search a space of its own (metaqnn)


def test_a_method_runs_on_each_task_of_its_spaces_as_itself():
    """A method that lists a language-model space runs there as its own implementation for
    that task (same name and strategy class), never as its image loop and never as another
    method's: a subclass of DARTS does not inherit DARTS' recurrent search."""
    tasks = {name: SPACES[name].task for name in SPACES}
    language = {name for name, cls in STRATEGIES.items() if any(tasks[s] == "language-model" for s in cls.spaces)}
    assert language == {"random", "random-arch", "darts", "darts-2nd", "enas", "nas-rl"}
    for name, cls in STRATEGIES.items():
        assert cls.for_task("image") is cls
        runs = cls.for_task("language-model")
        if name in language:
            assert runs.name == name and runs.strategy_class == cls.strategy_class
            assert (runs is cls) == name.startswith("random")  # the baselines' loop is the same on every task
        else:
            assert runs is cls and not cls.task_implementations
