"""Random search, the baseline every NAS comparison needs, and the random-architecture
reference (what an architecture drawn at random scores under the same final training)."""
from __future__ import annotations

from nasbench.strategies.base import Strategy
from nasbench.types import SearchResult


class RandomSearch(Strategy):
    """Draw architectures uniformly, train each with the candidate budget, keep the best
    on search-validation (the DARTS paper's random baseline: best of 24)."""

    name = "random"
    strategy_class = "RS"
    summary = "random search: best of N uniformly drawn architectures on search-validation"
    spaces = ("cell", "nasnet", "enas-rnn", "nasrl-rnn")

    def budget(self) -> int:
        return self.context.protocol.search.candidates

    def step(self) -> None:
        """As many draws as ``context.workers`` trains at once."""
        count = min(self.context.workers, self.budget() - len(self.trials))
        self.evaluate_all([self.context.space.sample(self.rng) for _ in range(count)])

    def result(self) -> SearchResult:
        best = self.best_trial()
        return SearchResult(self.context.space.from_dict(best.arch), best.val_acc, val_perplexity=best.val_perplexity)


class RandomArchitecture(Strategy):
    """One architecture drawn uniformly per seed, without any selection: over seeds, the
    reference that states how much a method improves on chance."""

    name = "random-arch"
    strategy_class = "RS"
    summary = "reference: one uniformly drawn architecture per seed, no selection"
    spaces = ("cell", "nasnet", "fbnet", "enas-macro", "nasrl-macro", "metaqnn", "plain-cnn", "enas-rnn", "nasrl-rnn")
    """Every space: the reference each space's methods are told apart from."""
    state_fields = ("arch",)

    def __init__(self, context):
        super().__init__(context)
        self.arch: dict | None = None

    def budget(self) -> int:
        return 1

    def steps_done(self) -> int:
        return int(self.arch is not None)

    def step(self) -> None:
        self.arch = self.context.space.to_dict(self.context.space.sample(self.rng))

    def result(self) -> SearchResult:
        return SearchResult(self.context.space.from_dict(self.arch), None)
