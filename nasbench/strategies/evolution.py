"""Regularized (aging) evolution (Real, Aggarwal, Huang & Le, "Regularized Evolution for
Image Classifier Architecture Search", AAAI 2019: the search behind AmoebaNet).

The population starts as random architectures. Each cycle samples ``sample`` members
at random (with replacement, the paper's Algorithm 1), mutates the most accurate of them
into a child, trains the child, adds it and removes the *oldest* member, whatever its
accuracy: every architecture must keep being re-discovered to stay, which favours those
that train well repeatedly. The answer is the most accurate architecture ever trained.
Population and sample sizes come from the protocol's ``[search.evolution]``.
"""
from __future__ import annotations

from dataclasses import dataclass

from nasbench.settings import require
from nasbench.strategies.base import Strategy
from nasbench.types import SearchResult, Trial


@dataclass(frozen=True)
class EvolutionBudget:
    """Regularized evolution's population and tournament sample (AmoebaNet)."""

    population: int
    sample: int

    def check(self, where: str) -> None:
        require(1 <= self.sample <= self.population, where, "need 1 <= sample <= population")

    def check_protocol(self, protocol, where: str) -> None:
        require(self.population <= protocol.search.candidates, where,
                "population must not exceed [search] candidates (the population is trained first)")


class RegularizedEvolution(Strategy):
    """Aging evolution with tournament selection over the protocol's candidate budget."""

    name = "evolution"
    strategy_class = "EA"
    summary = "regularized (aging) evolution: tournament selection, one mutation per child, oldest removed"
    spaces = ("cell", "nasnet")
    protocol_section = "evolution"
    settings_class = EvolutionBudget
    state_fields = ("population",)

    def __init__(self, context):
        super().__init__(context)
        self.settings = self.method_settings()
        self.population: list[int] = []
        """Indices into ``trials`` of the living members, oldest first."""

    def budget(self) -> int:
        return self.context.protocol.search.candidates

    def step(self) -> None:
        space = self.context.space
        if len(self.trials) < self.settings.population:
            child = space.sample(self.rng)
        else:
            tournament = [self.trials[self.rng.choice(self.population)] for _ in range(self.settings.sample)]
            parent = max(tournament, key=_fitness)
            child = space.mutate(space.from_dict(parent.arch), self.rng)
        self.population.append(self.evaluate(child).index)
        if len(self.population) > self.settings.population:
            self.population.pop(0)

    def result(self) -> SearchResult:
        best = self.best_trial()
        return SearchResult(self.context.space.from_dict(best.arch), best.val_acc)


def _fitness(trial: Trial) -> tuple[float, int]:
    """A failed candidate loses every tournament; ties go to the younger member."""
    return (-1.0 if trial.val_acc is None else trial.val_acc, trial.index)
