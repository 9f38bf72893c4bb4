"""Random search with weight sharing (Li & Talwalkar, "Random Search and Reproducibility for
Neural Architecture Search", UAI 2019).

Stage 1 trains the supernet's weights on single paths drawn uniformly: per batch one random
architecture of the space (per node two distinct inputs and an operation for each, the cell
space's :meth:`~nasbench.spaces.cell.space.CellSpace.sample`), the supernet running only its
edges (one-hot rows). Stage 2 draws ``samples`` random architectures, scores each with the
shared weights on a few random search-validation batches, scores the ``finalists`` best of
them again on all of search-validation and keeps the best. No architecture parameters are
learnt. Every supernet epoch and every scored architecture is a step, checkpointed.

Settings from the official code, github.com/liamcli/randomNAS_release (CIFAR-10 runs,
scripts/run_experiment.sh and run_stage1.sh, benchmarks/cnn/darts/darts_wrapper_discrete.py):
SGD with lr 0.025 cosine-annealed to 0.001, momentum 0.9, weight decay 3e-4 (DARTS') but
gradients clipped at norm 1 ("--grad_clip 1"; the supplement, App. A.3.2, gives the reason:
a smaller norm for discrete architectures than for DARTS' weighted mixtures); batch size 64
there, the protocol's here. Stage 2 as in searchers/random_weight_share.py ``get_eval_arch``
and the supplement, App. A.4: each architecture scored on 10 minibatches, the best 10 of each
set of 1000 on the full validation set, the best of those chosen; one set per 10000 training
minibatches, at least one (so 1000 and 10 at DARTS' 50 epochs of batch 64 on 25k images, the
full protocol). Scoring uses the supernet in eval mode, i.e. the batch-norm running
statistics accumulated during stage 1 over all sampled paths (``evaluate(arch)`` calls
``model.eval()``; its ``reset_bn`` option is off there).

Deviation: the official code draws operations among all 8 DARTS primitives, ``none``
included (supplement A.4: "we decided to include the zero operation"); the cell space's
architectures exclude ``none`` (no method can derive it, and final training would build it
as a zero edge), so stage 1 and stage 2 draw from the space's own sampler.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from nasbench.data import DeviceSplit
from nasbench.settings import require
from nasbench.spaces.cell.supernet import EdgeWeights, Supernet, WeightedSupernet
from nasbench.strategies.context import SearchContext
from nasbench.strategies.darts import DARTS_WEIGHTS
from nasbench.strategies.supernet_search import Batch, SupernetSearch
from nasbench.training import evaluate
from nasbench.types import Checkpoint, SearchResult, derive_seed

RANDOM_WS_WEIGHTS = dataclasses.replace(DARTS_WEIGHTS, grad_clip=1.0)
SCORE_BATCHES = 10
"""Search-validation batches (of the protocol's supernet batch size) each sampled
architecture is first scored on (random_weight_share.py: ``n_batches = 10``)."""


def shared_weight_accuracy(supernet: Supernet, weights: EdgeWeights, split: DeviceSplit) -> float:
    """Accuracy of the supernet's single path ``weights`` on ``split``, in eval mode (batch
    norm under its running statistics, as Li & Talwalkar score)."""
    return evaluate(WeightedSupernet(supernet, weights, sparse=True), split)


@dataclass(frozen=True)
class RandomWsBudget:
    """Random search with weight sharing (Li & Talwalkar): how many random architectures
    the shared weights score on a few search-validation batches, and how many of the best
    of them they score again on all of search-validation before choosing."""

    samples: int
    finalists: int

    def check(self, where: str) -> None:
        require(1 <= self.finalists <= self.samples, where, "need 1 <= finalists <= samples")


class RandomWeightSharing(SupernetSearch):
    """Random search with weight sharing: uniform single-path supernet training, then the
    best of random architectures under the shared weights."""

    name = "random-ws"
    strategy_class = "RS"
    summary = "random search with weight sharing: uniform single-path supernet, best of N random paths"
    protocol_section = "random_ws"
    settings_class = RandomWsBudget
    weight_recipe = RANDOM_WS_WEIGHTS
    sparse_weights = True
    state_fields = ("epochs_done", "history", "scores", "finalist_scores")
    shared_stage = "uniform single-path supernet"

    def __init__(self, context: SearchContext):
        super().__init__(context)
        self.settings = self.method_settings()
        self.scores: list[dict[str, Any]] = []
        """Stage 2: per sampled architecture its index, genotype and accuracy on its batches."""
        self.finalist_scores: list[dict[str, Any]] = []
        """Stage 2: per finalist (best first by ``scores``) its index and full search-val accuracy."""

    # -- stage 1 -------------------------------------------------------------------
    def search_weights(self) -> dict[str, torch.Tensor]:
        """A uniformly drawn architecture as a single path, from :attr:`rng` (checkpointed
        with the JSON state, so a resumed search draws the same ones)."""
        return self.path(self.context.space.sample(self.rng))

    def path(self, arch: Any) -> EdgeWeights:
        """The supernet weights that run exactly ``arch`` (one-hot rows in the space's layout)."""
        return {group: w.to(device=self.context.device, dtype=torch.float32)
                for group, w in self.context.space.arch_weights(arch).items()}

    # -- the shared stage: the supernet -----------------------------------------------
    def stage_checkpoint(self) -> Checkpoint | None:
        """Stage 1's supernet, optimiser, generator, history and random state, right after
        its last epoch: what stage 2 starts from, whatever stage 2 then does."""
        if self.steps_done() != self.supernet_epochs() or self.epochs_done == 0:
            return None
        state = self.state_dict()
        return Checkpoint({"rng": state["rng"], "device": self.context.device.type, "epochs_done": self.epochs_done,
                           "history": self.history}, self.tensor_state())

    def start_after_stage(self, checkpoint: Checkpoint) -> bool:
        """False where the stage ran on another kind of device (its generator's state does
        not carry over to this one)."""
        state = checkpoint.state
        if state["device"] != self.context.device.type:
            return False
        self.load_state_dict({"rng": state["rng"], "trials": [], "status": self.status,
                              "fields": {"epochs_done": state["epochs_done"], "history": state["history"]}})
        self.load_tensor_state(checkpoint.tensors)
        return True

    def search_step(self, train: Batch, val: Batch, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step on one sampled path; the validation batch only measures that path's
        loss, in eval mode as stage 2 scores: it trains nothing, batch norm statistics
        included (the official code, too, looks at validation data in stage 1 only in eval
        mode, to log each epoch's last path)."""
        path = self.search_weights()
        train_loss = self.weight_step(train, path)
        self.supernet.eval()
        with torch.no_grad():
            val_loss = self.loss(val, path)
        self.supernet.train()
        return val_loss, train_loss

    def _record(self, lr: float, train_loss: float, val_loss: float) -> dict[str, Any]:
        """The epoch's losses: there are no architecture parameters to show."""
        return {"epoch": self.epochs_done + 1, "lr": lr, "train_loss": train_loss, "val_loss": val_loss}

    # -- stage 2 -------------------------------------------------------------------
    def budget(self) -> int:
        return self.supernet_epochs() + self.settings.samples + self.settings.finalists

    def steps_done(self) -> int:
        return self.epochs_done + len(self.scores) + len(self.finalist_scores)

    def step(self) -> None:
        """A supernet epoch, else the next sampled architecture's score, else the next finalist's."""
        if self.epochs_done < self.supernet_epochs():
            super().step()
        elif len(self.scores) < self.settings.samples:
            self.scores.append(self._score_sample(len(self.scores)))
        else:
            index = self.finalists()[len(self.finalist_scores)]["index"]
            genotype = self.context.space.from_dict(self.scores[index]["arch"])
            accuracy = shared_weight_accuracy(self.supernet, self.path(genotype), self.context.data.search_val)
            self.finalist_scores.append({"index": index, "val_acc": accuracy})

    def _score_sample(self, index: int) -> dict[str, Any]:
        """A random architecture's accuracy on ``SCORE_BATCHES`` random search-validation
        batches, drawn from a generator of its own (nothing to checkpoint)."""
        genotype = self.context.space.sample(self.rng)
        val = self.context.data.search_val
        device = val.labels.device
        generator = torch.Generator(device=device).manual_seed(derive_seed(self.context.seed, "score", index))
        chosen = torch.randperm(len(val), device=device, generator=generator)[:self.score_images()]
        accuracy = shared_weight_accuracy(self.supernet, self.path(genotype),
                                          DeviceSplit(val.images[chosen], val.labels[chosen]))
        return {"index": index, "arch": self.context.space.to_dict(genotype), "val_acc": accuracy}

    def score_images(self) -> int:
        """Images of ``SCORE_BATCHES`` supernet batches (all of search-validation if fewer)."""
        return min(len(self.context.data.search_val), SCORE_BATCHES * self.context.protocol.search.supernet.batch_size)

    def finalists(self) -> list[dict[str, Any]]:
        """The best ``finalists`` scores (ties to the earlier architecture)."""
        ranked = sorted(self.scores, key=lambda s: (-s["val_acc"], s["index"]))
        return ranked[:self.settings.finalists]

    def result(self) -> SearchResult:
        """The finalist best on all of search-validation (ties to the earlier one), with that
        shared-weight accuracy as what chose it."""
        best = max(self.finalist_scores, key=lambda s: (s["val_acc"], -s["index"]))
        return SearchResult(self.context.space.from_dict(self.scores[best["index"]]["arch"]), best["val_acc"], details={
            "supernet_epochs": self.history,  # not "epochs": no architecture weights or derived cells per epoch
            "score_images": self.score_images(),
            "scores": self.scores,
            "finalists": self.finalist_scores,
        })
