"""ENAS on the cell space (Pham et al., "Efficient Neural Architecture Search via Parameter
Sharing", ICML 2018): the micro search, whose space is the shared cell space.

Every epoch has two phases (Sect. 2.2). First the shared weights: one pass over
search-train, each batch training the single path of an architecture the controller
samples. Then the controller (:class:`~nasbench.strategies.controller.CellController`):
``controller_steps`` REINFORCE updates, each over ``controller_aggregate`` sampled
architectures, rewarded by their accuracy on one search-validation batch under the shared
weights (batch norm in eval mode) plus an entropy bonus, against an exponential moving
average of the rewards (:class:`~nasbench.strategies.controller.PolicyGradient`). At the
end, ``derive_samples`` architectures are sampled and the one with the highest accuracy on
a search-validation batch is the result (Sect. 2.2: "sample several models ... take only
the model with the highest reward").

Settings (Sect. 3.2): shared weights by SGD with Nesterov momentum, learning rate by cosine
annealing with warm restarts from 0.05 to 0.001 (T0 = 10, Tmul = 2), weight decay 1e-4; the
official code clips their gradient norm at 5 (``child_grad_bound``); the controller by Adam
at 3.5e-4.
"""
from __future__ import annotations

import itertools
from typing import Any, Iterator

import torch

from nasbench.data import endless_batches
from nasbench.spaces.cell.genotype import Genotype
from nasbench.strategies.base import SearchContext, SearchResult, TensorState, derive_seed
from nasbench.strategies.controller import CellController, PolicyGradient, Sample
from nasbench.strategies.random_ws import path_weights
from nasbench.strategies.supernet_search import Batch, SupernetSearch, WeightRecipe
from nasbench.training import cosine_annealing

ENAS_WEIGHTS = WeightRecipe(lr=0.05, lr_min=0.001, momentum=0.9, weight_decay=1e-4, grad_clip=5.0, nesterov=True)
RESTART_PERIOD = 10
RESTART_MULTIPLIER = 2
CONTROLLER_LR = 3.5e-4


def cosine_with_restarts(lr: float, lr_min: float, epoch: int, period: int, multiplier: int) -> float:
    """SGDR's learning rate at ``epoch``: cosine annealing over periods of ``period`` epochs,
    each ``multiplier`` times longer than the one before."""
    while epoch >= period:
        epoch -= period
        period *= multiplier
    return cosine_annealing(lr, lr_min, epoch, period)


class Enas(SupernetSearch):
    """ENAS' micro search: an LSTM controller samples single paths of the shared supernet
    and learns from their validation accuracy."""

    name = "enas"
    strategy_class = "RL"
    summary = "ENAS: an LSTM controller samples paths of a shared supernet, trained by REINFORCE on their accuracy"
    published = (("ENAS", "micro search space + cutout"),)
    protocol_section = "enas"
    weight_recipe = ENAS_WEIGHTS
    sparse_weights = True
    state_fields = ("epochs_done", "history")

    def __init__(self, context: SearchContext):
        super().__init__(context)
        self.settings = self.method_settings()
        torch.manual_seed(derive_seed(context.seed, "controller"))
        # the controller stays on the CPU: a small policy taking one decision at a time
        self.controller = CellController()
        self.policy = PolicyGradient(self.controller, lr=CONTROLLER_LR)
        self.controller_generator = torch.Generator().manual_seed(derive_seed(context.seed, "controller samples"))
        self.epoch_updates: list[dict[str, float]] = []

    def learning_rate(self, epoch: int) -> float:
        recipe = self.weight_recipe
        return cosine_with_restarts(recipe.lr, recipe.lr_min, epoch, RESTART_PERIOD, RESTART_MULTIPLIER)

    def search_weights(self) -> dict[str, torch.Tensor]:
        """The single path of an architecture the controller samples (no gradient to it)."""
        with torch.no_grad():
            sample = self.controller(self.controller_generator)
        return path_weights(sample.genotype, self.context.device)

    # -- the controller ----------------------------------------------------------------
    def validation_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        """Search-validation batches without augmentation, endlessly, in ``generator``'s order."""
        split = self.context.data.search_val
        for images, labels in endless_batches(split, self.context.protocol.search.supernet.batch_size, generator):
            yield Batch(self.augment.normalise(images), labels)

    def shared_weight_score(self, genotype: Genotype, batch: Batch) -> tuple[float, float]:
        """(accuracy, loss) of ``genotype``'s path on ``batch``, batch norm in eval mode."""
        self.supernet.eval()
        with torch.no_grad():
            logits = self.supernet(batch.images, path_weights(genotype, self.context.device), True)
            accuracy = (logits.argmax(1) == batch.labels).float().mean()
            scores = torch.stack([accuracy, self.criterion(logits, batch.labels)]).tolist()  # one host sync
        self.supernet.train()
        return scores[0], scores[1]

    def controller_step(self, batches: Iterator[Batch], samples: int) -> dict[str, float]:
        """One policy update over ``samples`` architectures, each rewarded by its accuracy on
        the next of ``batches``; returns the mean reward, entropy and validation loss."""
        losses = []

        def accuracy(sample: Sample) -> float:
            accuracy, loss = self.shared_weight_score(sample.genotype, next(batches))
            losses.append(loss)
            return accuracy

        scored = self.policy.update(self.controller_generator, accuracy, samples)
        return {"reward": sum(s["reward"] for s in scored) / samples,
                "entropy": sum(s["entropy"] for s in scored) / samples, "val_loss": sum(losses) / samples}

    # -- the epoch -------------------------------------------------------------------
    def search_epoch(self, lr: float) -> tuple[float, float]:
        """Shared weights over search-train, then the controller's updates; returns the mean
        validation loss of the controller's samples and the mean training loss."""
        train_sum, train_seen = torch.zeros((), device=self.context.device), 0
        for train in self.batches(self.context.data.search_train):
            train_sum += self.weight_step(train) * len(train.labels)
            train_seen += len(train.labels)
        val_batches = self.validation_batches(self.generator)
        self.epoch_updates = [self.controller_step(val_batches, self.settings.controller_aggregate)
                              for _ in range(self.settings.controller_steps)]
        val_loss = sum(u["val_loss"] for u in self.epoch_updates) / len(self.epoch_updates)
        return val_loss, train_sum.item() / train_seen

    def search_step(self, train: Batch, val: Batch, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        """What ``nasbench bench search-step`` times: a shared-weight step on a sampled path
        and a controller update on one sample rewarded on ``val``."""
        train_loss = self.weight_step(train)
        update = self.controller_step(itertools.repeat(val), samples=1)
        return torch.tensor(update["val_loss"]), train_loss

    def _record(self, lr: float, train_loss: float, val_loss: float) -> dict[str, Any]:
        """The epoch's losses and the controller's reward curve (one point per update)."""
        updates = self.epoch_updates
        return {"epoch": self.epochs_done + 1, "lr": lr, "train_loss": train_loss, "val_loss": val_loss,
                "rewards": [u["reward"] for u in updates], "entropies": [u["entropy"] for u in updates],
                "baseline": self.policy.baseline}

    # -- the result ------------------------------------------------------------------
    def result(self) -> SearchResult:
        """The best of ``derive_samples`` sampled architectures on one search-validation
        batch each (drawn from generators of the run's seed: the same choice on resume)."""
        generator = torch.Generator().manual_seed(derive_seed(self.context.seed, "derive"))
        batches = self.validation_batches(torch.Generator(device=self.context.device).manual_seed(
            derive_seed(self.context.seed, "derive batches")))
        candidates = []
        for index in range(self.settings.derive_samples):
            with torch.no_grad():
                genotype = self.controller(generator).genotype
            accuracy, _ = self.shared_weight_score(genotype, next(batches))
            candidates.append({"index": index, "arch": genotype.to_dict(), "val_acc": accuracy})
        best = max(candidates, key=lambda c: (c["val_acc"], -c["index"]))
        return SearchResult(self.context.space.from_dict(best["arch"]), best["val_acc"], details={
            "controller_epochs": self.history, "derive_candidates": candidates})

    # -- state -----------------------------------------------------------------------
    def tensor_state(self) -> TensorState:
        return {**super().tensor_state(), "controller": self.controller.state_dict(),
                "policy": self.policy.state_dict(),
                "controller_generator": self.controller_generator.get_state()}

    def load_tensor_state(self, tensors: TensorState) -> None:
        super().load_tensor_state(tensors)
        self.controller.load_state_dict(tensors["controller"])
        self.policy.load_state_dict(tensors["policy"])
        self.controller_generator.set_state(tensors["controller_generator"])
