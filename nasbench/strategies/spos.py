"""Single Path One-Shot NAS with uniform sampling (Guo, Zhang, Mu, Heng, Liu, Wei & Sun,
"Single Path One-Shot Neural Architecture Search with Uniform Sampling", ECCV 2020), on
the cell space and on the FBNet layer-wise space (the closer to the paper's: a choice of
block per layer, as SPOS' ShuffleNet choice blocks are).

Stage 1 trains the supernet on single paths drawn uniformly, one per batch: exactly
random-ws' stage 1 (:class:`~nasbench.strategies.random_ws.RandomWeightSharing`, whose
supernet steps this class inherits), so that the two methods search the same trained
supernet for a seed and differ only in how they search it. Stage 2 is the paper's
evolution (Sect. 3.4, Algorithm 1) over paths of that supernet, each scored by its
search-validation accuracy under the shared weights after batch-norm recalibration.

Evolution, as the official code (github.com/megvii-model/SinglePathOneShot,
``src/Search/search.py``) runs it, with its defaults (``main``, lines 238-251:
``--max-epochs 20 --select-num 10 --population-num 50 --m_prob 0.1 --crossover-num 25
--mutation-num 25``), scaled by the protocol's ``[search.spos]``:

- generation 0 is ``population`` random legal paths (``get_random``, lines 135-145);
- each of ``iterations`` later generations is up to ``mutation`` mutants and up to
  ``crossover`` crossovers of the ``select`` best paths scored so far (``update_top_k``,
  lines 117-123: the top-k list accumulates over generations), each kind given at most
  ten times as many draws as it has places (``max_iters``, lines 152 and 178), then
  random legal paths up to ``population`` (``search``, lines 225-230);
- a mutant redraws each gene of a parent with probability ``mutation_prob``
  (``get_mutation``, lines 154-159); a crossover takes each gene from one of two parents
  drawn from the top-k, uniformly (``get_crossover``, lines 180-183). The official gene
  is a layer's block choice, as it is on the FBNet space (a mutated gene is redrawn
  uniformly among the 9 blocks, possibly the same one, as ``np.random.randint`` redraws);
  on the cell space it is a node of a cell (its two distinct inputs and their operations,
  as :meth:`CellSpace.sample` draws them), so every child is a valid genotype;
- a candidate is legal if it was never scored before and is within the constraint
  (``is_legal``, lines 94-115): the constraint is a hard filter, a candidate over the
  budget is rejected and another drawn, never scored.

Every candidate is scored once (a step, checkpointed with the generation's pending
candidates and the random state, so a resumed search draws and scores the same). The
answer is the best-scoring path of all scored.

Batch-norm recalibration (the paper's Sect. 4: "Before the inference of an architecture,
the statistics of all the Batch Normalization operations are recalculated on a random
subset of training data (20000 images on ImageNet)"; the official ``src/Search/tester.py``,
``get_cand_err``, lines 52-72: running statistics reset, then 200 training batches of 128
forwarded in training mode): the path's statistics are recomputed on
``recalibration_images`` random search-train images as a cumulative average
(:func:`~nasbench.training.recalibrated_batch_norm`, shared with ``nasbench rank``; the
official code's own exact form of it is ``adjust_bn_momentum`` in
``src/Supernet/train.py``, lines 183-186, momentum 1/iteration), then the path is scored
in eval mode on all of search-validation (the official code: 40 batches of 200 of its
validation split, ``--max-test-iters 40 --test-batch-size 200``).

Deviations: the supernet's training recipe is random-ws' (DARTS' SGD, gradients clipped at
1), not the official ImageNet one (SGD lr 0.5 linearly decayed over 150k iterations of
batch 1024, weight decay 4e-5, label smoothing: ``src/Supernet/train.py``), which does not
transfer to the CIFAR cell space; the supernet code's FLOPs-binned path sampling
(``get_uniform_sample_cand``, lines 211-222) is not the paper's uniform sampling and is not
used. Recalibration images are normalised, not augmented (as ``nasbench rank`` scores).
The official loop draws (and scores) one random generation after its last top-k update,
which then chooses nothing; here every generation's candidates can be the answer.
"""
from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any, Callable, Hashable

import torch
from torch import nn

from nasbench.data import DeviceSplit
from nasbench.errors import NasbenchError
from nasbench.protocol import SupernetBudget
from nasbench.settings import require
from nasbench.spaces.cell.supernet import EdgeWeights, WeightedSupernet
from nasbench.spaces.fbnet.candidates import BLOCK_NAMES
from nasbench.spaces.fbnet.space import FbnetSpace, LayerArch
from nasbench.spaces.fbnet.supernet import LayerSupernet
from nasbench.strategies.context import SearchContext
from nasbench.strategies.random_ws import RandomWeightSharing
from nasbench.strategies.supernet_search import SupernetSearch
from nasbench.training import evaluate, recalibrated_batch_norm
from nasbench.types import SearchResult, derive_seed

DRAW_ATTEMPTS = 10
"""Draws per place a mutation or crossover round is given (``max_iters = 10 * num``)."""
RANDOM_DRAWS = 10_000
"""Draws after which no legal random path is taken to exist (the constraint too tight)."""


@dataclass(frozen=True)
class SposSettings:
    """SPOS' evolution (its official defaults: 50, 20, 10, 25, 25, 0.1) and the training
    images each path's batch-norm statistics are recomputed on (the paper: 20000)."""

    population: int
    iterations: int
    select: int
    crossover: int
    mutation: int
    mutation_prob: float
    recalibration_images: int

    def check(self, where: str) -> None:
        require(1 <= self.select <= self.population, where, "need 1 <= select <= population")
        require(self.iterations >= 0 and self.crossover >= 0 and self.mutation >= 0, where,
                "iterations, crossover and mutation must be >= 0")
        require(self.crossover + self.mutation <= self.population, where, "need crossover + mutation <= population")
        require(0.0 <= self.mutation_prob <= 1.0, where, "need 0 <= mutation_prob <= 1")
        require(self.recalibration_images >= 1, where, "need recalibration_images >= 1")


def crossover(first: Hashable, second: Hashable, rng: random.Random) -> Hashable:
    """Each gene from ``first`` or ``second``, uniformly: a layer's block, or a node of a
    cell (its two edges)."""
    if isinstance(first, LayerArch):
        return LayerArch(tuple(rng.choice(pair) for pair in zip(first.blocks, second.blocks, strict=True)))
    cells = {}
    for (kind, mine, _), (_, theirs, _) in zip(first.cells(), second.cells(), strict=True):
        cells[kind] = tuple(edge for node in range(len(mine) // 2)
                            for edge in rng.choice((mine, theirs))[2 * node:2 * node + 2])
    return dataclasses.replace(first, **cells)


def mutate(genotype: Hashable, rng: random.Random, prob: float) -> Hashable:
    """Each gene redrawn with probability ``prob``: a layer's block among all 9, or a node
    of a cell: two distinct inputs among the earlier states and an operation for each, as
    :meth:`CellSpace.sample` draws a node."""
    from nasbench.spaces.cell.space import SAMPLED_OPERATIONS

    if isinstance(genotype, LayerArch):
        return LayerArch(tuple(rng.choice(BLOCK_NAMES) if rng.random() < prob else block for block in genotype.blocks))
    cells = {}
    for kind, edges, _ in genotype.cells():
        new = list(edges)
        for node in range(len(edges) // 2):
            if rng.random() < prob:
                new[2 * node:2 * node + 2] = [(rng.choice(SAMPLED_OPERATIONS), source)
                                              for source in sorted(rng.sample(range(node + 2), 2))]
        cells[kind] = tuple(new)
    return dataclasses.replace(genotype, **cells)


def recalibrated_accuracy(supernet: nn.Module, weights: EdgeWeights, calibration: DeviceSplit, split: DeviceSplit) -> float:
    """Accuracy of the single path ``weights`` on ``split``, its batch norms holding the
    statistics of ``calibration`` (the supernet's own running statistics are put back after)."""
    path = WeightedSupernet(supernet, weights, sparse=True)
    with recalibrated_batch_norm(path, calibration):
        return evaluate(path, split)


class Spos(RandomWeightSharing):
    """SPOS: uniform single-path supernet training (random-ws' stage 1), then evolution of
    paths scored with recalibrated batch norm, a resource constraint as a hard filter."""

    name = "spos"
    strategy_class = "EA"
    summary = "single path one-shot: uniform single-path supernet, evolution with BN recalibration, hard constraint"
    spaces = ("cell", "fbnet")
    protocol_section = "spos"
    settings_class = SposSettings
    constraint_forms = {"filter": (None, 1.0)}
    state_fields = ("epochs_done", "history", "scores", "pending")

    def __init__(self, context: SearchContext):
        super().__init__(context)
        self.pending: list[dict[str, Any]] = []
        """The current generation's candidates not yet scored (how each was made, its genotype), in order.
        ``scores`` (random-ws' list) holds every scored candidate: index, generation, how it
        was made, genotype and accuracy."""

    def make_supernet(self, budget: SupernetBudget) -> nn.Module:
        """On the FBNet space its layer-wise supernet (sized by the protocol's ``[fbnet]``)."""
        space = self.context.space
        return LayerSupernet(space) if isinstance(space, FbnetSpace) else super().make_supernet(budget)

    @property
    def operation_names(self) -> tuple[str, ...]:
        return BLOCK_NAMES if isinstance(self.context.space, FbnetSpace) else super().operation_names

    # -- steps -------------------------------------------------------------------------
    def budget(self) -> int:
        return self.supernet_epochs() + self.settings.population * (self.settings.iterations + 1)

    def steps_done(self) -> int:
        return self.epochs_done + len(self.scores)

    def step(self) -> None:
        """A supernet epoch, else the next candidate's score (drawing its generation first
        where the last one is all scored)."""
        if self.epochs_done < self.supernet_epochs():
            SupernetSearch.step(self)
            return
        if not self.pending:
            self.pending = self.next_generation()
        candidate = self.pending.pop(0)
        genotype = self.context.space.from_dict(candidate["arch"])
        index = len(self.scores)
        self.scores.append({"index": index, "generation": index // self.settings.population, **candidate,
                            "val_acc": self.score(genotype, index)})

    def score(self, genotype: Hashable, index: int) -> float:
        """Search-validation accuracy of the path after recalibrating its batch norms on
        ``recalibration_images`` search-train images drawn by a generator of its own."""
        train = self.context.data.search_train
        device = train.labels.device
        generator = torch.Generator(device=device).manual_seed(derive_seed(self.context.seed, "recalibrate", index))
        chosen = torch.randperm(len(train), device=device, generator=generator)[:self.settings.recalibration_images]
        return recalibrated_accuracy(self.supernet, self.path(genotype),
                                     DeviceSplit(train.images[chosen], train.labels[chosen]), self.context.data.search_val)

    # -- evolution ---------------------------------------------------------------------
    def legal(self, genotype: Hashable, seen: set[Hashable]) -> bool:
        """Never scored or drawn before, and within the constraint (the hard filter); a
        legal one is added to ``seen``."""
        if genotype in seen:
            return False
        constraint = self.context.constraint
        if constraint is not None and not constraint.cost_model.within(genotype, constraint.target):
            return False
        seen.add(genotype)
        return True

    def top(self) -> list[Hashable]:
        """The ``select`` best scored paths (ties to the earlier one)."""
        ranked = sorted(self.scores, key=lambda s: (-s["val_acc"], s["index"]))[:self.settings.select]
        return [self.context.space.from_dict(s["arch"]) for s in ranked]

    def next_generation(self) -> list[dict[str, Any]]:
        """The next ``population`` legal candidates, each with how it was made."""
        settings, space, rng = self.settings, self.context.space, self.rng
        seen = {space.from_dict(s["arch"]) for s in self.scores}
        generation: list[dict[str, Any]] = []

        def draw(origin: str, make: Callable[[], Hashable], places: int, attempts: int) -> None:
            wanted = len(generation) + places
            while len(generation) < wanted and attempts > 0:
                attempts -= 1
                child = make()
                if self.legal(child, seen):
                    generation.append({"origin": origin, "arch": space.to_dict(child)})

        if self.scores:
            parents = self.top()
            draw("mutation", lambda: mutate(rng.choice(parents), rng, settings.mutation_prob),
                 settings.mutation, DRAW_ATTEMPTS * settings.mutation)
            draw("crossover", lambda: crossover(rng.choice(parents), rng.choice(parents), rng),
                 settings.crossover, DRAW_ATTEMPTS * settings.crossover)
        missing = settings.population - len(generation)
        draw("random", lambda: space.sample(rng), missing, RANDOM_DRAWS * missing)
        if len(generation) < settings.population:
            where = "" if self.context.constraint is None else f" within {self.context.constraint.variant()}"
            raise NasbenchError(f"{self.name}: no new legal path{where} in {RANDOM_DRAWS} random draws per place "
                                "(the constraint is too tight for the space, or the space is exhausted)")
        return generation

    def result(self) -> SearchResult:
        """The best-scoring path of all scored (ties to the earlier one), with that
        shared-weight accuracy as what chose it."""
        best = max(self.scores, key=lambda s: (s["val_acc"], -s["index"]))
        return SearchResult(self.context.space.from_dict(best["arch"]), best["val_acc"], details={
            "supernet_epochs": self.history,
            "recalibration_images": min(self.settings.recalibration_images, len(self.context.data.search_train)),
            "scores": self.scores,
        })
